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
  noise of sigma up to 30; with ``stuck_share``, stuck pixels (all channels 0 or all 255;
  none by default);
- ``correlated``: Gaussian noise smoothed by a Gaussian kernel of width uniform in
  [0.5, 1.5] pixels, then of sigma uniform in [0, 40];
- ``stuck-pixels``: ``impulses`` whose hits are all stuck pixels (``stuck_pixels``);
- ``camera``: noise as a camera makes it (``camera_pipeline``): the tone curve undone, a
  Bayer mosaic (``phases``, any of 4), Poisson shot and Gaussian read noise at levels drawn
  jointly as Brooks et al. (CVPR 2019) do (log shot level uniform in [log 1e-4, log 2e-2],
  ``shot``), bilinear or Malvar-He-Cutler demosaicing (``demosaicing``), a tone curve
  (``curves``: 2.2 gamma, sRGB, filmic S-curve), and for half the images (``jpeg_share``)
  a JPEG of quality uniform in [60, 95] (``quality``). Its copies are noisy versions of
  the noise-free image through the same pipeline, not of the clean image:
  ``with_reference`` gives that reference, the target to measure against.

Families kept out of training (``HELD_OUT_FAMILIES``, for ``families``): additive uniform
noise, multiplicative (speckle) noise, luminance noise (one Gaussian value for R, G and B),
and Gaussian noise through a JPEG (``gaussian-jpeg``, against the clean image through
the same JPEG); and camera variants that only the
families table asks for: pixel-replication demosaicing (``nearest``), a log tone curve.

Pixelation pairs take the squared loss, every other family the absolute one
(``ROBUST_FAMILIES``): ``bias`` measures why.

    python -m Miniproject_2.others.noises FAMILY clean.png noisy.png [--seed S]

