"""Train the denoiser, validating, checkpointing and keeping the best weights every epoch.

    python -m Miniproject_2.others.train --data data --epochs 10 --run results/runs/pixelation \
        --out results/runs/pixelation/bestmodel.pth

(the shipped weights, copied to ``Miniproject_2/bestmodel.pth``; the weights trained on
Gaussian noise before, and their runs, are in ``results/gaussian/``).

A run folder holds ``checkpoint.pt`` (weights, optimizer state, progress: rewritten
atomically after every epoch) and ``log.json`` (settings and every epoch's validation PSNR,
read by the report). Running the same command again resumes where the run stopped; a
finished run is not trained again. ``--out`` receives the weights of the best validation
epoch (or, for a warm restart no epoch improved, the weights it started from), in the
format ``Model.load_pretrained_model`` reads (``checkpoint.pt`` holds the same format,
``Model.state(training=True)``, with the optimizer's state and the epochs done).

Settings other than the defaults make the ablations: ``--network baseline`` (the course's
network), ``--widths``, ``--skip``, ``--activation``, ``--upsampling``, ``--lr``,
``--batch-size``, ``--no-symmetries``, ``--no-swap``, ``--n-train`` (a subset),
``--clean-targets`` (Noise2Clean), ``--clipped-mse`` (a loss for clipped Gaussian noise),
``--framework torch`` (the torch.nn twin trained by autograd with the same recipe),
``--squared-loss`` (plain MSE on a mixture's every pair: see ``noises``).
``--init`` starts from saved weights instead of random ones, for a second schedule (a warm
restart) whose peak is ``--lr``. ``--stop-after N`` stops once N epochs of the schedule are
done, to go on in a later sitting.
"""
import argparse
import json
import math
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from Miniproject_2.model import Denoiser, Model, Recipe
from Miniproject_2.others.data import (TRAIN_CLEAN_FILE, TRAIN_FAMILIES_FILE, psnr_per_image,
                                       save_atomically)
from Miniproject_2.others.noises import ROBUST_FAMILIES


# Settings added after runs were logged: the value those older runs effectively had (their
# data had no noise families, so the family losses changed nothing).
BEFORE_THE_SETTING = {'init': None, 'clipped_noise': False, 'family_losses': True}


def load_pairs(folder):
    """(train_input, train_target), (val_noisy, val_clean) from a course-format data folder."""
    folder = Path(folder)
    for name in ('train_data.pkl', 'val_data.pkl'):
        if not (folder / name).is_file():
            raise FileNotFoundError(f'{folder / name} not found: build the stand-in with '
                                    f'`python -m Miniproject_2.others.data --out {folder}` '
                                    f'or point --data at the course files')
    train = torch.load(folder / 'train_data.pkl', weights_only=True)
    val = torch.load(folder / 'val_data.pkl', weights_only=True)
    return train, val


def validation_psnr(model, val_noisy, val_clean):
    """Mean per-image PSNR (dB), as the course's test.py computes it, of a single pass of the
    network: each epoch's check, 8 times cheaper than ``Model.predict``'s self-ensemble."""
    denoised = model.predict(val_noisy, symmetries=1)
    return psnr_per_image(denoised, val_clean.float()).mean().item()


def make_model(settings):
    """A Model, or its torch.nn twin, with the run's architecture and recipe."""
    architecture = {'network': settings['network'], 'widths': tuple(settings['widths']),
                    'activation': settings['activation'], 'upsampling': settings['upsampling'],
                    'skip': settings['skip']}
    recipe = Recipe(lr=settings['lr'], batch_size=settings['batch_size'],
                    symmetries=settings['symmetries'],
                    swap=settings['swap'] and not settings['clean_targets'],
                    clipped_noise=settings['clipped_noise'], seed=settings['seed'],
                    # --init starts from trained weights: --lr is that schedule's peak
                    **({'finetune_lr': settings['lr']} if settings['init'] else {}))
    if settings['framework'] == 'torch':
        from Miniproject_2.others.twin import TorchTwinModel
        return TorchTwinModel(recipe, **architecture)
    return Model(recipe, **architecture)


