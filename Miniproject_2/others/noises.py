"""Noise processes: the course's pixelation, the other families, the training mixture.

A process takes clean uint8 images ``N x 3 x H x W`` and returns ``draws`` noisy copies of
each: every image draws its own parameters (a noise level, an impulse rate, ...) once, and
each copy is an independent draw of the noise with those parameters, so the two images of a
Noise2Noise pair are two draws of the same process on the same clean image.

Training families (``MIXTURE_FAMILIES``; pixelation, the course's, comes from ``data``):

- ``gaussian``: additive, sigma uniform in [0, 55] per image;
- ``poisson-gaussian``: a camera's photon noise, a peak log-uniform in [3, 300] photons at
  white, plus read noise of sigma uniform in [0, 10];
- ``impulses``: a rate uniform in [1%, 20%] of salt-and-pepper or random-valued impulses,
  hitting whole pixels or single channels, over nothing (half the images) or over Gaussian
  noise of sigma up to 30.
- ``correlated``: Gaussian noise smoothed by a Gaussian kernel of width uniform in
  [0.5, 1.5] pixels, then of sigma uniform in [0, 40].

Families kept out of training (``HELD_OUT_FAMILIES``, for ``families``): additive uniform
noise, multiplicative (speckle) noise and luminance noise (one Gaussian value for R, G and
B).

Pixelation pairs take the squared loss, every other family the absolute one
(``ROBUST_FAMILIES``): ``bias`` measures why.

    python -m Miniproject_2.others.noises FAMILY clean.png noisy.png [--seed S]

draws one noisy copy of a picture with a family's training noise, to try the denoiser on.
"""
import argparse
import math

import torch

MIXTURE_FAMILIES = ('gaussian', 'poisson-gaussian', 'impulses', 'correlated')
ROBUST_FAMILIES = MIXTURE_FAMILIES  # trained with the absolute loss: their median is clean


def _uniform(n, low, high, generator):
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _per_image(values, like):
    return values.view(-1, *[1] * (like.dim() - 1))


def _quantized(images):
    return images.round().clamp_(0, 255).to(torch.uint8)


def pixelate(source, factor, draws, generator):
    """The course's degradation of one uint8 image ``3 x (32 f) x (32 f)``, ``f = factor``.

    Returns ``clean``, each f x f block's mean (rounded), and ``draws`` noisy copies in which
    every pixel is one source pixel of its block at a uniformly random position, the same
    for R, G and B, drawn independently for every pixel and every copy. So
    ``E[noisy] = clean`` up to the rounding: Noise2Noise's L2 loss is unbiased.
    """
    channels, side = source.shape[0], source.shape[-1] // factor
    blocks = (source.view(channels, side, factor, side, factor).permute(0, 1, 3, 2, 4)
              .reshape(channels, side, side, factor * factor))
    clean = blocks.float().mean(-1).round_().to(torch.uint8)
    noisy = []
    for _ in range(draws):
        position = torch.randint(factor * factor, (1, side, side, 1), generator=generator)
        noisy.append(blocks.gather(-1, position.expand(channels, -1, -1, -1)).squeeze(-1))
    return clean, noisy


def _gaussian(clean, sigma, generator):
    noise = torch.randn(clean.shape, generator=generator, dtype=torch.float64)
    return clean.double() + noise * _per_image(sigma, clean)


def gaussian(clean, generator, draws, sigma=(0.0, 55.0)):
    """Additive white Gaussian noise, sigma uniform in ``sigma`` per image (0-255 scale)."""
    sigma = _uniform(clean.shape[0], *sigma, generator)
    return [_quantized(_gaussian(clean, sigma, generator)) for _ in range(draws)]


def poisson_gaussian(clean, generator, draws, peak=(3.0, 300.0), read_sigma=(0.0, 10.0)):
    """Photon noise at a peak (photons at white) log-uniform in ``peak``, plus Gaussian read
    noise, sigma uniform in ``read_sigma``: a camera sensor's noise, per channel."""
    n = clean.shape[0]
    peaks = _uniform(n, math.log(peak[0]), math.log(peak[1]), generator).exp()
    sigma = _uniform(n, *read_sigma, generator)
    photons_per_level = _per_image(peaks / 255, clean)
    return [_quantized(torch.poisson(clean.double() * photons_per_level, generator=generator)
                       / photons_per_level
                       + torch.randn(clean.shape, generator=generator, dtype=torch.float64)
                       * _per_image(sigma, clean))
            for _ in range(draws)]


