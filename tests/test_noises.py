"""The noise processes: pairs are two draws of one process on one clean image, seeded, uint8;
the mixture's shares; the course's pixelation; a camera's pipeline."""
import hashlib
import math

import pytest
import torch

from Miniproject_2.others import noises


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def clean_images(n=64, seed=0):
    return torch.randint(0, 256, (n, 3, 8, 8), generator=generator(seed), dtype=torch.uint8)


@pytest.mark.parametrize('name', list(noises.PROCESSES))
def test_a_process_gives_independent_seeded_uint8_copies(name):
    clean = clean_images()
    first, second = noises.PROCESSES[name](clean, generator(1), 2)
    again = noises.PROCESSES[name](clean, generator(1), 2)
    assert first.dtype == torch.uint8 and first.shape == clean.shape
    assert torch.equal(first, again[0]) and torch.equal(second, again[1])
    assert not torch.equal(first, second) and not torch.equal(first, clean)


def test_the_two_copies_share_each_image_s_noise_level():
    """Per image, both copies of Gaussian noise have the same spread (one sigma per image),
    and the sigmas differ across images."""
    clean = torch.full((400, 3, 16, 16), 128, dtype=torch.uint8)
    first, second = noises.gaussian(clean, generator(), 2)
    spread = [(copy.double() - 128).flatten(1).std(1) for copy in (first, second)]
    assert torch.allclose(spread[0], spread[1], rtol=0.15, atol=1.0)
    assert spread[0].min() < 10 and spread[0].max() > 45


def test_impulses_hit_at_their_rate_and_keep_the_median():
    clean = torch.full((2000, 3, 8, 8), 100, dtype=torch.uint8)
    (noisy,) = noises.impulses(clean, generator(), 1, rate=(0.1, 0.1), sigma=(0.0, 0.0))
    hit = (noisy != 100).double().mean().item()
    assert 0.09 < hit < 0.11
    assert noisy.double().median().item() == 100


@pytest.mark.parametrize('width', [0.5, 1.0, 1.5])
def test_correlated_noise_has_its_sigma_and_a_gaussian_kernel_s_correlation(width):
    """Smoothing white noise by a kernel g correlates neighbours by sum g(k) g(k+1) / sum
    g(k)^2 (exp(-1 / (4 w^2)) for a Gaussian of width w, once w is large enough for its
    samples to stand for it); the scale keeps the std at sigma, and the field has no border."""
    clean = torch.full((300, 3, 16, 16), 128, dtype=torch.uint8)
    (noisy,) = noises.correlated(clean, generator(), 1, sigma=(20, 20), width=(width, width))
    field = noisy.double() - 128
    assert field.std().item() == pytest.approx(20, rel=0.03)
    neighbours = (field[..., 1:] * field[..., :-1]).mean() / field.var()
    g = [math.exp(-k ** 2 / (2 * width ** 2)) for k in range(-10, 11)]
    expected = sum(a * b for a, b in zip(g, g[1:])) / sum(a * a for a in g)
    assert neighbours.item() == pytest.approx(expected, abs=0.02)
    assert width < 1 or expected == pytest.approx(math.exp(-1 / (4 * width ** 2)), abs=0.01)
    assert field[..., 0].std().item() == pytest.approx(field[..., 8].std().item(), rel=0.05)


def test_luminance_noise_is_the_same_on_r_g_and_b():
    clean = torch.full((4, 3, 8, 8), 128, dtype=torch.uint8)
    (noisy,) = noises.luminance(clean, generator(), 1)
    assert torch.equal(noisy[:, 0], noisy[:, 1]) and torch.equal(noisy[:, 1], noisy[:, 2])


@pytest.mark.parametrize('share', [0.0, 0.3, 1.0])
def test_the_mixture_gives_pixelation_its_share_and_the_rest_evenly(share):
    families = noises.mixture_families(6000, share, generator())
    counts = {name: families.count(name) / 6000
              for name in ('pixelation', *noises.MIXTURE_FAMILIES)}
    assert counts['pixelation'] == pytest.approx(share, abs=0.02)
    for name in noises.MIXTURE_FAMILIES:
        assert counts[name] == pytest.approx((1 - share) / len(noises.MIXTURE_FAMILIES),
                                             abs=0.02)


def test_family_weights_set_the_other_families_proportions():
    families = noises.mixture_families(6000, 0.5, generator(),
                                       {'gaussian': 3, 'impulses': 0, 'correlated': 0,
                                        'camera': 0, 'stuck-pixels': 0})
    others = [f for f in families if f != 'pixelation']
    assert 'impulses' not in others
    assert others.count('gaussian') / len(others) == pytest.approx(3 / 4, abs=0.03)


