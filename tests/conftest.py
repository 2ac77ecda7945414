"""Fixtures shared by the tests of the supporting commands, and the hypothesis profile."""
import os

import pytest
import torch
from hypothesis import settings

# Replayable property tests. 'ci' (the default) draws the same examples on every run, so a
# failure in CI fails the same way on any machine; 'explore' (HYPOTHESIS_PROFILE=explore)
# draws new ones each run. Both print the @reproduce_failure blob of a failing example.
settings.register_profile('ci', derandomize=True, print_blob=True)
settings.register_profile('explore', derandomize=False, print_blob=True)
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))


@pytest.fixture
def data_folder(tmp_path):
    """A tiny course-format data folder: 64 noisy pairs (and their clean images, for
    Noise2Clean) and 16 validation pairs, all 16x16, noise sigma 20. The clean images are
    smooth (4x4 random colours, bilinearly upsampled), so that denoising them can succeed."""
    generator = torch.Generator().manual_seed(0)
    corners = torch.randint(0, 256, (80, 3, 4, 4), generator=generator).float()
    clean = torch.nn.functional.interpolate(corners, size=16, mode='bilinear',
                                            align_corners=False).round().to(torch.uint8)

    def noisy():
        noise = torch.randn(clean.shape, generator=generator) * 20
        return (clean + noise).round().clamp(0, 255).to(torch.uint8)
    folder = tmp_path / 'data'
    folder.mkdir()
    torch.save((noisy()[:64], noisy()[:64]), folder / 'train_data.pkl')
    torch.save((noisy()[64:], clean[64:]), folder / 'val_data.pkl')
    torch.save(clean[:64], folder / 'train_clean.pt')
    return folder


@pytest.fixture
def tune(monkeypatch):
    """``tune(**fields)``: from then on, the layers read ``tuning(device)`` with these fields
    changed, on every device (each call starts again from the real records)."""
    import dataclasses

    from Miniproject_2 import model
    real = model.tuning

    def change(**fields):
        monkeypatch.setattr(model, 'tuning',
                            lambda device: dataclasses.replace(real(device), **fields))
    return change
