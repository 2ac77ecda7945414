"""The shipped weights from scratch in one command: build the data, train, ship.

    python -m Miniproject_2.others.recipe                     # the blind (shipped) weights
    python -m Miniproject_2.others.recipe --model pixelation  # the same recipe, course noise
    python -m Miniproject_2.others.recipe --model gaussian    # the same recipe, Gaussian noise
    python -m Miniproject_2.others.recipe --check 2           # the first 2 epochs again

Each model (``MODELS``) has its data folder, built from the photos if it is missing or was
built otherwise (``stale``: another photo pool, noise or mixture), and its run folder
``results/runs/recipe-<model>``: ``EPOCHS`` epochs from random weights, one warm-up and
cosine schedule to a peak of ``PEAK_LR``, the other training defaults of ``train``
(``Recipe``), seed 0. The run checkpoints every epoch and the same command resumes it where
it stopped; ``--stop-after N`` stops after N epochs of the schedule, to go on in a later
sitting. When the blind run is complete, its best epoch's weights are copied to
``Miniproject_2/bestmodel.pth``; the other two are the specialists it is measured against,
trained alike (same budget, same seed, their own noise).

The blind model's pairs (``FAMILY_WEIGHTS``): half pixelated as the course's (factors
2-30), half of the mixture's other families in these proportions, the camera's pipeline
weighted as much as Gaussian noise: the noise of real photographs, which the families drawn
pixel by pixel in sRGB did not teach.

``--photo-curve results/photo_curve.json`` measures what more photos buy: the same network,
``CURVE_EPOCHS`` epochs of ``CURVE_PAIRS`` pixelated pairs drawn from a quarter, a half and
all of the pool (``data --training-photos``), each scored on the same validation pairs.

``--check N`` trains the model's first N epochs again, from the same seed and data, in a
temporary folder, and compares each epoch's validation PSNR with the run's log: the log is
what the command makes, within ``CHECK_TOLERANCE_DB`` (threads may sum in another order).
"""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from Miniproject_2.model import Model
from Miniproject_2.others.data import (STATS_FILE, TRAINING_SOURCES, ensure_data,
                                       fetch_training_photos)
from Miniproject_2.others.train import load_pairs, parse_settings, train_run
from Miniproject_2.others.train import run_folder as train_run_folder

EPOCHS = 30
# Half train's default: at 2e-3 the blind run's weights blew up within its first epoch (step
# 928: the loss of a batch from 0.01 to 3297, every image's output off by 60-200).
PEAK_LR = 1e-3
FAMILY_WEIGHTS = {'gaussian': 3, 'poisson-gaussian': 2, 'impulses': 1, 'correlated': 1,
                  'camera': 3, 'stuck-pixels': 1}
MODELS = {
    'blind': ('data-blind', dict(noise='mixture', pixelation_share=0.5,
                                 family_weights=FAMILY_WEIGHTS)),
    'pixelation': ('data', dict(noise='pixelation')),
    'gaussian': ('data-gaussian', dict(noise='gaussian')),
}
CHECK_TOLERANCE_DB = 0.05
# The photo-count curve: the recipe's network on the course's pixelation, 20,000 pairs drawn
# from a share of the pool, 2 epochs: the same steps for every count.
CURVE_SHARES = (0.25, 0.5, 1.0)
CURVE_PAIRS, CURVE_EPOCHS = 20000, 2


def run_folder(model):
    """``results/runs/recipe-<model>``: where a run of the recipe lives."""
    return train_run_folder('recipe', model)


def settings_of(model, data_root):
    """The ``train`` settings of ``model``'s run (its data folder under ``data_root``)."""
    folder, _ = MODELS[model]
    settings, _ = parse_settings(['--data', str(Path(data_root) / folder),
                                  '--run', str(run_folder(model)), '--epochs', str(EPOCHS),
                                  '--lr', str(PEAK_LR)])
    return settings


def stale(folder, options):
    """Why the stand-in in ``folder`` is not what ``data.build`` makes with ``options`` now
    (another photo pool, noise or mixture), or None. A folder without ``stats.json`` (the
    course's own files) is kept."""
    stats_path = Path(folder) / STATS_FILE
    if not stats_path.is_file():
        return None
    stats = json.loads(stats_path.read_text())
    sources = {source.package for source in TRAINING_SOURCES}
    if set(stats.get('train_photos_per_source', {})) != sources:
        return (f"built from {len(stats.get('train_photos_per_source', {}))} photo sources, "
                f'not the {len(sources)} of TRAINING_SOURCES')
    if stats.get('noise') != options['noise']:
        return f"its noise is {stats.get('noise')}, not {options['noise']}"
    if 'family_weights' in options and stats.get('family_weights') != options['family_weights']:
        return f"its family weights are {stats.get('family_weights')}"
    return None


