"""The classical baselines (filters.py) and the noise families (families.py)."""
import inspect

import pytest
import torch

from Miniproject_2.model import Model
from Miniproject_2.others import data, families, filters, noises


def _images(seed=0, n=4, size=16):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=generator, dtype=torch.uint8)


@pytest.mark.parametrize('name', list(filters.FILTERS))
def test_filters_keep_flat_images_and_shapes(name):
    function, parameters = filters.FILTERS[name]
    flat = torch.full((2, 3, 12, 9), 77, dtype=torch.uint8)
    for arguments in parameters:
        out = function(flat, *arguments)
        assert out.shape == flat.shape
        assert torch.allclose(out, flat.float(), atol=1e-3), arguments


def test_gaussian_blur_matches_a_direct_convolution():
    images = _images()
    sigma, radius = 0.8, 2
    taps = torch.exp(-torch.arange(-radius, radius + 1.0) ** 2 / (2 * sigma ** 2))
    kernel = taps.view(-1, 1) * taps.view(1, -1)
    kernel /= kernel.sum()
    padded = torch.nn.functional.pad(images.float(), (radius,) * 4, mode='reflect')
    direct = torch.nn.functional.conv2d(padded, kernel.expand(3, 1, -1, -1), groups=3)
    assert torch.allclose(filters.gaussian_blur(images, sigma), direct, atol=1e-3)


def test_median_removes_an_impulse_and_bilateral_keeps_an_edge():
    image = torch.full((1, 3, 9, 9), 100, dtype=torch.uint8)
    image[..., 4, 4] = 255
    assert (filters.median_filter(image, 3) == 100).all()
    edge = torch.zeros(1, 3, 9, 9, dtype=torch.uint8)
    edge[..., 5:] = 200
    # A small range sigma ignores the other side of the edge; a blur mixes both sides.
    assert torch.allclose(filters.bilateral_filter(edge, 10, 1.0), edge.float(), atol=1e-3)
    assert not torch.allclose(filters.gaussian_blur(edge, 1.0), edge.float(), atol=1)


def test_tune_picks_the_best_parameter():
    clean = torch.full((4, 3, 16, 16), 128, dtype=torch.uint8)
    noisy = (clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * 20
             ).round().clamp(0, 255).to(torch.uint8)
    tuned = filters.tune(noisy, clean)
    # On a flat image the widest blur wins.
    widest = max(filters.FILTERS['Gaussian blur'][1])
    assert tuned['Gaussian blur']['parameter'] == widest
    assert filters.best_filter(tuned) == 'Gaussian blur'
    assert tuned['Gaussian blur']['psnr'] == pytest.approx(
        filters.score(filters.gaussian_blur(noisy, *widest), clean))


def family(name):
    return next(f for f in families.FAMILIES if f.name == name)


def test_the_families_have_their_noise():
    clean = torch.full((200, 3, 8, 8), 128, dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    (impulses,) = family('salt and pepper, 10%').process(clean, generator, 1)
    hit = impulses != 128
    assert 0.08 < hit.all(1).float().mean() < 0.12  # 10% of pixels, all channels at once
    assert torch.equal(hit.any(1), hit.all(1)) and set(impulses[hit].tolist()) == {0, 255}
    (photon,) = family('Poisson-Gaussian, 20 photons + sigma 10').process(clean, generator, 1)
    photon = photon.float() - 128
    # Poisson at peak 20 (variance 128/255 * 20 photons of 255/20 each) plus sigma 10.
    expected = (128 / 255 * 20 * (255 / 20) ** 2 + 10 ** 2) ** 0.5
    assert photon.std() == pytest.approx(expected, rel=0.05)
    assert abs(photon.mean()) < 1


def test_the_held_out_families_are_not_in_the_training_mixture():
    """A held-out row is a process the mixture lacks, or a mixture family's beyond the
    range the mixture draws from: pixelation factors, correlated noise's widths."""
    def name(process):
        return process.func.__name__ if hasattr(process, 'func') else process.__name__
    held_out = [f for f in families.FAMILIES if f.held_out and f.process is not None]
    beyond = [f for f in held_out if name(f.process) in noises.MIXTURE_FAMILIES]
    assert {name(f.process) for f in held_out if f not in beyond} == set(
        noises.HELD_OUT_FAMILIES)
    widest = inspect.signature(noises.correlated).parameters['width'].default[1]
    assert beyond and all(name(f.process) == 'correlated'
                          and f.process.keywords['width'][0] > widest for f in beyond)
    assert all(f.factors[0] > data.MIXTURE_FACTOR_RANGE[1]
               for f in families.FAMILIES if f.held_out and f.factors)


def test_weights_are_labelled():
    assert families.labelled(['a=x.pth', 'y.pth']) == {'a': 'x.pth', 'y.pth': 'y.pth'}


def test_evaluate_scores_every_family_and_keeps_examples(tmp_path):
    torch.manual_seed(0)
    Model(widths=(8, 8)).save(tmp_path / 'tiny.pth')
    generator = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 256, (6, 3, 16, 16), generator=generator, dtype=torch.uint8)
    chosen = [f for f in families.FAMILIES if f.process is not None][:2]
    sets = {f.name: (f.process(clean, generator, 1)[0], clean) for f in chosen}
    rows, shown = families.evaluate(sets, {'tiny': tmp_path / 'tiny.pth'}, examples=2)
    assert list(rows) == list(shown) == [f.name for f in chosen]
    for name, row in rows.items():
        assert set(row['models']) == {'tiny'} and row['held_out'] is False
        assert set(shown[name]) == {'clean', 'noisy', 'best filter', 'tiny'}
        assert all(v.shape == (2, 3, 16, 16) and v.dtype == torch.uint8
                   for v in shown[name].values())
        assert torch.equal(shown[name]['noisy'], sets[name][0][:2])