def impulses(clean, generator, draws, rate=(0.01, 0.2), sigma=(0.0, 30.0),
             random_valued_share=0.5, per_channel_share=0.5, over_gaussian_share=0.5):
    """Impulses at a rate uniform in ``rate`` per image, each channel of a hit pixel set to
    0 or 255 (salt and pepper) or, for a ``random_valued_share`` of the images, to a random
    value (uniform 0-255); hitting whole pixels or, for a ``per_channel_share``, single
    channels; over no other noise or, for an ``over_gaussian_share``, over Gaussian noise of
    sigma uniform in ``sigma``."""
    n, shape = clean.shape[0], clean.shape
    rates = _uniform(n, *rate, generator)
    shares = torch.tensor([random_valued_share, per_channel_share, over_gaussian_share])
    random_valued, per_channel, over_gaussian = (torch.rand(3, n, generator=generator)
                                                 < shares.view(3, 1))
    sigma = _uniform(n, *sigma, generator) * over_gaussian
    copies = []
    for _ in range(draws):
        noisy = _gaussian(clean, sigma, generator)
        hit = torch.where(_per_image(per_channel, clean),
                          torch.rand(shape, generator=generator, dtype=torch.float64),
                          torch.rand((n, 1, *shape[2:]), generator=generator,
                                     dtype=torch.float64).expand(shape))
        hit = hit < _per_image(rates, clean)
        salt = torch.rand(shape, generator=generator) < 0.5
        value = torch.where(_per_image(random_valued, clean),
                            torch.rand(shape, generator=generator, dtype=torch.float64) * 255,
                            salt.double() * 255)
        copies.append(_quantized(torch.where(hit, value, noisy)))
    return copies


def correlated(clean, generator, draws, sigma=(0.0, 40.0), width=(0.5, 1.5)):
    """Spatially correlated Gaussian noise, as demosaicking and compression leave a camera's
    noise: white noise smoothed per channel by a Gaussian kernel whose width (std, pixels) is
    uniform in ``width``, scaled to a std uniform in ``sigma`` (0-255 scale), per image."""
    n, c, h, w = clean.shape
    sigma = _uniform(n, *sigma, generator)
    width = _uniform(n, *width, generator)
    radius = math.ceil(3 * width.max().item())
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    profiles = torch.exp(-taps ** 2 / (2 * width.view(-1, 1) ** 2))
    kernels = profiles[:, :, None] * profiles[:, None, :]
    kernels /= kernels.flatten(1).norm(dim=1).view(-1, 1, 1)  # unit variance out
    kernels = kernels.repeat_interleave(c, 0).unsqueeze(1)  # one per image and channel
    copies = []
    for _ in range(draws):
        # white noise beyond the border, so that the smoothed field is stationary
        white = torch.randn(1, n * c, h + 2 * radius, w + 2 * radius, generator=generator,
                            dtype=torch.float64)
        field = torch.nn.functional.conv2d(white, kernels, groups=n * c).view(clean.shape)
        copies.append(_quantized(clean.double() + field * _per_image(sigma, clean)))
    return copies


def uniform(clean, generator, draws, half_width=40.0):
    """Additive noise uniform in [-half_width, half_width] (held out of training)."""
    return [_quantized(clean.double() + (torch.rand(clean.shape, generator=generator,
                                                    dtype=torch.float64) * 2 - 1) * half_width)
            for _ in range(draws)]


def speckle(clean, generator, draws, sigma=0.25):
    """Multiplicative noise: clean (1 + sigma Z), Z ~ N(0, 1) (held out of training)."""
    return [_quantized(clean.double() * (1 + sigma * torch.randn(
        clean.shape, generator=generator, dtype=torch.float64))) for _ in range(draws)]


