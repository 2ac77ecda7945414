"""Fixtures shared by the tests of the supporting commands."""
import pytest
import torch


@pytest.fixture
def data_folder(tmp_path):
    """A tiny course-format data folder: 64 noisy pairs (and their clean images, for
    Noise2Clean) and 16 validation pairs, all 16x16."""
    generator = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 256, (80, 3, 16, 16), generator=generator, dtype=torch.uint8)

    def noisy():
        noise = torch.randn(clean.shape, generator=generator) * 20
        return (clean + noise).round().clamp(0, 255).to(torch.uint8)
    folder = tmp_path / 'data'
    folder.mkdir()
    torch.save((noisy()[:64], noisy()[:64]), folder / 'train_data.pkl')
    torch.save((noisy()[64:], clean[64:]), folder / 'val_data.pkl')
    torch.save(clean[:64], folder / 'train_clean.pt')
    return folder
