"""How the denoiser holds up when the noise differs from the course's ("noise characteristics
may vary"): one table over families of noise, all made from the validation photos.

    python -m Miniproject_2.others.families --data data --out results/families.json \
        [--weights Miniproject_2/bestmodel.pth results/gaussian/bestmodel.pth]

Families (500 images each, seeded; clean images are the block means of pixelated squares
of the validation photos, as in ``val_data.pkl``):

- pixelation with factors below, inside and above the training range. A factor is cut to
  what the square allows (photos are never upsampled), and the validation photos' short
  sides of 300-512 px stop it at about 16; so the row above the range pixelates squares of
  the (much larger) training photos: new crops and draws, but photos the network has seen;
- Gaussian noise, sigma uniform in [10, 43] (the set the project first trained on);
- Poisson-Gaussian (photon noise at a peak of 20 photons for white, plus sigma 10);
- Gaussian noise (sigma 15) with 5% of the pixels set to 0 or 255 (impulses).

Each row gives the noisy input's PSNR, the best classical filter's (``filters.tune``, tuned
on that family), and each weights file's, with the self-ensemble ``predict`` applies.
"""
import argparse
import json
from pathlib import Path

import torch

from Miniproject_2.model import Model
from Miniproject_2.others import filters
from Miniproject_2.others.data import (PATCH_SIZE, add_noise, fetch_training_photos,
                                       fetch_validation_photos, sample_pixelated)

N_IMAGES = 500


def _generator(seed):
    return torch.Generator().manual_seed(seed)


def _quantized(images):
    return images.round().clamp(0, 255).to(torch.uint8)


def poisson_gaussian(clean, generator, peak=20.0, sigma=10.0):
    photons = torch.poisson(clean.double() / 255 * peak, generator=generator)
    gaussian = torch.randn(clean.shape, generator=generator, dtype=torch.float64) * sigma
    return _quantized(photons * (255 / peak) + gaussian)


def gaussian_with_impulses(clean, generator, sigma=15.0, fraction=0.05):
    noisy = add_noise(clean, torch.full((clean.shape[0],), sigma), generator)
    hit = torch.rand(clean.shape[0], 1, *clean.shape[2:], generator=generator) < fraction
    salt = torch.rand(hit.shape, generator=generator) < 0.5
    return torch.where(hit, salt.to(torch.uint8) * 255, noisy)


def pixelation_family(photos, factors, seed):
    clean, (noisy,) = sample_pixelated(photos, N_IMAGES, _generator(seed), 1, factors,
                                       desc=f'pixelation f {factors[0]}-{factors[1]}')
    return noisy, clean


def families(cache, seed=0):
    """{family name: (noisy, clean)}, uint8 batches N x 3 x 32 x 32."""
    photos = fetch_validation_photos(cache)
    result = {f'pixelation, f {low}-{high}': pixelation_family(photos, (low, high), seed)
              for low, high in ((2, 3), (4, 7), (10, 30))}
    result['pixelation, f 40-60, training photos'] = pixelation_family(
        fetch_training_photos(cache), (40, 60), seed)
    _, clean = result['pixelation, f 10-30']
    generator = _generator(seed + 1)
    sigma = 10 + 33 * torch.rand(clean.shape[0], generator=generator)
    result['Gaussian, sigma 10-43'] = add_noise(clean, sigma, generator), clean
    result['Poisson-Gaussian'] = poisson_gaussian(clean, generator), clean
    result['Gaussian + 5% impulses'] = gaussian_with_impulses(clean, generator), clean
    assert all(noisy.shape[-1] == PATCH_SIZE for noisy, _ in result.values())
    return result


def evaluate(sets, weights):
    """The table's rows: per family, the noisy input's, the best filter's and each weights
    file's mean per-image PSNR (dB)."""
    models = {}
    for path in weights:
        models[str(path)] = Model()
        models[str(path)].load_pretrained_model(path)
    rows = {}
    for name, (noisy, clean) in sets.items():
        tuned = filters.tune(noisy, clean)
        best = filters.best_filter(tuned)
        rows[name] = {'noisy': filters.score(noisy.float(), clean),
                      'best filter': {'name': best, **tuned[best]},
                      'models': {path: filters.score(model.predict(noisy), clean)
                                 for path, model in models.items()}}
    return rows


def print_table(rows):
    weights = list(next(iter(rows.values()))['models'])
    print('| noise | noisy | best filter | ' + ' | '.join(f'`{w}`' for w in weights) + ' |')
    print('|---|---|---|' + '---|' * len(weights))
    for name, row in rows.items():
        filter_cell = f"{row['best filter']['psnr']:.2f} ({row['best filter']['name']})"
        cells = [f"{psnr:.2f} ({psnr - row['noisy']:+.2f})" for psnr in row['models'].values()]
        print(f"| {name} | {row['noisy']:.2f} | {filter_cell} | {' | '.join(cells)} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='data', help='the data folder (its cache/ holds '
                                                       'the validation photos)')
    parser.add_argument('--weights', nargs='+', default=[Model.weights_path()],
                        help='weights files to evaluate (default: the shipped one)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='write the rows as JSON here')
    args = parser.parse_args(argv)
    rows = evaluate(families(Path(args.data) / 'cache', args.seed), args.weights)
    print_table(rows)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({'seed': args.seed, 'n_images': N_IMAGES,
                                              'rows': rows}, indent=1) + '\n')
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