def test_equal_family_weights_draw_as_no_weights():
    """A mixture built before weights existed rebuilds byte for byte."""
    unweighted = noises.mixture_families(500, 0.5, generator())
    assert noises.mixture_families(500, 0.5, generator(),
                                   dict.fromkeys(noises.MIXTURE_FAMILIES, 1)) == unweighted
    assert noises.mixture_families(500, 0.5, generator(),
                                   dict.fromkeys(noises.MIXTURE_FAMILIES, 2)) == unweighted


@pytest.mark.parametrize('weights', [{'pixelation': 1}, {'gaussian': -1}, {'gaussian': 0.5},
                                     dict.fromkeys(noises.MIXTURE_FAMILIES, 0)])
def test_bad_family_weights_are_refused(weights):
    with pytest.raises(ValueError):
        noises.mixture_families(10, 0.5, generator(), weights)


def test_the_mixture_share_must_be_a_fraction():
    with pytest.raises(ValueError, match='pixelation_share'):
        noises.mixture_families(10, 1.5, generator())


def test_apply_mixture_replaces_only_the_other_families_copies():
    clean = clean_images(8)
    original, pixelated = clean.clone(), [clean.clone() for _ in range(2)]
    families = ['pixelation', 'gaussian', 'pixelation', 'impulses'] * 2
    noises.apply_mixture(clean, pixelated, families, generator())
    for i, family in enumerate(families):
        kept = torch.equal(pixelated[0][i], clean[i])
        assert kept == (family == 'pixelation'), (i, family)
    assert not torch.equal(pixelated[0], pixelated[1])
    assert torch.equal(clean, original)  # their copies are noisy versions of it


def test_apply_mixture_makes_a_camera_s_reference_the_clean_image():
    """A camera pair's clean image becomes its pipeline's noise-free rendering, the one its
    copies are noisy versions of; a pixelation pair's stays."""
    clean = clean_images(6)
    original, pixelated = clean.clone(), [clean.clone() for _ in range(2)]
    families = ['camera', 'pixelation', 'pixelation'] * 2
    noises.apply_mixture(clean, pixelated, families, generator())
    cameras = torch.tensor([f == 'camera' for f in families])
    assert torch.equal(clean[~cameras], original[~cameras])
    reference, copies = noises.camera_pipeline(original[cameras], generator(), 2)
    assert torch.equal(clean[cameras], reference)
    assert all(torch.equal(batch[cameras], copy) for batch, copy in zip(pixelated, copies))


def test_a_mixture_without_camera_draws_as_before_the_camera_existed():
    """Earlier mixture folders rebuild byte for byte with ``camera=0 stuck-pixels=0``: the
    families and the copies (impulses without stuck pixels draw what they drew) hash as
    commit 376ff35's."""
    g = generator()
    clean = torch.randint(0, 256, (40, 3, 8, 8), generator=g, dtype=torch.uint8)
    families = noises.mixture_families(40, 0.3, g, {'camera': 0, 'stuck-pixels': 0})
    copies = noises.apply_mixture(clean, [clean.clone(), clean.clone()], families, g)
    digest = hashlib.sha256(' '.join(families).encode()
                            + b''.join(copy.numpy().tobytes() for copy in copies))
    assert 'impulses' in families
    assert digest.hexdigest() == ('89a8a54c90593f047b010b7b9f6739878b99a665e31a00d9'
                                  '1e85959424b637f2')


def test_pixelate_clean_is_the_block_mean_and_noisy_a_pixel_of_the_block():
    source = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8, generator=generator())
    clean, (first, second) = noises.pixelate(source, 2, 2, generator(1))
    assert clean.shape == first.shape == (3, 32, 32) and clean.dtype == torch.uint8
    blocks = source.double().view(3, 32, 2, 32, 2)
    assert torch.equal(clean, blocks.mean((2, 4)).round().to(torch.uint8))
    for noisy in first, second:
        # The same source position for R, G and B, one of the block's four pixels.
        matches = blocks == noisy.double().view(3, 32, 1, 32, 1)
        assert matches.all(0).any(3).any(1).all()
    assert not torch.equal(first, second)


def test_pixelation_positions_are_uniform_independent_and_unbiased():
    # A source whose every block holds 0..15: a noisy pixel is the position drawn.
    positions = torch.arange(16, dtype=torch.uint8).view(4, 4)
    source = positions.repeat(32, 32).expand(3, -1, -1).contiguous()
    clean, (first, second) = noises.pixelate(source, 4, 2, generator())
    assert (clean == 8).all()  # the mean 7.5, rounded half to even
    counts = torch.bincount(first[0].flatten().long(), minlength=16)
    assert counts.min() > 30 and counts.max() < 100  # 64 expected per position
    assert (first == first[:1]).all()  # R, G and B agree
    correlation = torch.corrcoef(torch.stack([first[0].flatten(), second[0].flatten()]).float())
    assert abs(correlation[0, 1]) < 0.1
    assert abs(first.float().mean() - 7.5) < 0.6  # 4 standard errors of a 1024-pixel mean


