"""Noise processes beyond the course's pixelation, the training mixture, the losses' bias.

The bias is what each loss would leave on Noise2Noise targets (``target_bias``).

    python -m Miniproject_2.others.noises --data data [--out results/noise_bias.json]

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

What each family needs from Noise2Noise (``target_bias``, ``results/noise_bias.json``).
With the squared loss the network learns each pixel's mean target; with the absolute loss,
its median. Pixelation has zero mean and no clipping (a noisy pixel is a real pixel), so the
squared loss is unbiased there, while the median of a block is not its mean. Every other
family is clipped to 0-255, which pulls the mean of a dark or bright pixel's targets
towards mid-grey, and impulses pull it towards their own mean; clipping keeps the median
(a monotone map), and a pixel hit less than half the time keeps its median near the clean
value. So pixelation pairs take the squared loss and every other family's the absolute one
(``ROBUST_FAMILIES``; ``RobustMSE`` in model.py). ``target_bias`` measures, per family, the
PSNR that each loss's minimiser reaches against the clean image: the ceiling its bias puts
on a perfect network.
"""
import argparse
import json
import math
from pathlib import Path

import torch

MIXTURE_FAMILIES = ('gaussian', 'poisson-gaussian', 'impulses', 'correlated')
ROBUST_FAMILIES = MIXTURE_FAMILIES  # trained with the absolute loss: their median is clean


def _uniform(n, low, high, generator):
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _per_image(values, like):
    return values.view(-1, *[1] * (like.dim() - 1))


def _quantized(images):
    return images.round().clamp_(0, 255).to(torch.uint8)


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


def bias_ceilings(copies, clean):
    """The PSNR (dB) that the bias of each loss's minimiser allows, from many noisy copies
    ``K x N x 3 x H x W`` of ``clean``: the squared loss learns each pixel's mean target, the
    absolute loss its median. The copies are split in two halves and each statistic taken
    on both: the product of the two errors has the squared bias as its mean (the halves'
    sampling errors are independent), so the estimate is not inflated by the finite K. An
    unbiased minimiser gives a large (or infinite) ceiling."""
    first, second = copies.double().chunk(2)
    clean = clean.double()

    def ceiling(a, b):
        squared_bias = ((a - clean) * (b - clean)).mean().item() / 255 ** 2
        return math.inf if squared_bias <= 0 else -10 * math.log10(squared_bias)
    return {'squared loss (mean)': ceiling(first.mean(0), second.mean(0)),
            'absolute loss (median)': ceiling(first.median(0).values,
                                              second.median(0).values)}


def target_bias(photos, n_images=100, draws=200, seed=0):
    """{family: bias_ceilings} over ``n_images`` clean images of ``photos`` with ``draws``
    noisy targets each: pixelation (f 10-30) and every process of ``PROCESSES``."""
    from Miniproject_2.others.data import sample_pixelated
    generator = torch.Generator().manual_seed(seed)
    clean, pixelated = sample_pixelated(photos, n_images, generator, draws,
                                        desc='pixelating for the bias')
    rows = {'pixelation': bias_ceilings(torch.stack(pixelated), clean)}
    for name, process in PROCESSES.items():
        rows[name] = bias_ceilings(torch.stack(process(clean, generator, draws)), clean)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='data', help="the data folder (its cache/ holds "
                                                       "the validation photos)")
    parser.add_argument('--images', type=int, default=100)
    parser.add_argument('--draws', type=int, default=200)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='write the table as JSON here')
    args = parser.parse_args(argv)
    from Miniproject_2.others.data import fetch_validation_photos
    rows = target_bias(fetch_validation_photos(Path(args.data) / 'cache'), args.images,
                       args.draws, args.seed)
    print(f"{'family':18} {'squared loss':>13} {'absolute loss':>14}   (the ceiling the bias "
          f"allows, dB)")
    for name, row in rows.items():
        print(f"{name:18} {row['squared loss (mean)']:13.2f} "
              f"{row['absolute loss (median)']:14.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({'images': args.images, 'draws': args.draws,
                                              'seed': args.seed, 'rows': rows}, indent=1)
                                  + '\n')
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