draws one noisy copy of a picture with a family's training noise, to try the denoiser on.
"""
import argparse
import functools
import io
import math

import torch
from PIL import Image

MIXTURE_FAMILIES = ('gaussian', 'poisson-gaussian', 'impulses', 'correlated', 'camera',
                    'stuck-pixels')
# Trained with the absolute loss: their median is the clean image (a camera's reference).
ROBUST_FAMILIES = MIXTURE_FAMILIES


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
             random_valued_share=0.5, per_channel_share=0.5, over_gaussian_share=0.5,
             stuck_share=0.0):
    """Impulses at a rate uniform in ``rate`` per image, each channel of a hit pixel set to
    0 or 255 (salt and pepper) or, for a ``random_valued_share`` of the images, to a random
    value (uniform 0-255); hitting whole pixels or, for a ``per_channel_share``, single
    channels; over no other noise or, for an ``over_gaussian_share``, over Gaussian noise of
    sigma uniform in ``sigma``. For a ``stuck_share`` of the images, the hits are a sensor's
    stuck pixels instead: all three channels at 0 (dead) or all at 255 (hot), at positions
    drawn anew for each copy (a defect at the same place in both copies of a pair would be
    signal to Noise2Noise)."""
    n, shape = clean.shape[0], clean.shape
    rates = _uniform(n, *rate, generator)
    shares = torch.tensor([random_valued_share, per_channel_share, over_gaussian_share])
    random_valued, per_channel, over_gaussian = (torch.rand(3, n, generator=generator)
                                                 < shares.view(3, 1))
    sigma = _uniform(n, *sigma, generator) * over_gaussian
    # Drawn only when asked for, so that impulses without stuck pixels draw what they drew
    # before stuck pixels existed: earlier mixture folders rebuild byte for byte.
    stuck = (torch.rand(n, generator=generator) < stuck_share if stuck_share > 0
             else torch.zeros(n, dtype=torch.bool))
    per_channel &= ~stuck
    whole_pixel = (n, 1, *shape[2:])
    copies = []
    for _ in range(draws):
        noisy = _gaussian(clean, sigma, generator)
        hit = torch.where(_per_image(per_channel, clean),
                          torch.rand(shape, generator=generator, dtype=torch.float64),
                          torch.rand(whole_pixel, generator=generator,
                                     dtype=torch.float64).expand(shape))
        hit = hit < _per_image(rates, clean)
        salt = torch.rand(shape, generator=generator) < 0.5
        value = torch.where(_per_image(random_valued, clean),
                            torch.rand(shape, generator=generator, dtype=torch.float64) * 255,
                            salt.double() * 255)
        if stuck_share > 0:
            hot = torch.rand(whole_pixel, generator=generator) < 0.5
            value = torch.where(_per_image(stuck, clean), hot.double().expand(shape) * 255,
                                value)
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


# A camera's pipeline (Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR
# 2019, without white balance and colour matrix): tone curve undone, Bayer mosaic, sensor
# noise, demosaicing, tone curve, JPEG.

PHASES = ('RGGB', 'BGGR', 'GRBG', 'GBRG')  # a Bayer mosaic's 2 x 2 tile, row by row
RED, GREEN_IN_RED_ROW, GREEN_IN_BLUE_ROW, BLUE = range(4)  # the kinds of sites of a mosaic
_SITE_CHANNEL = torch.tensor([0, 1, 1, 2])


def _site_kinds(phase):
    return [RED if colour == 'R' else BLUE if colour == 'B'
            else GREEN_IN_RED_ROW if 'R' in row else GREEN_IN_BLUE_ROW
            for row in (phase[:2], phase[2:]) for colour in row]


_PHASE_SITES = torch.tensor([_site_kinds(phase) for phase in PHASES]).view(-1, 2, 2)


def _mosaic_sites(phases, height, width):
    """Each pixel's kind of site (``RED`` ... ``BLUE``), ``N x H x W``, for per-image phases
    (indices into ``PHASES``)."""
    rows, columns = torch.arange(height) % 2, torch.arange(width) % 2
    return _PHASE_SITES[phases.view(-1, 1, 1), rows.view(1, -1, 1), columns.view(1, 1, -1)]


def mosaic(linear, phases):
    """The raw image ``N x 1 x H x W`` a Bayer sensor records of ``linear`` (``N x 3 x H x
    W``): at each pixel the one colour its site samples, per-image ``phases``."""
    sites = _mosaic_sites(phases, *linear.shape[-2:])
    return linear.gather(1, _SITE_CHANNEL[sites].unsqueeze(1))


def _kernel(taps, scale=1):
    """A 5 x 5 kernel from {(dy, dx): weight}, divided by ``scale``."""
    kernel = torch.zeros(5, 5, dtype=torch.float64)
    for (dy, dx), weight in taps.items():
        kernel[2 + dy, 2 + dx] = weight / scale
    return kernel


def _symmetric(axial, diagonal=(), scale=1):
    """A kernel symmetric under flips: {(dy, dx): w} for dy, dx >= 0 stands for all signs."""
    taps = {}
    for (dy, dx), weight in (*axial, *diagonal):
        for sy in (1, -1):
            for sx in (1, -1):
                taps[sy * dy, sx * dx] = weight
    return _kernel(taps, scale)


# Each algorithm's four kernels on the mosaic: green at a red or blue site, the colour whose
# samples are the site's row neighbours (red at green in a red row, blue at green in a blue
# row), the one whose samples are its column neighbours, the one on its diagonals (red at
# blue, blue at red). A site's own colour is its sample.
DEMOSAICING = {
    'bilinear': (_symmetric([((0, 1), 1), ((1, 0), 1)], scale=4),
                 _symmetric([((0, 1), 1)], scale=2),
                 _symmetric([((1, 0), 1)], scale=2),
                 _symmetric([((1, 1), 1)], scale=4)),
    # Malvar, He and Cutler (ICASSP 2004): bilinear plus a gradient correction from the
    # site's own colour (its Laplacian), their 5 x 5 kernels.
    'malvar': (_symmetric([((0, 0), 4), ((0, 1), 2), ((1, 0), 2), ((0, 2), -1), ((2, 0), -1)],
                          scale=8),
               _symmetric([((0, 0), 5), ((0, 1), 4), ((0, 2), -1), ((2, 0), 0.5)],
                          [((1, 1), -1)], scale=8),
               _symmetric([((0, 0), 5), ((1, 0), 4), ((2, 0), -1), ((0, 2), 0.5)],
                          [((1, 1), -1)], scale=8),
               _symmetric([((0, 0), 6), ((0, 2), -1.5), ((2, 0), -1.5)], [((1, 1), 2)],
                          scale=8)),
    # Pixel replication: each missing colour copied from the neighbour on the left, above
    # or up-left that samples it (held out of training: blocky, shifted colours).
    'nearest': (_kernel({(0, -1): 1}), _kernel({(0, -1): 1}), _kernel({(-1, 0): 1}),
                _kernel({(-1, -1): 1})),
}
# Where each output channel (R, G, B) takes its value at each kind of site: 0 the sample,
# k the algorithm's k-th kernel.
_DEMOSAIC_SOURCE = torch.tensor([[0, 2, 3, 4], [1, 0, 0, 1], [4, 3, 2, 0]])


def demosaic(raw, phases, algorithms):
    """The colour image ``N x 3 x H x W`` interpolated from the raw mosaic ``N x 1 x H x W``
    (H, W >= 3) by per-image ``algorithms`` (indices into ``DEMOSAICING``), each a
    convolution of the mosaic; borders mirrored, which keeps the mosaic's pattern."""
    sites = _mosaic_sites(phases, *raw.shape[-2:])
    padded = torch.nn.functional.pad(raw, (2, 2, 2, 2), mode='reflect')
    colour = torch.empty(raw.shape[0], 3, *raw.shape[-2:], dtype=raw.dtype)
    for index, kernels in enumerate(DEMOSAICING.values()):
        rows = (algorithms == index).nonzero().squeeze(1)
        if len(rows):
            weight = torch.stack(kernels).unsqueeze(1).to(raw.dtype)
            interpolated = torch.nn.functional.conv2d(padded[rows], weight)
            sources = torch.cat([raw[rows], interpolated], 1)
            colour[rows] = sources.gather(1, _DEMOSAIC_SOURCE[:, sites[rows]].transpose(0, 1))
    return colour