def test_stuck_pixels_are_black_or_white_on_all_channels():
    clean = torch.full((400, 3, 8, 8), 100, dtype=torch.uint8)
    (noisy,) = noises.stuck_pixels(clean, generator(), 1, rate=(0.1, 0.1),
                                   over_gaussian_share=0)
    hit = noisy != 100
    assert torch.equal(hit.any(1), hit.all(1))
    assert (noisy[:, :1] == noisy).all() and set(noisy[hit].tolist()) == {0, 255}
    assert 0.09 < hit.all(1).double().mean() < 0.11


# The camera's pipeline

def _ramp(height=12, width=12):
    """Three different affine ramps, one per channel, 0-1 (a batch of one)."""
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                          torch.arange(width, dtype=torch.float64), indexing='ij')
    return torch.stack([0.1 + 0.02 * x + 0.01 * y, 0.5 - 0.01 * x + 0.03 * y,
                        0.2 + 0.015 * x - 0.005 * y]).unsqueeze(0)


def _every_phase(images):
    """``images`` repeated for each phase, and the phases' indices."""
    return images.expand(len(noises.PHASES), -1, -1, -1), torch.arange(len(noises.PHASES))


def test_the_mosaic_samples_each_phase_s_colours():
    colours = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64).view(1, 3, 1, 1)
    images, phases = _every_phase(colours.expand(1, 3, 4, 6))
    raw = noises.mosaic(images, phases)
    for phase, image in zip(noises.PHASES, raw):
        tile = torch.tensor(['RGB'.index(colour) + 1.0 for colour in phase]).view(2, 2)
        assert torch.equal(image[0], tile.repeat(2, 3).double()), phase


@pytest.mark.parametrize('algorithm', list(noises.DEMOSAICING))
def test_demosaicing_reproduces_a_flat_colour(algorithm):
    colour = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64).view(1, 3, 1, 1)
    images, phases = _every_phase(colour.expand(1, 3, 7, 9))
    index = list(noises.DEMOSAICING).index(algorithm)
    colour_again = noises.demosaic(noises.mosaic(images, phases), phases,
                                   torch.full_like(phases, index))
    assert torch.allclose(colour_again, images, atol=1e-12)


@pytest.mark.parametrize('algorithm', ['bilinear', 'malvar'])
def test_bilinear_and_malvar_demosaicing_are_exact_on_linear_ramps(algorithm):
    """Inside the image (the mirrored border bends a ramp), averages of neighbours are
    exact on an affine image, and Malvar-He-Cutler's gradient correction (a Laplacian)
    is zero there; pixel replication shifts the ramp."""
    images, phases = _every_phase(_ramp())
    raw = noises.mosaic(images, phases)
    for name in (algorithm, 'nearest'):
        algorithms = torch.full_like(phases, list(noises.DEMOSAICING).index(name))
        error = (noises.demosaic(raw, phases, algorithms) - images)[..., 2:-2, 2:-2].abs()
        assert (error.max() < 1e-12) == (name == algorithm), name


def test_malvar_follows_grey_detail_better_than_bilinear():
    """On grey texture, its gradient correction takes the missing colours' detail from the
    sampled one: less than half the bilinear error."""
    y, x = torch.meshgrid(torch.arange(16.0, dtype=torch.float64),
                          torch.arange(16.0, dtype=torch.float64), indexing='ij')
    images, phases = _every_phase((0.5 + 0.4 * torch.sin(0.9 * x + 0.5 * y)).expand(1, 3, -1, -1))
    raw = noises.mosaic(images, phases)
    errors = [(noises.demosaic(raw, phases, torch.full_like(phases, index)) - images)
              .pow(2).mean().item() for index in (0, 1)]
    assert list(noises.DEMOSAICING)[:2] == ['bilinear', 'malvar']
    assert errors[1] < errors[0] / 4  # squared errors: half the RMS


@pytest.mark.parametrize('curve', list(noises.TONE_CURVES))
def test_each_tone_curve_inverts_its_inverse(curve):
    display = torch.linspace(0, 1, 256, dtype=torch.float64).view(1, 1, 1, -1)
    curves = torch.tensor([list(noises.TONE_CURVES).index(curve)])
    linear = noises.tone(display, curves, inverse=True)
    assert torch.allclose(noises.tone(linear, curves), display, atol=1e-9)
    assert linear[..., 0].item() == pytest.approx(0, abs=1e-12)
    assert linear[..., -1].item() == pytest.approx(1)
    assert (linear.diff() > 0).all()  # increasing: the darks stay dark