def luminance(clean, generator, draws, sigma=25.0):
    """Gaussian noise of the same value on R, G and B (held out of training)."""
    n, _, h, w = clean.shape
    return [_quantized(clean.double() + sigma * torch.randn(
        n, 1, h, w, generator=generator, dtype=torch.float64)) for _ in range(draws)]


PROCESSES = {'gaussian': gaussian, 'poisson-gaussian': poisson_gaussian,
             'impulses': impulses, 'uniform': uniform, 'speckle': speckle,
             'luminance': luminance, 'correlated': correlated}
HELD_OUT_FAMILIES = ('uniform', 'speckle', 'luminance')


def mixture_families(n, pixelation_share, generator, weights=None):
    """Each of ``n`` images' family: pixelation with probability ``pixelation_share``, else
    one of ``MIXTURE_FAMILIES`` with probability in proportion to its integer weight in
    ``weights`` (a mapping; a family it leaves out weighs 1). Returns a list of names."""
    weights = mixture_settings(pixelation_share, weights)
    # One slot per unit of the reduced weights: equal weights draw exactly as an unweighted
    # choice does, so a mixture built before weights existed rebuilds byte for byte.
    unit = math.gcd(*weights.values())
    slots = [name for name in MIXTURE_FAMILIES for _ in range(weights[name] // unit)]
    pixelated = torch.rand(n, generator=generator) < pixelation_share
    other = torch.randint(len(slots), (n,), generator=generator)
    return ['pixelation' if p else slots[o]
            for p, o in zip(pixelated.tolist(), other.tolist())]


def mixture_settings(pixelation_share, weights=None):
    """Check a mixture's settings (a ``ValueError`` says what is wrong) and return its
    completed ``family_weights``."""
    if not 0 <= pixelation_share <= 1:
        raise ValueError(f'pixelation_share must be in [0, 1], got {pixelation_share}')
    return family_weights(weights)


def family_weights(weights=None):
    """``weights`` (a mapping from some of ``MIXTURE_FAMILIES`` to non-negative integers)
    completed with a weight of 1 for each family it leaves out; checked."""
    weights = dict(weights or {})
    unknown = set(weights) - set(MIXTURE_FAMILIES)
    if unknown:
        raise ValueError(f'unknown mixture families {sorted(unknown)}; '
                         f'they are {MIXTURE_FAMILIES}')
    weights = {name: weights.get(name, 1) for name in MIXTURE_FAMILIES}
    if any(not isinstance(w, int) or w < 0 for w in weights.values()) or not any(
            weights.values()):
        raise ValueError(f'family weights must be non-negative integers, not all 0: {weights}')
    return weights


def apply_mixture(clean, pixelated, families, generator):
    """Replace the pixelated copies of the images whose family is not pixelation by copies
    of their family's noise on the clean image. ``pixelated`` is a list of uint8 batches
    (the copies), changed in place and returned."""
    for name in MIXTURE_FAMILIES:
        rows = torch.tensor([i for i, f in enumerate(families) if f == name], dtype=torch.long)
        if len(rows):
            for batch, copy in zip(pixelated, PROCESSES[name](clean[rows], generator,
                                                               len(pixelated))):
                batch[rows] = copy
    return pixelated


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('family', choices=sorted(PROCESSES))
    parser.add_argument('clean', help='a picture Pillow reads (alpha is dropped)')
    parser.add_argument('noisy', help='where to write the noisy copy (PNG keeps it exact)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    from PIL import Image  # only this command reads pictures
    with Image.open(args.clean) as picture:
        rgb = picture.convert('RGB')
    pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    clean = pixels.view(rgb.height, rgb.width, 3).permute(2, 0, 1).unsqueeze(0)
    (noisy,) = PROCESSES[args.family](clean, torch.Generator().manual_seed(args.seed), 1)
    Image.fromarray(noisy[0].permute(1, 2, 0).contiguous().numpy()).save(args.noisy)
    print(f'wrote {args.noisy}: {args.family} noise on {args.clean}')


if __name__ == '__main__':
    main()
