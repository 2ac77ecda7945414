"""How the denoisers hold up on other noises than the course's: one table over families.

The handout warns that the test images' "noise characteristics may vary"; every family is
made from the validation photos.

    python -m Miniproject_2.others.families --data data --out results/families.json \
        --weights pixelation=results/pixelation/same-budget.pth \
        gaussian=results/gaussian/bestmodel.pth blind=Miniproject_2/bestmodel.pth

Families (``N_IMAGES`` images each, seeded; clean images are the block means of pixelated
squares of the validation photos, as in ``val_data.pkl``): ``FAMILIES``, each made by a
process of ``noises`` (or pixelation) with its parameters fixed. Those marked held out are
kept out of the blind model's training mixture: uniform, speckle and luminance noise,
Gaussian noise through a JPEG, pixelation by factors of 40-60, beyond the mixture's 2-30,
correlated noise of width 2, beyond the mixture's 0.5-1.5, and a camera's noise through a
demosaicing algorithm (pixel replication) or a tone curve (log) the mixture's camera never
uses. A factor is cut to what the square allows (photos are never upsampled), and the
validation photos' short sides of 300-512 px stop it at about 16; so that row pixelates
squares of the (much larger) training photos: new crops and draws, but photos the networks
have seen. Stuck pixels (black or white, all channels alike) are in training: the
mixture's ``stuck-pixels`` family.

The camera's rows and the JPEG one are measured against what their noisy copies are
versions of, the noise-free image through the same pipeline (``noises.with_reference``):
the detail that demosaicing and JPEG take from a 32 x 32 image is lost in every copy, so
no denoiser trained on pairs can bring it back.

Each row gives the noisy input's PSNR, the best classical filter's (``filters.tune``, tuned
on that family), and each weights file's, with the self-ensemble ``predict`` applies.
"""
import argparse
import dataclasses
import functools
import json
from pathlib import Path
from typing import Callable

import torch

from Miniproject_2.model import Model
from Miniproject_2.others import filters, noises
from Miniproject_2.others.data import (PATCH_SIZE, fetch_training_photos,
                                       fetch_validation_photos, sample_pixelated)

N_IMAGES = 500
EXAMPLES = 4  # images per family kept for the figure (--examples)


@dataclasses.dataclass(frozen=True)
class Family:
    """A row of the table: pixelation by ``factors`` (of the training photos if
    ``training_photos``), or ``process`` (a function of ``noises``'s kind) on the clean
    images."""

    name: str
    held_out: bool = False
    factors: tuple[int, int] | None = None
    training_photos: bool = False
    process: Callable | None = None


def _fixed(process, **parameters):
    return functools.partial(process, **parameters)


_SALT_AND_PEPPER = dict(random_valued_share=0, per_channel_share=0)
FAMILIES = (
    Family('pixelation, f 2-3', factors=(2, 3)),
    Family('pixelation, f 4-7', factors=(4, 7)),
    Family("pixelation, f 10-30 (the course's)", factors=(10, 30)),
    Family('pixelation, f 40-60, training photos', held_out=True, factors=(40, 60),
           training_photos=True),
    Family('Gaussian, sigma 10-43', process=_fixed(noises.gaussian, sigma=(10, 43))),
    Family('Gaussian, sigma 50', process=_fixed(noises.gaussian, sigma=(50, 50))),
    Family('Poisson-Gaussian, 20 photons + sigma 10',
           process=_fixed(noises.poisson_gaussian, peak=(20, 20), read_sigma=(10, 10))),
    Family('camera: 30 photons + sigma 5',
           process=_fixed(noises.poisson_gaussian, peak=(30, 30), read_sigma=(5, 5))),
    Family('Gaussian 15 + 5% impulses',
           process=_fixed(noises.impulses, rate=(0.05, 0.05), sigma=(15, 15),
                          over_gaussian_share=1, **_SALT_AND_PEPPER)),
    Family('salt and pepper, 10%',
           process=_fixed(noises.impulses, rate=(0.1, 0.1), over_gaussian_share=0,
                          **_SALT_AND_PEPPER)),
    Family('random-valued impulses, 10% of channels',
           process=_fixed(noises.impulses, rate=(0.1, 0.1), over_gaussian_share=0,
                          random_valued_share=1, per_channel_share=1)),
    Family('uniform, +-40', held_out=True, process=noises.uniform),
    Family('speckle, 25%', held_out=True, process=noises.speckle),
    Family('luminance, sigma 25', held_out=True, process=noises.luminance),
    # last, so that the generators of the rows above stay those they had before them
    Family('spatially correlated, sigma 20, width 1',
           process=_fixed(noises.correlated, sigma=(20, 20), width=(1, 1))),
    Family('spatially correlated, sigma 20, width 2', held_out=True,
           process=_fixed(noises.correlated, sigma=(20, 20), width=(2, 2))),
    # last too, for the same reason; each against the camera's noise-free rendering
    Family('camera pipeline, bright', process=noises.camera_at('bright')),
    Family('camera pipeline, bright, JPEG q90', process=noises.camera_at('bright', 90)),
    Family('camera pipeline, dark', process=noises.camera_at('dark')),
    Family('camera pipeline, dark, JPEG q90', process=noises.camera_at('dark', 90)),
    Family('camera pipeline, dark, pixel-replication demosaicing', held_out=True,
           process=noises.camera_at('dark', demosaicing=('nearest',))),
    Family('camera pipeline, dark, log tone curve', held_out=True,
           process=noises.camera_at('dark', curves=('log',))),
    Family('stuck pixels, 10%',
           process=_fixed(noises.stuck_pixels, rate=(0.1, 0.1), over_gaussian_share=0)),
    Family('Gaussian 15 + JPEG q85', held_out=True, process=noises.gaussian_jpeg),
)


