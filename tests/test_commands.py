"""The comparison and ablation commands, end to end on a tiny data folder."""
import importlib
import json
import math

import pytest
import torch

from Miniproject_2.others import ablate, compare, filters
from Miniproject_2.others.data import psnr_per_image
from Miniproject_2.others.train import run_folder

TINY = ['--widths', '8,8', '--batch-size', '16']  # appended: argparse keeps the last value


def test_compare_trains_every_contender_and_scores_them(data_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(compare, 'CONTENDERS', {name: options + TINY for name, options
                                                in compare.CONTENDERS.items()})
    compare.main(['--data', str(data_folder), '--epochs', '1', '--bm3d-images', '0',
                  '--out', 'compare.json'])
    results = json.loads((tmp_path / 'compare.json').read_text())['results']
    filter_rows = [name for name in results if name.split(' (')[0] in filters.FILTERS]
    assert len(filter_rows) == len(filters.FILTERS)
    assert set(results) == {'noisy input', *filter_rows, *compare.WEIGHTS_FILES,
                            *compare.CONTENDERS}
    # The noisy input's PSNR, recomputed here, is about that of sigma 20 (a little higher:
    # clipping to 0-255 removes some noise).
    noisy, clean = torch.load(data_folder / 'val_data.pkl', weights_only=True)
    noisy_psnr = psnr_per_image(noisy.float(), clean.float()).mean().item()
    assert results['noisy input']['psnr'] == pytest.approx(noisy_psnr, abs=1e-9)
    assert 20 * math.log10(255 / 20) < noisy_psnr < 20 * math.log10(255 / 20) + 1
    # Each filter, at its best parameter, denoises these smooth images.
    for name in filter_rows:
        assert results[name]['psnr'] > noisy_psnr + 1, name
    # The shipped weights denoise: several dB above the noisy input.
    assert results['shipped bestmodel.pth']['psnr'] > noisy_psnr + 3
    assert results['shipped bestmodel.pth']['single_pass']['psnr'] > noisy_psnr + 3
    for name in compare.CONTENDERS:
        assert (tmp_path / run_folder('compare', f'{name} 1 epochs') / 'log.json').is_file()
        # One epoch of 4 steps, still in the warm-up, moves little: the scores stay those of
        # an almost untrained network, finite and within reach of the noisy input's.
        assert noisy_psnr - 15 < results[name]['psnr'] < noisy_psnr + 10, name
        assert results[name]['train_seconds'] > 0


def test_compare_weights_only_rescores_the_weights_files_and_keeps_the_rest(
        data_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kept = {'noisy input': {'psnr': 1.0}, 'ours (Noise2Noise)': {'psnr': 2.0},
            'shipped bestmodel.pth': {'psnr': -1.0}}
    (tmp_path / 'compare.json').write_text(json.dumps(
        {'epochs': 3, 'seeds': [0, 1], 'n_val': 16, 'bm3d_images': 0, 'results': kept}))
    compare.main(['--data', str(data_folder), '--weights-only', '--out', 'compare.json'])
    report = json.loads((tmp_path / 'compare.json').read_text())
    assert report['epochs'] == 3 and report['seeds'] == [0, 1]
    results = report['results']
    assert results['noisy input'] == {'psnr': 1.0} and results['ours (Noise2Noise)'] == {'psnr': 2.0}
    assert list(results)[2:] == list(compare.WEIGHTS_FILES)
    assert all(results[name]['psnr'] > 20 for name in compare.WEIGHTS_FILES)


def test_compare_over_seeds_reports_the_mean_and_each_seed(data_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(compare, 'CONTENDERS', {'ours (Noise2Noise)': TINY})
    compare.main(['--data', str(data_folder), '--epochs', '1', '--seeds', '0', '1',
                  '--bm3d-images', '0', '--out', 'compare.json'])
    report = json.loads((tmp_path / 'compare.json').read_text())
    ours = report['results']['ours (Noise2Noise)']
    assert report['seeds'] == [0, 1] and set(ours['seeds']) == {'0', '1'}
    assert ours['seeds']['0']['psnr'] != ours['seeds']['1']['psnr']
    assert ours['psnr'] == (ours['seeds']['0']['psnr'] + ours['seeds']['1']['psnr']) / 2
    assert 'psnr_first_0' not in ours  # no BM3D subset asked for, none scored
    assert ours['single_pass']['psnr'] == sum(ours['seeds'][s]['single_pass']['psnr']
                                              for s in '01') / 2
    for label in ('ours (Noise2Noise) 1 epochs', 'ours (Noise2Noise) 1 epochs seed 1'):
        assert (tmp_path / run_folder('compare', label) / 'log.json').is_file()


def test_ablation_records_each_variant(data_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    variants = {'shipped recipe': TINY, 'ReLU': ['--activation', 'relu', *TINY]}
    monkeypatch.setattr(ablate, 'VARIANTS', variants)
    ablate.main(['--data', str(data_folder), '--n-train', '32', '--out', 'ablations.json'])
    results = json.loads((tmp_path / 'ablations.json').read_text())
    assert set(results) == set(variants)
    assert results['ReLU']['settings']['activation'] == 'relu'
    assert results['ReLU']['settings']['n_train'] == 32


@pytest.mark.parametrize('tool', ['ablate', 'bench', 'compare', 'families', 'filters',
                                  'noises', 'photos', 'train'])
def test_each_tools_help_opens_with_a_whole_sentence(tool):
    """``--help`` shows the docstring's first line: it must not stop mid-sentence."""
    summary = importlib.import_module(f'Miniproject_2.others.{tool}').__doc__.split('\n')[0]
    assert summary.endswith('.') and summary[0].isupper(), summary