def _srgb(x):
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def _srgb_inverse(y):
    return torch.where(y <= 0.04045, y / 12.92, ((y + 0.055) / 1.055) ** 2.4)


def _smoothstep(x):
    return x * x * (3 - 2 * x)


def _smoothstep_inverse(y):
    return 0.5 - torch.sin(torch.asin(1 - 2 * y) / 3)


LOG_CURVE_BASE = 100.0  # the log curve's stretch: the larger, the brighter its shadows
# Tone curves, (linear to display, display to linear), each from [0, 1] onto [0, 1]: a 2.2
# gamma, the sRGB curve, Brooks et al.'s camera-like S-curve (a smoothstep over the 2.2
# gamma), and a video camera's flat log profile (held out of training).
TONE_CURVES = {
    'gamma': (lambda x: x ** (1 / 2.2), lambda y: y ** 2.2),
    'srgb': (_srgb, _srgb_inverse),
    'filmic': (lambda x: _smoothstep(x ** (1 / 2.2)), lambda y: _smoothstep_inverse(y) ** 2.2),
    'log': (lambda x: torch.log1p(LOG_CURVE_BASE * x) / math.log1p(LOG_CURVE_BASE),
            lambda y: torch.expm1(y * math.log1p(LOG_CURVE_BASE)) / LOG_CURVE_BASE),
}


def tone(images, curves, inverse=False):
    """``images`` (0-1, ``N x C x H x W``) through per-image tone ``curves`` (indices into
    ``TONE_CURVES``): linear to display, or display to linear if ``inverse``."""
    toned = torch.empty_like(images)
    for index, (to_display, to_linear) in enumerate(TONE_CURVES.values()):
        rows = curves == index
        toned[rows] = (to_linear if inverse else to_display)(images[rows])
    return toned


def sensor_noise(raw, shot, read, generator):
    """A noisy reading of the linear raw image (0-1, >= 0): Poisson photon counts of ``1 /
    shot`` photons per unit of signal (variance ``shot`` x signal), plus Gaussian read noise
    of variance ``read``; ``shot`` and ``read`` per image."""
    shot, read = _per_image(shot, raw), _per_image(read, raw)
    return (torch.poisson(raw / shot, generator=generator) * shot
            + read.sqrt() * torch.randn(raw.shape, generator=generator, dtype=torch.float64))


def _pixels(picture):
    """A Pillow picture as a uint8 tensor ``3 x H x W`` (RGB)."""
    rgb = picture.convert('RGB')
    pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return pixels.view(rgb.height, rgb.width, 3).permute(2, 0, 1)