def families(cache, seed=0):
    """{family name: (noisy, clean)}, uint8 batches N x 3 x 32 x 32, for ``FAMILIES``; a
    camera's ``clean`` is its reference (``noises.with_reference``)."""
    photos = {False: fetch_validation_photos(cache)}
    course_clean = None
    result = {}
    for index, family in enumerate(FAMILIES):
        generator = torch.Generator().manual_seed(seed * 1000 + index)
        if family.factors is not None:
            if family.training_photos and True not in photos:
                photos[True] = fetch_training_photos(cache)
            clean, (noisy,) = sample_pixelated(photos[family.training_photos], N_IMAGES,
                                               generator, 1, family.factors,
                                               desc=family.name)
            if family.factors == (10, 30):
                course_clean = clean
        else:
            if course_clean is None:
                raise ValueError(f'{family.name}: FAMILIES must list the course\'s pixelation '
                                 '(f 10-30), whose clean images it takes, before it')
            clean, (noisy,) = noises.with_reference(family.process, course_clean, generator, 1)
        result[family.name] = noisy, clean
    assert all(noisy.shape[-1] == PATCH_SIZE for noisy, _ in result.values())
    return result


def evaluate(sets, weights, examples=0):
    """The table's rows: per family, whether it is held out of the blind model's training,
    the noisy input's, the best filter's and each weights file's mean per-image PSNR (dB).
    ``weights``: {label: path}. With ``examples``, also {family: {'clean', 'noisy', 'best
    filter', label: uint8 images}} of the family's first ``examples`` images."""
    models = {}
    for label, path in weights.items():
        models[label] = Model()
        models[label].load_pretrained_model(path)
    held_out = {family.name: family.held_out for family in FAMILIES}
    rows, shown = {}, {}
    for name, (noisy, clean) in sets.items():
        tuned = filters.tune(noisy, clean)
        best = filters.best_filter(tuned)
        outputs = {label: model.predict(noisy) for label, model in models.items()}
        rows[name] = {'held_out': held_out[name],
                      'noisy': filters.score(noisy.float(), clean),
                      'best filter': {'name': best, **tuned[best]},
                      'models': {label: filters.score(output, clean)
                                 for label, output in outputs.items()}}
        filtered = filters.FILTERS[best][0](noisy[:examples], *tuned[best]['parameter'])
        shown[name] = {key: images[:examples].round().clamp(0, 255).to(torch.uint8)
                       for key, images in (('clean', clean), ('noisy', noisy),
                                           ('best filter', filtered), *outputs.items())}
        print(f'{name}: done', flush=True)
    return (rows, shown) if examples else rows


def print_table(rows):
    labels = list(next(iter(rows.values()))['models'])
    print('| noise | noisy | best filter | ' + ' | '.join(labels) + ' |')
    print('|---|---|---|' + '---|' * len(labels))
    for name, row in rows.items():
        filter_cell = f"{row['best filter']['psnr']:.2f} ({row['best filter']['name']})"
        cells = [f"{psnr:.2f} ({psnr - row['noisy']:+.2f})" for psnr in row['models'].values()]
        label = f'{name} (held out)' if row['held_out'] else name
        print(f"| {label} | {row['noisy']:.2f} | {filter_cell} | {' | '.join(cells)} |")


def labelled(entries):
    """{label: path} from ``LABEL=PATH`` (or ``PATH``, labelled by itself) entries."""
    return dict(entry.split('=', 1) if '=' in entry else (entry, entry) for entry in entries)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='data', help='the data folder (its cache/ holds '
                                                       'the validation photos)')
    parser.add_argument('--weights', nargs='+', default=[Model.weights_path()],
                        metavar='[LABEL=]PATH',
                        help='weights files to evaluate (default: the shipped one)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='write the rows as JSON here')
    parser.add_argument('--examples', default=None,
                        help="write each family's first images (clean, noisy, best filter, "
                             'each weights file) here, for the report\'s figure (a .pt file)')
    args = parser.parse_args(argv)
    weights = labelled(args.weights)
    rows, shown = evaluate(families(Path(args.data) / 'cache', args.seed), weights,
                           examples=EXAMPLES)
    print_table(rows)
    if args.examples:
        torch.save(shown, args.examples)
        print(f'wrote {args.examples}')
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({'seed': args.seed, 'n_images': N_IMAGES,
                                              'weights': weights, 'rows': rows}, indent=1)
                                  + '\n')
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
