"""Tests of the stand-in data builder, on small in-memory photos (no download)."""

import json
import math
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from Miniproject_2.others import data


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


def _smooth_photo(seed, width, height):
    """A smooth random colour image, upsampled from a few random pixels."""
    pixels = torch.randint(0, 256, (6, 8, 3), dtype=torch.uint8, generator=_generator(seed))
    return Image.fromarray(pixels.numpy()).resize((width, height), Image.BICUBIC)


def _photo(image, name="photo", source="test"):
    # sample_patches closes what it opens, so every open gets a fresh copy.
    return data.Photo(source, name, image.copy)


@pytest.fixture
def photos():
    return [_photo(_smooth_photo(0, 200, 150), "a", "first"),
            _photo(_smooth_photo(1, 96, 300), "b", "second")]


@pytest.fixture
def fake_sources(monkeypatch, photos):
    """Replace both photo fetchers by in-memory photos; count their calls."""
    calls = []

    def fetch(cache):
        calls.append(cache)
        return photos

    monkeypatch.setattr(data, "fetch_training_photos", fetch)
    monkeypatch.setattr(data, "fetch_validation_photos", fetch)
    return calls


# add_noise

def test_add_noise_shape_dtype_and_determinism():
    clean = torch.full((5, 3, 32, 32), 128, dtype=torch.uint8)
    sigma = torch.full((5,), 25.0)
    noisy = data.add_noise(clean, sigma, _generator(3))
    assert noisy.shape == clean.shape and noisy.dtype == torch.uint8
    assert torch.equal(noisy, data.add_noise(clean, sigma, _generator(3)))
    assert not torch.equal(noisy, data.add_noise(clean, sigma, _generator(4)))


@pytest.mark.parametrize("level", [0, 255])
def test_add_noise_clips_instead_of_wrapping(level):
    clean = torch.full((4, 3, 32, 32), level, dtype=torch.uint8)
    noisy = data.add_noise(clean, torch.full((4,), 10.0), _generator())
    # Without clipping, half the values would wrap around to the far end of the range.
    assert (noisy.int() - level).abs().max() <= 60
    assert 0.4 < (noisy == level).float().mean() < 0.6


def test_add_noise_uses_each_image_sigma_and_independent_draws():
    clean = torch.full((2, 3, 64, 64), 128, dtype=torch.uint8)
    sigma = torch.tensor([10.0, 40.0])
    generator = _generator()
    first = data.add_noise(clean, sigma, generator).float() - 128
    second = data.add_noise(clean, sigma, generator).float() - 128
    for noise in first, second:
        assert torch.allclose(noise.flatten(1).std(1), sigma, rtol=0.05)
    correlation = torch.corrcoef(torch.stack([first.flatten(), second.flatten()]))[0, 1]
    assert abs(correlation) < 0.05


def test_draw_sigmas_in_range():
    sigma = data.draw_sigmas(10000, _generator())
    assert sigma.min() >= data.SIGMA_MIN and sigma.max() <= data.SIGMA_MAX
    assert sigma.min() < data.SIGMA_MIN + 1 and sigma.max() > data.SIGMA_MAX - 1


# sample_patches

def test_sample_patches_shape_dtype_and_determinism(photos):
    patches = data.sample_patches(photos, 50, _generator(7))
    assert patches.shape == (50, 3, 32, 32) and patches.dtype == torch.uint8
    assert torch.equal(patches, data.sample_patches(photos, 50, _generator(7)))
    assert not torch.equal(patches, data.sample_patches(photos, 50, _generator(8)))


def test_sample_patches_keeps_channels_apart_and_converts_to_rgb():
    coloured = _photo(Image.new("RGB", (100, 80), (10, 120, 250)))
    grey = _photo(Image.new("L", (100, 80), 77))
    patches = data.sample_patches([coloured, grey], 40, _generator())
    colours = {tuple(patch[:, 0, 0].tolist()) for patch in patches}
    assert colours == {(10, 120, 250), (77, 77, 77)}
    assert all((patch == patch[:, :1, :1]).all() for patch in patches)


def test_sample_patches_of_a_32px_photo_is_the_photo():
    # The only 32 px square of a 32 px photo is the photo itself, left unchanged.
    image = _smooth_photo(2, 32, 32)
    patch = data.sample_patches([_photo(image)], 1, _generator())[0]
    assert torch.equal(patch.permute(1, 2, 0), torch.from_numpy(np.array(image)))


def test_sample_patches_area_averages_large_squares():
    # Half white, half black: squares across the edge average to greys, which
    # subsampling (nearest neighbour) would never produce.
    stripes = Image.new("RGB", (512, 512))
    stripes.paste((255, 255, 255), (0, 0, 512, 256))
    patches = data.sample_patches([_photo(stripes)], 200, _generator())
    assert set(torch.unique(patches).tolist()) - {0, 255}


# sample_pixelated (the process itself: test_noises)

