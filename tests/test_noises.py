"""The noise processes: pairs are two draws of one process on one clean image, seeded, uint8;
the mixture's shares; the course's pixelation."""
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
                                       {'gaussian': 3, 'impulses': 0, 'correlated': 0})
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
    pixelated = [clean.clone() for _ in range(2)]
    families = ['pixelation', 'gaussian', 'pixelation', 'impulses'] * 2
    noises.apply_mixture(clean, pixelated, families, generator())
    for i, family in enumerate(families):
        kept = torch.equal(pixelated[0][i], clean[i])
        assert kept == (family == 'pixelation'), (i, family)
    assert not torch.equal(pixelated[0], pixelated[1])


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