def build_data(model, data_root):
    """``model``'s data folder, built if missing or ``stale`` (the photos cached in
    ``data_root/data``)."""
    folder, options = MODELS[model]
    path = Path(data_root) / folder
    reason = stale(path, options)
    if reason:
        print(f'rebuilding {path}: {reason}', file=sys.stderr)
    ensure_data(path, force=reason is not None, cache=Path(data_root) / 'data' / 'cache',
                **options)


def train(model, data_root, stop_after=None, ship_to=None):
    """Build the data if needed, then train (or resume) ``model``'s run; return its log.
    When the blind run is complete, its best weights are copied to ``ship_to``."""
    build_data(model, data_root)
    settings = settings_of(model, data_root)
    run = run_folder(model)
    log, _ = train_run(settings, load_pairs(settings['data']), run, run / 'bestmodel.pth',
                       stop_after)
    if model == 'blind' and ship_to is not None and len(log['epochs']) == EPOCHS:
        shutil.copyfile(run / 'bestmodel.pth', ship_to)
        print(f'copied the best epoch to {ship_to}', file=sys.stderr)
    return log


def check(model, data_root, epochs):
    """Train ``model``'s first ``epochs`` epochs again in a temporary run folder; return
    [(epoch, logged PSNR, rerun PSNR)], raising if the log has fewer epochs."""
    logged = json.loads((run_folder(model) / 'log.json').read_text())
    if len(logged['epochs']) < epochs:
        raise ValueError(f'{run_folder(model)} has {len(logged["epochs"])} epochs logged, '
                         f'fewer than the {epochs} to check')
    settings = settings_of(model, data_root)
    with tempfile.TemporaryDirectory() as folder:
        rerun, _ = train_run(settings, load_pairs(settings['data']), folder,
                             stop_after=epochs)
    return [(first['epoch'], first['val_psnr'], again['val_psnr'])
            for first, again in zip(logged['epochs'], rerun['epochs'])]


def photo_curve(data_root, out=None):
    """{photos: best validation PSNR} of ``CURVE_EPOCHS`` epochs on ``CURVE_PAIRS``
    pixelated pairs drawn from ``CURVE_SHARES`` of the training photos (nested subsets; the
    validation pairs are the same for all); written to ``out`` as JSON if given."""
    cache = Path(data_root) / 'data' / 'cache'
    pool = len(fetch_training_photos(cache))
    rows = {}
    for share in CURVE_SHARES:
        count = max(1, round(share * pool))
        folder = Path(data_root) / f'data-photos-{count}'
        ensure_data(folder, cache=cache, n_train=CURVE_PAIRS, training_photos=count)
        run = run_folder(f'photos-{count}')
        settings, _ = parse_settings(['--data', str(folder), '--epochs', str(CURVE_EPOCHS),
                                      '--lr', str(PEAK_LR), '--run', str(run)])
        log, _ = train_run(settings, load_pairs(folder), run)
        rows[count] = max(epoch['val_psnr'] for epoch in log['epochs'])
        print(f'{count} photos: {rows[count]:.3f} dB', file=sys.stderr)
    if out is not None:
        Path(out).write_text(json.dumps({'pool': pool, 'pairs': CURVE_PAIRS,
                                         'epochs': CURVE_EPOCHS, 'psnr_by_photos': rows},
                                        indent=1) + '\n')
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', choices=list(MODELS), default='blind')
    parser.add_argument('--data-root', default='.',
                        help='where the data folders are (or are built): data, data-blind, ...')
    parser.add_argument('--stop-after', type=int, metavar='N',
                        help='stop after N epochs of the schedule (run again to go on)')
    parser.add_argument('--check', type=int, metavar='N',
                        help="train the first N epochs again and compare with the run's log")
    parser.add_argument('--photo-curve', metavar='JSON',
                        help='instead, measure the validation PSNR against the number of '
                             'training photos (a quarter, a half, all) and write it here')
    args = parser.parse_args(argv)
    for name, value in (('--stop-after', args.stop_after), ('--check', args.check)):
        if value is not None and value < 1:
            parser.error(f'{name} must be at least 1, got {value}')
    if args.photo_curve:
        photo_curve(args.data_root, args.photo_curve)
        return
    if args.check:
        rows = check(args.model, args.data_root, args.check)
        for epoch, logged, again in rows:
            print(f'epoch {epoch}: logged {logged:.3f} dB, again {again:.3f} dB '
                  f'({again - logged:+.3f})')
        worst = max(abs(again - logged) for _, logged, again in rows)
        if worst > CHECK_TOLERANCE_DB:
            raise SystemExit(f'the rerun differs by {worst:.3f} dB, more than '
                             f'{CHECK_TOLERANCE_DB} dB')
        print(f'the log holds: largest difference {worst:.3f} dB')
        return
    log = train(args.model, args.data_root, args.stop_after, ship_to=Model.weights_path())
    done = len(log['epochs'])
    best = max(log['epochs'], key=lambda e: e['val_psnr'])
    print(f'{run_folder(args.model)}: {done}/{EPOCHS} epochs, best validation PSNR '
          f"{best['val_psnr']:.3f} dB at epoch {best['epoch']}")


if __name__ == '__main__':
    main()
