"""Side-by-side denoising comparison on the validation set.

    python -m Miniproject_2.others.compare --data data --epochs 2 --seeds 0 1 \
        --bm3d-images 100 --out results/compare.json

(the numbers in the README and the report).

Trains, with the same recipe and the same budget (``--epochs`` over all training pairs),
the shipped architecture in our framework (Noise2Noise), its torch.nn twin by autograd, the
same network on clean targets (Noise2Clean) and the course's baseline network; then scores
them, the noisy input, the classical filters of ``filters`` (each with its best parameter
on this set), BM3D given each image's noise level (optional: ``pip install bm3d``; about a
second an image, so on the first ``--bm3d-images`` images, where every method is scored
too; its output is cached), the model the project shipped when it trained on Gaussian
noise (``results/gaussian/bestmodel.pth``), the pixelation-only weights trained with the
shipped model's recipe and budget (``results/pixelation/same-budget.pth``: the same warm
restarts, on pixelation alone) and, last, the shipped ``bestmodel.pth``.
``--weights-only`` scores just these files again and updates their rows of an existing
``--out`` (after a new model ships, without retraining the contenders). PSNR is
the mean over images of each image's PSNR, as the course's test computes it. Networks are
scored as ``Model.predict`` runs them, with the self-ensemble over flips and rotations, and
also with a single pass.

Two runs that differ only in floating-point rounding end up to a tenth of a dB apart
(training is chaotic), so ``--seeds 0 1`` trains every contender from several seeds (initial
weights and batch order); a contender's PSNR is then the mean over its seeds, each seed's
scores listed under ``seeds``. Runs live in ``results/runs/compare-<name>-<epochs>-epochs``
(``...-epochs-seed-<s>`` for seeds other than 0) and resume like any training run.
"""
import argparse
import json
import sys
from pathlib import Path

import torch

from Miniproject_2.model import Model
from Miniproject_2.others import filters
from Miniproject_2.others.data import VAL_SIGMA_FILE, psnr_per_image
from Miniproject_2.others.train import load_pairs, parse_settings, run_folder, train_run

RESULTS = Path(__file__).resolve().parents[2] / 'results'
WEIGHTS_FILES = {  # row name: weights file (None: the shipped one), scored as they are
    'trained on Gaussian noise': RESULTS / 'gaussian' / 'bestmodel.pth',
    'trained on pixelation only': RESULTS / 'pixelation' / 'same-budget.pth',
    'shipped bestmodel.pth': None,
}

CONTENDERS = {  # name: training-command options on top of the defaults
    'ours (Noise2Noise)': [],
    'torch.nn twin (Noise2Noise)': ['--framework', 'torch'],
    'ours (Noise2Clean)': ['--clean-targets'],
    'course baseline, ours (Noise2Noise)': ['--network', 'baseline', '--widths', '64'],
}


def bm3d_denoise(noisy, sigma):
    """BM3D (colour) of 0-255 uint8 images, given each one's noise level (0-255 scale: the
    RMS of noisy - clean, which for Gaussian noise is its sigma)."""
    try:
        import bm3d
    except ImportError:
        raise SystemExit('BM3D needs `pip install bm3d` (or pass --bm3d-images 0)') from None
    from tqdm import tqdm
    out = torch.empty(noisy.shape)
    for i in tqdm(range(noisy.shape[0]), desc='BM3D', file=sys.stderr):
        image = noisy[i].permute(1, 2, 0).double().div(255).numpy()
        clean = bm3d.bm3d_rgb(image, float(sigma[i]) / 255)
        out[i] = torch.from_numpy(clean).permute(2, 0, 1).clamp(0, 1).mul(255)
    return out


def bm3d_psnr(data_folder, validation, k):
    """BM3D's PSNR on the first ``k`` validation images; its output is cached, as it takes
    about a second an image."""
    cache = run_folder('compare', f'bm3d {k}') / 'denoised.pt'
    if cache.exists():
        denoised = torch.load(cache, weights_only=True)
    else:
        sigma = torch.load(Path(data_folder) / VAL_SIGMA_FILE, weights_only=True)
        denoised = bm3d_denoise(validation[0][:k], sigma[:k])
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(denoised, cache)
    return psnr_per_image(denoised, validation[1][:k].float()).mean().item()


