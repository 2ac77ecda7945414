"""The real-photo comparison: every photo through the denoise command, a table and a figure."""
import math

import torch
from PIL import Image

from Miniproject_2.model import Model
from Miniproject_2.others import data, photos


def fake_photos():
    generator = torch.Generator().manual_seed(0)
    corners = torch.randint(0, 256, (2, 3, 3, 4), generator=generator, dtype=torch.uint8)
    images = [Image.fromarray(c.permute(1, 2, 0).numpy()).resize(size, Image.BICUBIC)
              for c, size in zip(corners, [(40, 36), (28, 44)])]
    return [data.Photo('test', f'p{i}', image.copy) for i, image in enumerate(images)]


def test_every_photo_and_noise_is_scored_through_the_command(tmp_path):
    torch.manual_seed(0)
    Model(widths=(8, 8)).save(tmp_path / 'tiny.pth')
    kept = []
    rows = photos.evaluate(fake_photos(), {'tiny': tmp_path / 'tiny.pth'},
                           keep=lambda noise, index, images: kept.append((noise, index, images)))
    assert list(rows) == list(photos.NOISES)
    for row in rows.values():
        assert all(math.isfinite(v) for v in (row['noisy'], row['blur']['psnr'],
                                              row['models']['tiny']))
        assert row['blur']['psnr'] > row['noisy']  # the best blur beats doing nothing
    assert [(noise, index) for noise, index, _ in kept] == [
        (noise, index) for noise in photos.NOISES for index in range(2)]
    # A camera's noise is scored against its noise-free rendering, other noise against the
    # photo itself.
    for noise, index, images in kept:
        with fake_photos()[index].open() as opened:
            photo = photos._pixels(opened)
        assert torch.equal(images['clean'], photo) == (not noise.startswith('camera')), noise
    first = kept[0][2]
    assert set(first) == {'clean', 'noisy', 'tiny'} and first['tiny'].shape == (1, 3, 36, 40)
    photos.draw_figure(first, 1.0, tmp_path / 'figure.png', crop=(4, 4, 24))
    assert Image.open(tmp_path / 'figure.png').size[0] > 400