def test_sample_pixelated_shape_determinism_and_factor_limits(photos):
    clean, noisy = data.sample_pixelated(photos, 20, _generator(7), 2, factors=(2, 3))
    assert clean.shape == (20, 3, 32, 32) and len(noisy) == 2
    again, noisy_again = data.sample_pixelated(photos, 20, _generator(7), 2, factors=(2, 3))
    assert torch.equal(clean, again) and torch.equal(noisy[1], noisy_again[1])
    # A factor larger than the square allows is cut down, never upsampled: 96 px photo.
    data.sample_pixelated(photos, 5, _generator(), 1, factors=(50, 60))
    with pytest.raises(ValueError, match="f_min <= f_max"):
        data.sample_pixelated(photos, 5, _generator(), 1, factors=(3, 2))


def test_noise_statistics_of_a_known_noise():
    clean = torch.full((4, 3, 8, 8), 100, dtype=torch.uint8)
    noisy = clean.clone()
    noisy[:, :, :4] = 200  # half the pixels off by 100 in all channels, the rest exact
    stats = data.noise_statistics(noisy, clean)
    assert stats["within_1"] == 0.5 and stats["beyond_60"] == 0.5
    assert stats["rgb_correlation"] == pytest.approx(1.0)
    assert stats["psnr_mean_db"] == pytest.approx(-10 * math.log10(0.5 * (100 / 255) ** 2))


# build, ensure_data and main

def test_build_writes_the_course_format(tmp_path, fake_sources):
    train_path, val_path = data.ensure_data(tmp_path, n_train=12, n_val=5, seed=1)
    assert (train_path, val_path) == (tmp_path / "train_data.pkl", tmp_path / "val_data.pkl")
    train, val = torch.load(train_path), torch.load(val_path)
    for pair, n in (train, 12), (val, 5):
        assert isinstance(pair, tuple) and len(pair) == 2
        for tensor in pair:
            assert tensor.shape == (n, 3, 32, 32) and tensor.dtype == torch.uint8
    assert not torch.equal(*train)
    sigma = torch.load(tmp_path / "val_sigma.pt")
    rms = (val[0].float() - val[1].float()).flatten(1).pow(2).mean(1).sqrt()
    assert sigma.shape == (5,) and torch.allclose(sigma, rms)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["noise"] == "pixelation"
    assert stats["train_photos_per_source"] == {"first": 1, "second": 1}
    assert stats["val"] == pytest.approx(data.noise_statistics(*val))
    assert stats["val"]["psnr_mean_db"] == pytest.approx(data.psnr_per_image(*val).mean().item())
    assert fake_sources == [tmp_path / "cache"] * 2


def test_build_with_gaussian_noise(tmp_path, fake_sources):
    data.build(tmp_path, n_train=6, n_val=400, seed=1, noise="gaussian")
    noisy, clean = torch.load(tmp_path / "val_data.pkl")
    noise = noisy.float() - clean.float()
    # Gaussian noise is spatially independent of the image: it is nowhere near zero in
    # flat regions, unlike pixelation; its level lies in the sigma range (less clipping).
    assert (noise.abs() <= 1).float().mean() < 0.1
    assert data.SIGMA_MIN * 0.8 < noise.std() < data.SIGMA_MAX
    with pytest.raises(ValueError, match="noise must be one of"):
        data.build(tmp_path, n_train=6, n_val=4, noise="speckle")


def test_build_is_deterministic_and_validation_ignores_n_train(tmp_path, fake_sources):
    data.build(tmp_path / "a", n_train=8, n_val=4, seed=5)
    data.build(tmp_path / "b", n_train=8, n_val=4, seed=5)
    data.build(tmp_path / "c", n_train=16, n_val=4, seed=5)
    for name in "train_data.pkl", "val_data.pkl", "val_sigma.pt":
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert torch.equal(torch.load(tmp_path / "a" / "val_data.pkl")[0],
                       torch.load(tmp_path / "c" / "val_data.pkl")[0])


def test_existing_files_are_not_rebuilt_unless_forced(tmp_path, fake_sources, capsys):
    data.main(["--out", str(tmp_path), "--n-train", "8", "--n-val", "4"])
    written = (tmp_path / "train_data.pkl").stat().st_mtime_ns
    assert len(fake_sources) == 2
    data.main(["--out", str(tmp_path), "--n-train", "8", "--n-val", "4"])
    assert "nothing to do" in capsys.readouterr().out
    assert len(fake_sources) == 2
    assert (tmp_path / "train_data.pkl").stat().st_mtime_ns == written
    data.main(["--out", str(tmp_path), "--n-train", "8", "--n-val", "4", "--force",
               "--cache", str(tmp_path / "elsewhere")])
    assert fake_sources[2:] == [tmp_path / "elsewhere"] * 2