def robust_pairs(folder, n, settings):
    """The ``robust`` marks of ``Trainer.train`` for the first ``n`` training pairs of a data
    folder: the pairs whose family ``noises.ROBUST_FAMILIES`` lists, from its
    ``train_families.pt`` (a mixture's); None without that file, with clean targets (their
    mean is the clean image) or with ``--squared-loss``."""
    path = Path(folder) / TRAIN_FAMILIES_FILE
    if settings['clean_targets'] or not settings['family_losses'] or not path.is_file():
        return None
    saved = torch.load(path, weights_only=True)
    robust = torch.tensor([name in ROBUST_FAMILIES for name in saved['families']])
    return robust[saved['index'][:n].long()]


def _load_init(model, path):
    """Start ``model`` from the weights at ``path``, which must hold its architecture."""
    wanted = model.denoiser.architecture
    model.load_pretrained_model(path)
    if model.denoiser.architecture != wanted:
        raise ValueError(f'--init {path} holds the network {model.denoiser.architecture}, '
                         f'not the one the settings ask for: {wanted}')


def run_folder(kind, label):
    """``results/runs/<kind>-<label as a file name>``: where the run a table row names lives."""
    words = (''.join(c for c in word if c.isalnum()) for word in label.lower().split())
    return Path('results/runs') / '-'.join([kind, *filter(None, words)])


