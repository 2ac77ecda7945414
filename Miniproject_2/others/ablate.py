"""Ablations: one setting changed at a time, all on the same short budget.

    python -m Miniproject_2.others.ablate --data data --n-train 10000 --epochs 1

Each variant is an ordinary training run (``results/runs/ablate-<name>``, resumable) of the
shipped recipe with one setting changed; ``results/ablations.json`` collects every run's
settings, best validation PSNR and training time, for the report's ablation table. A short
budget ranks settings by how fast they learn, which is not always how far they get: the
shipped settings also come from the full-length runs in ``results/runs``.
"""
import argparse
import json
from pathlib import Path

from Miniproject_2.others.train import load_pairs, parse_settings, run_folder, train_run

VARIANTS = {  # name: training-command options on top of the defaults
    'shipped recipe': [],
    'ClippedMSE (for clipped Gaussian noise)': ['--clipped-mse'],
    'widths 32,64,96 (3 levels)': ['--widths', '32,64,96'],
    'widths 24,48,96 (3 levels)': ['--widths', '24,48,96'],
    'add skips': ['--skip', 'add'],
    'transposed-conv upsampling': ['--upsampling', 'transpose'],
    'ReLU': ['--activation', 'relu'],
    'ELU': ['--activation', 'elu'],
    'lr 1e-3': ['--lr', '1e-3'],
    'batch 64': ['--batch-size', '64'],
    'no flips/rotations': ['--no-symmetries'],
    'no input/target swap': ['--no-swap'],
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='data')
    parser.add_argument('--n-train', type=int, default=10000)
    parser.add_argument('--epochs', type=int, default=1)
    parser.add_argument('--only', nargs='*', help='run only these variants (names as listed)')
    parser.add_argument('--out', default='results/ablations.json')
    args = parser.parse_args(argv)
    data = load_pairs(args.data)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    for name, options in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        run = run_folder('ablate', name)
        settings, _ = parse_settings(['--data', args.data, '--epochs', str(args.epochs),
                                      '--n-train', str(args.n_train), '--run', str(run),
                                      *options])
        log, _ = train_run(settings, data, run)
        best = max(e['val_psnr'] for e in log['epochs'])
        results[name] = {'options': options, 'settings': settings, 'best_val_psnr': best,
                         'train_seconds': sum(e['seconds'] for e in log['epochs'])}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + '\n')
        print(f'{name:32s} {best:.3f} dB')
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