def test_shot_noise_grows_with_the_signal_and_read_noise_does_not():
    """In linear light the variance is shot x signal + read (Poisson plus Gaussian)."""
    shot, read = torch.tensor([1e-3, 1e-3]), torch.tensor([1e-5, 1e-5])
    for signal in 0.05, 0.5:
        raw = torch.full((2, 1, 64, 64), signal, dtype=torch.float64)
        noisy = noises.sensor_noise(raw, shot, read, generator())
        assert noisy.var().item() == pytest.approx(1e-3 * signal + 1e-5, rel=0.05)
        assert noisy.mean().item() == pytest.approx(signal, abs=1e-3)


@pytest.mark.parametrize('algorithm', ['bilinear', 'malvar'])
def test_demosaiced_noise_is_correlated_unlike_white_noise(algorithm):
    """Demosaicing spreads a site's noise over its neighbours; Malvar's gradient correction
    also mixes the colours of a pixel, while bilinear takes each from its own sites."""
    def correlations(noise):  # of horizontal neighbours, and of channels (mean of 3 pairs)
        neighbours = torch.stack([noise[..., 1:].flatten(), noise[..., :-1].flatten()])
        channels = torch.corrcoef(noise.transpose(0, 1).flatten(1))[[0, 0, 1], [1, 2, 2]]
        return torch.corrcoef(neighbours)[0, 1].item(), channels.mean().item()
    grey = torch.full((64, 3, 16, 16), 128, dtype=torch.uint8)
    reference, (copy,) = noises.camera_pipeline(grey, generator(), 1, shot=(2e-2, 2e-2),
                                                read_scatter=0, jpeg_share=0,
                                                demosaicing=(algorithm,))
    neighbours, channels = correlations(copy.double() - reference.double())
    assert neighbours > 0.3 and (channels > 0.3) == (algorithm == 'malvar')
    (white,) = noises.gaussian(grey, generator(), 1, sigma=(20, 20))
    assert max(map(abs, correlations(white.double() - 128))) < 0.05


def test_jpeg_compresses_the_share_of_images_asked_both_copies_and_the_reference():
    clean = clean_images(300, seed=1).repeat_interleave(2, -1).repeat_interleave(2, -2)
    plain = noises.camera_pipeline(clean, generator(), 2, jpeg_share=0)
    compressed = noises.camera_pipeline(clean, generator(), 2, jpeg_share=0.3)
    changed = [(a != b).flatten(1).any(1) for a, b in zip((plain[0], *plain[1]),
                                                            (compressed[0], *compressed[1]))]
    assert torch.equal(changed[0], changed[1]) and torch.equal(changed[1], changed[2])
    assert changed[0].double().mean() == pytest.approx(0.3, abs=0.06)


def test_the_camera_s_reference_is_its_pipeline_without_noise():
    """With (almost) no noise, the copies are the reference, with or without JPEG; and the
    reference is the tone curve undone, the mosaic, demosaicing and the curve again."""
    clean = clean_images(8, seed=2)
    silent = dict(shot=(1e-12, 1e-12), read_scatter=0)
    for share in 0, 1:
        reference, copies = noises.camera_pipeline(clean, generator(), 2, jpeg_share=share,
                                                   **silent)
        assert all(torch.equal(copy, reference) for copy in copies)
    one = torch.zeros(8, dtype=torch.long)  # the first phase, algorithm and curve
    expected = noises.tone(noises.demosaic(noises.mosaic(
        noises.tone(clean.double() / 255, one, inverse=True), one), one, one).clamp(0, 1), one)
    reference, _ = noises.camera_pipeline(
        clean, generator(), 1, phases=noises.PHASES[:1], demosaicing=('bilinear',),
        curves=(list(noises.TONE_CURVES)[0],), jpeg_share=0, **silent)
    assert torch.equal(reference, (expected * 255).round().to(torch.uint8))


def test_with_reference_gives_the_image_the_copies_are_noisy_versions_of():
    clean = clean_images(4)
    reference, copies = noises.with_reference(noises.gaussian, clean, generator(), 2)
    assert reference is clean and len(copies) == 2
    fixed = noises.camera_at('dark', 90)
    reference, (copy,) = noises.with_reference(fixed, clean, generator(), 1)
    assert torch.equal(copy, fixed(clean, generator(), 1)[0])
    assert torch.equal(reference, noises.camera_pipeline(clean, generator(), 1,
                                                         **fixed.keywords)[0])
    reference, _ = noises.with_reference(noises.gaussian_jpeg, clean, generator(), 1)
    assert torch.equal(reference, noises.jpeg(clean, torch.full((4,), 85)))