def mean_scores(scores):
    """The element-wise mean of a list of equally nested dicts of numbers."""
    first = scores[0]
    if isinstance(first, dict):
        return {key: mean_scores([s[key] for s in scores]) for key in first}
    return sum(scores) / len(scores)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='data')
    parser.add_argument('--epochs', type=int, default=1, help='budget of every trained contender')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='train every contender from each of these seeds')
    parser.add_argument('--bm3d-images', type=int, default=250)
    parser.add_argument('--out', default='results/compare.json')
    parser.add_argument('--weights-only', action='store_true',
                        help="score only the weights files and update their rows in --out")
    args = parser.parse_args(argv)
    data = load_pairs(args.data)
    val_noisy, val_clean = data[1]
    if args.weights_only:
        report = json.loads(Path(args.out).read_text())
        args.epochs, args.seeds, args.bm3d_images = (report['epochs'], report['seeds'],
                                                     report['bm3d_images'])
    k = args.bm3d_images

    def scores(denoised):
        psnr = psnr_per_image(denoised, val_clean.float())
        first = {f'psnr_first_{k}': psnr[:k].mean().item()} if k else {}
        return {'psnr': psnr.mean().item(), **first}

    def network_scores(model):
        return {**scores(model.predict(val_noisy)),
                'single_pass': scores(model.predict(val_noisy, symmetries=1))}

    def weights_scores():
        rows = {}
        for name, path in WEIGHTS_FILES.items():
            model = Model()
            model.load_pretrained_model(path)
            rows[name] = network_scores(model)
        return rows

    if args.weights_only:
        results = {name: row for name, row in report['results'].items()
                   if name not in WEIGHTS_FILES}
        report['results'] = {**results, **weights_scores()}
        write_report(report, args.out)
        return
    results = {'noisy input': scores(val_noisy.float())}
    for name, tuned in filters.tune(val_noisy, val_clean).items():
        function, parameters = filters.FILTERS[name][0], tuned['parameter']
        results[f'{name} {parameters}'] = scores(function(val_noisy, *parameters).clamp(0, 255))
    for name, options in CONTENDERS.items():
        per_seed = {}
        for seed in args.seeds:
            run = run_folder('compare', f'{name} {args.epochs} epochs'
                                        + (f' seed {seed}' if seed else ''))
            settings, _ = parse_settings(['--data', args.data, '--epochs', str(args.epochs),
                                          '--run', str(run), '--seed', str(seed), *options])
            log, model = train_run(settings, data, run)
            per_seed[str(seed)] = {**network_scores(model),
                                   'train_seconds': sum(e['seconds'] for e in log['epochs'])}
        results[name] = mean_scores(list(per_seed.values()))
        if len(per_seed) > 1:
            results[name]['seeds'] = per_seed
    if k:
        results['BM3D, given the noise level'] = {
            f'psnr_first_{k}': bm3d_psnr(args.data, data[1], k)}
    results.update(weights_scores())
    write_report({'epochs': args.epochs, 'seeds': args.seeds, 'n_val': int(val_noisy.shape[0]),
                  'bm3d_images': k, 'results': results}, args.out)


def write_report(report, out):
    """Write the comparison to ``out`` (JSON) and print it as a Markdown table."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=1) + '\n')
    k = report['bm3d_images']
    print(f"| method | PSNR, all {report['n_val']} (dB) | single pass | "
          f'PSNR, first {k} (dB) |')
    print('|---|---|---|---|')
    for name, r in report['results'].items():
        cells = [f"{r['psnr']:.2f}" if 'psnr' in r else '-',
                 f"{r['single_pass']['psnr']:.2f}" if 'single_pass' in r else '-',
                 f"{r[f'psnr_first_{k}']:.2f}" if k else '-']
        print(f"| {name} | {' | '.join(cells)} |")
    if len(report['seeds']) > 1:
        print(f"trained contenders: the mean over seeds {', '.join(map(str, report['seeds']))}")
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