def train_run(settings, data, run, out=None, stop_after=None):
    """Train (or resume) the run described by ``settings``; return its log and model. With
    ``stop_after``, stop once that many epochs of its schedule are done (a later call goes
    on)."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    checkpoint_path, log_path = run / 'checkpoint.pt', run / 'log.json'
    torch.manual_seed(settings['seed'])  # the initial weights
    model = make_model(settings)
    log = {'settings': settings, 'epochs': []}
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, weights_only=True)
        # A setting added after the run started counts as what the run did without it.
        saved_settings = {**parse_settings(['--run', str(run)])[0], **BEFORE_THE_SETTING,
                          **saved['log']['settings']}
        if saved_settings != {**settings, 'data': saved_settings['data']}:
            raise ValueError(f'{run} holds a run with other settings '
                             f'({saved["log"]["settings"]}); use another --run folder')
        model.load_state(saved['model'], source=checkpoint_path)
        log = saved['log']
        print(f'resuming {run} after epoch {model.trainer.epochs_done}', file=sys.stderr)
    elif settings['init']:
        _load_init(model, settings['init'])
        log['init_val_psnr'] = validation_psnr(model, *data[1])
        if out is not None:  # the best so far: an epoch replaces them only if it beats them
            model.save(out)
    end = settings['epochs'] if stop_after is None else min(stop_after, settings['epochs'])
    if model.trainer.epochs_done >= end:
        print(f'{run} is complete ({model.trainer.epochs_done} epochs)', file=sys.stderr)
        return log, model

    (train_a, train_b), (val_noisy, val_clean) = data
    if settings['n_train']:
        train_a, train_b = train_a[:settings['n_train']], train_b[:settings['n_train']]
    if settings['clean_targets']:
        train_b = torch.load(Path(settings['data']) / TRAIN_CLEAN_FILE,
                             weights_only=True)[:train_a.shape[0]]
    started = time.perf_counter()

    def end_of_epoch(epoch):
        nonlocal started
        seconds = time.perf_counter() - started
        psnr = validation_psnr(model, val_noisy, val_clean)
        # A warm restart saves only weights better than those it started from.
        best = max([e['val_psnr'] for e in log['epochs']] + [log.get('init_val_psnr', -math.inf)])
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # whole process
        log['epochs'].append({'epoch': epoch + 1, 'val_psnr': psnr, 'seconds': seconds,
                              'images_per_second': train_a.shape[0] / seconds,
                              'peak_rss_mb': peak_mb})
        if psnr > best and out is not None:
            model.save(out)
        save_atomically({'model': model.state(training=True), 'log': log}, checkpoint_path)
        log_path.write_text(json.dumps(log, indent=1) + '\n')
        print(f'epoch {epoch + 1}: validation PSNR {psnr:.3f} dB'
              f'{" (best, saved)" if psnr > best and out else ""}', file=sys.stderr)
        started = time.perf_counter()

    model.train(train_a, train_b, settings['epochs'],
                robust=robust_pairs(settings['data'], train_a.shape[0], settings),
                start_epoch=model.trainer.epochs_done, end_epoch=end, on_epoch_end=end_of_epoch)
    return log, model


def parse_settings(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='data',
                        help='folder with train_data.pkl and val_data.pkl')
    parser.add_argument('--run', required=True, help='run folder: checkpoint and log (resumable)')
    parser.add_argument('--out',
                        help='where to write the best weights (e.g. Miniproject_2/bestmodel.pth)')
    parser.add_argument('--epochs', type=int, default=20)
    defaults = {**Denoiser.ARCHITECTURE, **asdict(Recipe())}
    parser.add_argument('--network', default=defaults['network'], choices=['unet', 'baseline'])
    parser.add_argument('--widths', default=','.join(map(str, defaults['widths'])),
                        help='channels per U-Net level, comma-separated')
    parser.add_argument('--skip', default=defaults['skip'], choices=['concat', 'add'])
    parser.add_argument('--activation', default=defaults['activation'],
                        choices=['relu', 'leaky_relu', 'elu'])
    parser.add_argument('--upsampling', default=defaults['upsampling'],
                        choices=['nearest', 'transpose'])
    parser.add_argument('--lr', type=float, default=defaults['lr'])
    parser.add_argument('--batch-size', type=int, default=defaults['batch_size'])
    parser.add_argument('--no-symmetries', action='store_true', help='no flips and rotations')
    parser.add_argument('--no-swap', action='store_true', help='never swap input and target')
    parser.add_argument('--n-train', type=int, default=0, help='train on the first N pairs only')
    parser.add_argument('--clean-targets', action='store_true', help='Noise2Clean')
    parser.add_argument('--clipped-mse', action='store_true',
                        help='ClippedMSE: for Gaussian noise clipped to 0-255 (the default, plain '
                             'MSE, is unbiased for the course\'s pixelation)')
    parser.add_argument('--squared-loss', action='store_true',
                        help="plain MSE for every pair, even those of a mixture's families "
                             'whose median is the clean image (noises.ROBUST_FAMILIES)')
    parser.add_argument('--framework', default='ours', choices=['ours', 'torch'])
    parser.add_argument('--seed', type=int, default=defaults['seed'])
    parser.add_argument('--init', help='start from these weights (a .pth file) instead of '
                        'random ones; --lr is then the peak of the new schedule')
    parser.add_argument('--stop-after', type=int, metavar='N',
                        help='stop after N epochs of the schedule (run again to go on)')
    args = parser.parse_args(argv)
    if args.stop_after is not None and args.stop_after < 1:
        parser.error(f'--stop-after must be at least 1, got {args.stop_after}')
    settings = {'data': str(args.data), 'epochs': args.epochs, 'network': args.network,
                'widths': [int(w) for w in args.widths.split(',')], 'skip': args.skip,
                'activation': args.activation, 'upsampling': args.upsampling, 'lr': args.lr,
                'batch_size': args.batch_size, 'symmetries': not args.no_symmetries,
                'swap': not args.no_swap, 'n_train': args.n_train,
                'clean_targets': args.clean_targets,
                'clipped_noise': args.clipped_mse and not args.clean_targets,
                'family_losses': not args.squared_loss,
                'framework': args.framework,
                'seed': args.seed, 'init': args.init}
    return settings, args


def main(argv=None):
    settings, args = parse_settings(argv)
    log, _ = train_run(settings, load_pairs(args.data), args.run, args.out, args.stop_after)
    best = max(log['epochs'], key=lambda e: e['val_psnr'])
    start = log.get('init_val_psnr', -math.inf)
    if start >= best['val_psnr']:
        print(f"best validation PSNR {start:.3f} dB: the initial weights (--init); "
              f"no epoch beat them")
    else:
        print(f"best validation PSNR {best['val_psnr']:.3f} dB at epoch {best['epoch']}")


if __name__ == '__main__':
    main()