def test_family_weights_from_the_command_line(tmp_path, fake_sources, capsys):
    data.main(["--out", str(tmp_path), "--n-train", "40", "--n-val", "4", "--noise", "mixture",
               "--family-weights", "gaussian=3", "impulses=0"])
    stats = json.loads((tmp_path / data.STATS_FILE).read_text())
    assert stats["family_weights"] == {"gaussian": 3, "poisson-gaussian": 1, "impulses": 0,
                                       "correlated": 1, "camera": 1, "stuck-pixels": 1}
    assert "impulses" not in stats["train_pairs_per_family"]
    with pytest.raises(SystemExit):
        data.main(["--out", str(tmp_path), "--family-weights", "gaussian"])
    assert "FAMILY=WEIGHT" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        data.main(["--out", str(tmp_path), "--family-weights", "gaussian=2"])
    assert "--noise mixture only" in capsys.readouterr().err
    for bad, message in ((["--family-weights", "blur=1"], "unknown mixture families"),
                         (["--family-weights", "gaussian=0", "poisson-gaussian=0", "impulses=0",
                           "correlated=0", "camera=0", "stuck-pixels=0"], "not all 0"),
                         (["--pixelation-share", "1.5"], "pixelation_share must be in")):
        with pytest.raises(SystemExit):
            data.main(["--out", str(tmp_path / "bad"), "--noise", "mixture", *bad])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_bad_mixture_settings_fail_before_any_photo_is_fetched(tmp_path, fake_sources):
    with pytest.raises(ValueError, match="unknown mixture families"):
        data.build(tmp_path, n_train=4, n_val=4, noise="mixture", family_weights={"blur": 1})
    with pytest.raises(ValueError, match="pixelation_share"):
        data.build(tmp_path, n_train=4, n_val=4, noise="mixture", pixelation_share=2)
    assert fake_sources == []


def test_failed_apt_download_names_the_package(tmp_path, monkeypatch):
    def fail(command, **kwargs):
        return subprocess.CompletedProcess(command, 100, "", "E: Unable to locate package")

    monkeypatch.setattr(subprocess, "run", fail)
    expected = "(?s)apt-get download mate-backgrounds.*apt-get update"
    with pytest.raises(RuntimeError, match=expected):
        data.fetch_training_photos(tmp_path)


def test_psnr_definitions():
    clean = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    noisy = clean.clone()
    noisy[0] = 255
    assert data.psnr_per_image(noisy, clean).tolist() == pytest.approx([0.0, 80.0], abs=1e-6)
    assert data.psnr_global(noisy, clean) == pytest.approx(-10 * math.log10(0.5))


def test_build_with_the_mixture(tmp_path, fake_sources):
    """Training pairs of every family with their families file; validation pairs are the
    pixelation build's clean images with the same mixture of noises, but for a camera's
    pairs, whose clean image is the camera's noise-free rendering."""
    stats = data.build(tmp_path / "mix", n_train=420, n_val=200, seed=2, noise="mixture",
                       pixelation_share=0.4)
    data.build(tmp_path / "pixelation", n_train=5, n_val=200, seed=2)
    saved = torch.load(tmp_path / "mix" / data.TRAIN_FAMILIES_FILE, weights_only=True)
    assert saved["families"][0] == "pixelation" and saved["index"].shape == (420,)
    counts = saved["index"].bincount(minlength=len(saved["families"]))
    assert 130 < counts[0] < 210 and (counts[1:] > 25).all()
    assert stats["train_pairs_per_family"]["pixelation"] == counts[0]
    assert stats["factor_range"] == list(data.MIXTURE_FACTOR_RANGE)
    mixed, clean = torch.load(tmp_path / "mix" / data.VAL_FILE, weights_only=True)
    pixelated, same_clean = torch.load(tmp_path / "pixelation" / data.VAL_FILE,
                                       weights_only=True)
    kept = (mixed == pixelated).flatten(1).all(1)
    assert kept.sum() == stats["val_pairs_per_family"]["pixelation"]
    assert 50 < kept.sum() < 110
    rendered = (clean != same_clean).flatten(1).any(1)
    assert 0 < rendered.sum() <= stats["val_pairs_per_family"]["camera"]
    assert not (rendered & kept).any()
    sigma = torch.load(tmp_path / "mix" / data.VAL_SIGMA_FILE, weights_only=True)
    assert torch.allclose(sigma, (mixed.float() - clean.float()).flatten(1).pow(2).mean(1).sqrt())
    assert not (tmp_path / "pixelation" / data.TRAIN_FAMILIES_FILE).exists()


def test_a_photo_subset_is_nested_and_the_build_draws_from_it(tmp_path, fake_sources, photos):
    """``--training-photos K``: the first K of a fixed shuffle, so that a smaller subset is
    inside a larger one; the training pairs come from those photos only, the validation
    pairs do not change."""
    names = [[p.name for p in data.photo_subset(photos, k)] for k in range(1, len(photos) + 1)]
    assert all(set(small) < set(large) for small, large in zip(names, names[1:]))
    assert sorted(names[-1]) == sorted(p.name for p in photos)
    with pytest.raises(ValueError, match="training_photos must be in"):
        data.photo_subset(photos, 0)
    stats = data.build(tmp_path / "one", n_train=20, n_val=4, training_photos=1)
    data.build(tmp_path / "all", n_train=20, n_val=4)
    assert stats["training_photos"] == 1
    assert sum(stats["train_photos_per_source"].values()) == 1
    one, all_ = (torch.load(tmp_path / name / data.VAL_FILE, weights_only=True)
                 for name in ("one", "all"))
    assert all(torch.equal(a, b) for a, b in zip(one, all_))
