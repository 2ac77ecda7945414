"""The classical baselines (filters.py) and the noise families (families.py)."""
import inspect

import pytest
import torch
from PIL import Image

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
    (stuck,) = family('stuck pixels, 10%').process(clean, generator, 1)
    hit = stuck != 128
    assert 0.08 < hit.all(1).float().mean() < 0.12 and torch.equal(hit.any(1), hit.all(1))
    assert (stuck[:, :1] == stuck).all() and set(stuck[hit].tolist()) == {0, 255}
    (photon,) = family('Poisson-Gaussian, 20 photons + sigma 10').process(clean, generator, 1)
    photon = photon.float() - 128
    # Poisson at peak 20 (variance 128/255 * 20 photons of 255/20 each) plus sigma 10.
    expected = (128 / 255 * 20 * (255 / 20) ** 2 + 10 ** 2) ** 0.5
    assert photon.std() == pytest.approx(expected, rel=0.05)
    assert abs(photon.mean()) < 1


def test_the_held_out_families_are_not_in_the_training_mixture():
    """A held-out row is a process the mixture lacks, or a mixture family's beyond what the
    mixture draws: pixelation factors, correlated noise's widths, the camera's demosaicing
    algorithms and tone curves."""
    def name(process):  # its family's, in noises.PROCESSES
        function = getattr(process, 'func', process)
        return next(name for name, f in noises.PROCESSES.items() if f is function)

    def default(process, parameter):
        return inspect.signature(process).parameters[parameter].default
    held_out = [f for f in families.FAMILIES if f.held_out and f.process is not None]
    beyond = [f for f in held_out if name(f.process) in noises.MIXTURE_FAMILIES]
    assert {name(f.process) for f in held_out if f not in beyond} == set(
        noises.HELD_OUT_FAMILIES)
    widest = default(noises.correlated, 'width')[1]
    cameras = [f.process.keywords for f in beyond if name(f.process) == 'camera']
    assert all(f.process.keywords['width'][0] > widest
               for f in beyond if name(f.process) == 'correlated')
    assert {name(f.process) for f in beyond} == {'correlated', 'camera'}
    trained = [default(noises.camera_pipeline, parameter) for parameter in ('demosaicing',
                                                                           'curves')]
    assert all(not set(camera.get('demosaicing', ())) <= set(trained[0])
               or not set(camera.get('curves', ())) <= set(trained[1]) for camera in cameras)
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


def test_families_measure_a_camera_against_its_reference(monkeypatch):
    """A camera's row keeps the image its noisy copies are versions of as its clean one; the
    other rows keep the course's clean images."""
    photo = Image.fromarray(_images(n=1, size=48)[0].permute(1, 2, 0).numpy()).resize(
        (400, 400), Image.BICUBIC)
    monkeypatch.setattr(families, 'fetch_validation_photos',
                        lambda cache: [data.Photo('test', 'photo', photo.copy)])
    monkeypatch.setattr(families, 'N_IMAGES', 3)
    chosen = ("pixelation, f 10-30 (the course's)", 'Gaussian, sigma 50',
              'camera pipeline, dark, JPEG q90')
    rows = [f for f in families.FAMILIES if f.name in chosen]
    monkeypatch.setattr(families, 'FAMILIES', tuple(rows))
    sets = families.families(None)
    course = sets[chosen[0]][1]
    assert torch.equal(sets[chosen[1]][1], course)
    reference, (noisy,) = noises.with_reference(rows[2].process, course,
                                                torch.Generator().manual_seed(2), 1)
    assert torch.equal(sets[chosen[2]][1], reference) and not torch.equal(reference, course)
    assert torch.equal(sets[chosen[2]][0], noisy)