def jpeg(images, qualities):
    """Each uint8 image ``3 x H x W`` of ``images`` encoded as a JPEG of its quality in
    ``qualities`` by Pillow (its default 4:2:0 chroma subsampling) and decoded."""
    decoded = torch.empty_like(images)
    for row, quality in enumerate(qualities.tolist()):
        buffer = io.BytesIO()
        Image.fromarray(images[row].permute(1, 2, 0).numpy()).save(buffer, 'JPEG',
                                                                    quality=quality)
        with Image.open(buffer) as picture:
            decoded[row] = _pixels(picture)
    return decoded


def _choices(names, among, n, generator):
    """``n`` indices into ``among`` (names), uniform over ``names``."""
    allowed = torch.tensor([list(among).index(name) for name in names])
    return allowed[torch.randint(len(allowed), (n,), generator=generator)]


def camera_pipeline(clean, generator, draws, shot=(1e-4, 2e-2), read_scatter=0.26,
                    phases=PHASES, demosaicing=('bilinear', 'malvar'),
                    curves=('gamma', 'srgb', 'filmic'), jpeg_share=0.5, quality=(60, 95)):
    """The noise-free image through a camera's pipeline (the reference its copies are noisy
    versions of) and ``draws`` noisy copies, uint8; see ``camera``."""
    n = clean.shape[0]
    log_shot = _uniform(n, math.log(shot[0]), math.log(shot[1]), generator)
    shot_level = log_shot.exp()
    read_level = (2.18 * log_shot + 1.20 + read_scatter * torch.randn(
        n, generator=generator, dtype=torch.float64)).exp()
    phase = _choices(phases, PHASES, n, generator)
    algorithm = _choices(demosaicing, DEMOSAICING, n, generator)
    curve = _choices(curves, TONE_CURVES, n, generator)
    compressed = (torch.rand(n, generator=generator) < jpeg_share).nonzero().squeeze(1)
    qualities = torch.randint(quality[0], quality[1] + 1, (n,), generator=generator)
    raw = mosaic(tone(clean.double() / 255, curve, inverse=True), phase)

    def rendered(reading):
        colour = demosaic(reading, phase, algorithm).clamp_(0, 1)
        return _quantized(tone(colour, curve) * 255)

    reference = rendered(raw)
    copies = [rendered(sensor_noise(raw, shot_level, read_level, generator))
              for _ in range(draws)]
    # The reference is compressed too: the detail JPEG takes from an image is gone from
    # every copy, as what demosaicing takes is, so their mean keeps its loss (measured at
    # q90 on 32 x 32 photos: 39 dB from the compressed reference, 28 from the other).
    for image in (reference, *copies):
        image[compressed] = jpeg(image[compressed], qualities[compressed])
    return reference, copies


def camera(clean, generator, draws, **parameters):
    """A camera's noise: each image's tone curve undone (to linear light), sampled by a
    Bayer mosaic of one of ``phases``, read with Poisson shot noise and Gaussian read noise
    (``sensor_noise``), demosaiced by one of ``demosaicing`` (``DEMOSAICING``), toned back
    by its curve (one of ``curves``, ``TONE_CURVES``), and for a ``jpeg_share`` of the
    images compressed as a JPEG of a quality uniform in ``quality``. The levels are
    Brooks et al.'s joint prior: log shot level uniform in log ``shot`` (0-1 linear scale;
    their upper bound 1.2e-2 widened to 2e-2 for dark scenes), log read level = 2.18 log
    shot + 1.20 + N(0, ``read_scatter``^2). Both copies share every parameter of an image;
    they are noisy versions of ``camera_pipeline``'s reference, the noise-free image through
    the same pipeline (JPEG included), not of ``clean``."""
    return camera_pipeline(clean, generator, draws, **parameters)[1]


# Shot-noise levels of a bright scene (Brooks et al.'s typical level) and a dark one (the top
# of the widened range), for the tables of ``families`` and ``bias``.
CAMERA_LEVELS = {'bright': 1e-3, 'dark': 2e-2}


def camera_at(level, jpeg_quality=None, **parameters):
    """``camera`` with the shot level of ``CAMERA_LEVELS[level]`` and the read level on Brooks
    et al.'s line, for every image; a JPEG of ``jpeg_quality`` for every image, or none;
    other ``parameters`` of ``camera`` as given."""
    shot = CAMERA_LEVELS[level]
    compression = (dict(jpeg_share=1, quality=(jpeg_quality, jpeg_quality)) if jpeg_quality
                   else dict(jpeg_share=0))
    return functools.partial(camera, shot=(shot, shot), read_scatter=0, **compression,
                             **parameters)


