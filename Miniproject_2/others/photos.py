"""Whole photographs with a camera's noise, denoised through the ``denoise`` command.

What a user who runs it on a photo gets, beside a tuned blur.

    python -m Miniproject_2.others.photos --data data --out results/photos.json \
        --figure results/photos.png \
        --weights pixelation=results/pixelation/same-budget.pth \
        gaussian=results/gaussian/bestmodel.pth blind=Miniproject_2/bestmodel.pth

The validation photos (never trained on) at full size, 300x451 to 600x512 pixels, each with
``NOISES`` drawn on it (seeded): a camera's whole pipeline in a dark scene (raw shot and
read noise, demosaicing, tone curve; ``noises.camera_at``), the same with a JPEG, and
Gaussian noise. Each is measured against the image its noise is drawn around
(``noises.with_reference``: the camera's noise-free rendering). Every noisy photo is written
as a PNG and denoised by ``denoise.denoise_file`` (the command's own code, with its
self-ensemble) for each weights file; the table gives the mean PSNR over the photos of the
noisy input, the Gaussian blur whose sigma is best on average over these photos
(``filters``), and each weights file. ``--figure`` draws a crop of the
first photo under the first noise: clean, noisy, the blur and each weights file.
"""
import argparse
import functools
import json
import tempfile
from pathlib import Path

import torch

from Miniproject_2.model import Model
from Miniproject_2.others import filters, noises
from Miniproject_2.others.data import fetch_validation_photos, psnr_per_image
from Miniproject_2.others.denoise import denoise_file, read_image
from Miniproject_2.others.families import labelled

NOISES = {
    'camera pipeline, dark': noises.camera_at('dark'),
    'camera pipeline, dark, JPEG q90': noises.camera_at('dark', 90),
    'Gaussian, sigma 25': functools.partial(noises.gaussian, sigma=(25, 25)),
}
CROP = (96, 176, 160)  # the figure's crop of the first photo: top, left, side


def _pixels(image):
    """A Pillow RGB image as a uint8 tensor 1 x 3 x H x W."""
    data = torch.frombuffer(bytearray(image.convert('RGB').tobytes()), dtype=torch.uint8)
    return data.view(1, image.height, image.width, 3).permute(0, 3, 1, 2).contiguous()


def _save(pixels, path):
    from PIL import Image
    Image.fromarray(pixels[0].permute(1, 2, 0).contiguous().numpy()).save(path)


def _mean(values):
    return sum(values) / len(values)


def _psnr(image, clean):
    return psnr_per_image(image.float().clamp(0, 255), clean).item()


def evaluate(photos, weights, seed=0, keep=None):
    """{noise: {'noisy', 'blur': {'sigma', 'psnr'}, 'models': {label: psnr}}}, PSNRs the
    mean over ``photos``. ``keep(noise, photo index, {name: image})``, if given, gets every
    image made (for the figure)."""
    rows = {}
    for n, (name, process) in enumerate(NOISES.items()):
        generator = torch.Generator().manual_seed(seed * 100 + n)
        scores = {'noisy': [], 'models': {label: [] for label in weights}}
        blurs = {sigma: [] for (sigma,) in filters.FILTERS['Gaussian blur'][1]}
        for index, photo in enumerate(photos):
            with photo.open() as opened:
                clean, (noisy,) = noises.with_reference(process, _pixels(opened), generator, 1)
            images = {'clean': clean, 'noisy': noisy}
            scores['noisy'].append(_psnr(noisy, clean))
            for sigma, psnr in blurs.items():
                psnr.append(_psnr(filters.gaussian_blur(noisy, sigma), clean))
            with tempfile.TemporaryDirectory() as folder:
                _save(noisy, Path(folder) / 'noisy.png')
                for label, path in weights.items():
                    denoise_file(Path(folder) / 'noisy.png', Path(folder) / 'out.png', path)
                    images[label] = _pixels(read_image(Path(folder) / 'out.png'))
                    scores['models'][label].append(_psnr(images[label], clean))
            print(f'{name}, {photo.name}: noisy {scores["noisy"][-1]:.2f} dB, '
                  + ', '.join(f'{label} {s[-1]:.2f}' for label, s in scores['models'].items()),
                  flush=True)
            if keep is not None:
                keep(name, index, images)
        sigma = max(blurs, key=lambda s: _mean(blurs[s]))
        rows[name] = {'noisy': _mean(scores['noisy']),
                      'blur': {'sigma': sigma, 'psnr': _mean(blurs[sigma])},
                      'models': {label: _mean(s) for label, s in scores['models'].items()}}
    return rows


def draw_figure(images, blur_sigma, path, crop=CROP):
    """A row of crops (``crop``: top, left, side): clean, noisy, the tuned blur, then each
    weights file's output."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    top, left, side = crop
    panels = {'clean': images['clean'], 'noisy': images['noisy'],
              f'blur, sigma {blur_sigma:g}': filters.gaussian_blur(images['noisy'], blur_sigma),
              **{label: image for label, image in images.items()
                 if label not in ('clean', 'noisy')}}
    figure, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.5))
    clean = images['clean'][..., top:top + side, left:left + side]
    for axis, (label, image) in zip(axes, panels.items()):
        crop = image[..., top:top + side, left:left + side].float().clamp(0, 255)
        axis.imshow(crop[0].permute(1, 2, 0).round().byte().numpy())
        score = '' if label == 'clean' else f'\n{_psnr(crop, clean):.2f} dB (crop)'
        axis.set_title(label + score, fontsize=9)
        axis.axis('off')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='data', help='the data folder (its cache/ holds '
                                                       'the validation photos)')
    parser.add_argument('--weights', nargs='+', default=[Model.weights_path()],
                        metavar='[LABEL=]PATH', help='weights files (default: the shipped one)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='write the table as JSON here')
    parser.add_argument('--figure', default=None, help='draw the side-by-side crop here')
    args = parser.parse_args(argv)
    weights = labelled(args.weights)
    photos = fetch_validation_photos(Path(args.data) / 'cache')
    first = {}  # the images of the first photo under the first noise, for the figure
    rows = evaluate(photos, weights, args.seed,
                    keep=lambda noise, index, images: first.setdefault('images', images))
    print('| noise | noisy | best blur | ' + ' | '.join(weights) + ' |')
    print('|---|---|---|' + '---|' * len(weights))
    for name, row in rows.items():
        cells = ' | '.join(f'{psnr:.2f}' for psnr in row['models'].values())
        print(f"| {name} | {row['noisy']:.2f} | {row['blur']['psnr']:.2f} "
              f"(sigma {row['blur']['sigma']:g}) | {cells} |")
    if args.out:
        Path(args.out).write_text(json.dumps({'seed': args.seed, 'weights': weights,
                                              'photos': [p.name for p in photos],
                                              'rows': rows}, indent=1) + '\n')
        print(f'wrote {args.out}')
    if args.figure:
        draw_figure(first['images'], rows[next(iter(NOISES))]['blur']['sigma'], args.figure)
        print(f'wrote {args.figure}')


if __name__ == '__main__':
    main()
