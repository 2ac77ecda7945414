"""The bias each loss leaves on Noise2Noise targets, as ``bias`` measures it."""
import math

import pytest
import torch
from PIL import Image

from Miniproject_2.others import bias, data, noises


def test_bias_ceilings_see_the_mean_s_bias_and_not_the_sampling_noise():
    """Unbiased copies (noise of mean 0 and median 0) give ceilings far above what the noise
    alone would give; copies shifted by ten grey levels in a tenth of the draws bias the mean
    by one grey level, a ceiling of 20 log10(255), and leave the median alone."""
    g = torch.Generator().manual_seed(0)
    clean = torch.full((20, 3, 8, 8), 100.0, dtype=torch.float64)
    copies = clean + 10 * torch.randn((200, *clean.shape), generator=g, dtype=torch.float64)
    assert min(bias.bias_ceilings(copies, clean).values()) > 50
    impulses = torch.rand((200, *clean.shape), generator=g) < 0.1
    shifted = torch.where(impulses, clean + 10, clean)
    ceilings = bias.bias_ceilings(shifted, clean)
    assert ceilings['squared loss (mean)'] == pytest.approx(20 * math.log10(255 / 1), abs=0.3)
    assert ceilings['absolute loss (median)'] == math.inf


def test_a_camera_s_bias_is_measured_against_its_reference():
    """A camera at its bright level leaves little bias on its targets, against the image
    they are noisy versions of; against the clean image, demosaicing's loss of a random
    texture's detail would cap both ceilings near 20 dB."""
    g = torch.Generator().manual_seed(0)
    texture = torch.randint(0, 256, (96, 96, 3), generator=g, dtype=torch.uint8)
    photo = Image.fromarray(texture.numpy()).resize((320, 320), Image.NEAREST)
    rows = bias.target_bias([data.Photo('test', 'texture', photo.copy)], n_images=4, draws=20)
    assert set(bias.camera_settings()) <= set(rows) and set(noises.PROCESSES) <= set(rows)
    assert min(rows['camera, bright'].values()) > 40