def gaussian_jpeg_pipeline(clean, generator, draws, sigma=15.0, quality=85):
    """``clean`` through a JPEG of ``quality`` (the reference) and ``draws`` copies with
    additive Gaussian noise of ``sigma`` before the same JPEG."""
    qualities = torch.full((clean.shape[0],), quality)
    sigma = torch.full((clean.shape[0],), float(sigma), dtype=torch.float64)
    return jpeg(clean, qualities), [jpeg(_quantized(_gaussian(clean, sigma, generator)),
                                         qualities) for _ in range(draws)]


def gaussian_jpeg(clean, generator, draws, **parameters):
    """Additive Gaussian noise (``sigma`` 15), then a JPEG (``quality`` 85): noisy versions
    of the clean image through the same JPEG (``gaussian_jpeg_pipeline``). Held out of
    training: compression of white noise, where ``camera`` compresses demosaiced noise."""
    return gaussian_jpeg_pipeline(clean, generator, draws, **parameters)[1]


def stuck_pixels(clean, generator, draws, **parameters):
    """A sensor's stuck pixels: ``impulses`` whose every hit sets a pixel's three channels
    to 0 (dead) or all to 255 (hot), at a rate uniform in ``rate``, alone or over Gaussian
    noise as ``impulses`` draws it."""
    return impulses(clean, generator, draws, **{'stuck_share': 1.0, **parameters})


PROCESSES = {'gaussian': gaussian, 'poisson-gaussian': poisson_gaussian,
             'impulses': impulses, 'uniform': uniform, 'speckle': speckle,
             'luminance': luminance, 'correlated': correlated, 'camera': camera,
             'gaussian-jpeg': gaussian_jpeg, 'stuck-pixels': stuck_pixels}
HELD_OUT_FAMILIES = ('uniform', 'speckle', 'luminance', 'gaussian-jpeg')
# The processes whose copies are noisy versions of another image than the clean one: each
# one's function giving (that reference, the copies) from the same arguments.
_PIPELINES = {camera: camera_pipeline, gaussian_jpeg: gaussian_jpeg_pipeline}


def with_reference(process, clean, generator, draws):
    """``(reference, copies)``: ``process``'s copies of ``clean`` and the image they are noisy
    versions of, the target a denoiser is measured against: ``clean`` itself, but for a
    camera (or a JPEG) the noise-free image through the same pipeline. ``process`` may
    have parameters fixed by ``functools.partial``, as ``families`` fixes them."""
    function = getattr(process, 'func', process)
    if function in _PIPELINES:
        return _PIPELINES[function](clean, generator, draws, *getattr(process, 'args', ()),
                                    **getattr(process, 'keywords', {}))
    return clean, process(clean, generator, draws)


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
    of their family's noise on the clean image, and those images in ``clean`` by the
    reference their copies are noisy versions of (``with_reference``: a camera's changes
    them). ``pixelated`` is a list of uint8 batches (the copies); it and ``clean`` are
    changed in place; returns ``pixelated``."""
    for name in MIXTURE_FAMILIES:
        rows = torch.tensor([i for i, f in enumerate(families) if f == name], dtype=torch.long)
        if len(rows):
            clean[rows], copies = with_reference(PROCESSES[name], clean[rows], generator,
                                                 len(pixelated))
            for batch, copy in zip(pixelated, copies):
                batch[rows] = copy
    return pixelated


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('family', choices=sorted(PROCESSES))
    parser.add_argument('clean', help='a picture Pillow reads (alpha is dropped)')
    parser.add_argument('noisy', help='where to write the noisy copy (PNG keeps it exact)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    with Image.open(args.clean) as picture:
        clean = _pixels(picture).unsqueeze(0)
    (noisy,) = PROCESSES[args.family](clean, torch.Generator().manual_seed(args.seed), 1)
    Image.fromarray(noisy[0].permute(1, 2, 0).contiguous().numpy()).save(args.noisy)
    print(f'wrote {args.noisy}: {args.family} noise on {args.clean}')


if __name__ == '__main__':
    main()
