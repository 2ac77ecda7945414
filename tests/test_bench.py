"""The benchmark's guard: speed is only reported for networks that compute the same thing."""
import types

import pytest
import torch

from Miniproject_2 import model as ours
from Miniproject_2.model import Model
from Miniproject_2.others import bench


@pytest.mark.parametrize('architecture', [dict(widths=(8, 8, 8)),
                                          dict(network='baseline', widths=(8,))])
def test_twins_match_and_a_wrong_twin_is_caught(architecture):
    torch.manual_seed(0)
    network = Model(**architecture).denoiser.network
    twins = bench.twins(network)
    for twin, memory_format in zip(twins, bench.MEMORY_FORMATS):
        bench.check_same_results(network, twin, size=16, memory_format=memory_format)
    channels_last = twins[1]
    assert all(p.is_contiguous(memory_format=torch.channels_last)
               for p in channels_last.parameters() if p.dim() == 4)
    with torch.no_grad():
        next(channels_last.parameters()).mul_(1.01)
    with pytest.raises(AssertionError, match='differs from torch.nn'):
        bench.check_same_results(network, channels_last, size=16,
                                 memory_format=torch.channels_last)


def test_training_steps_and_predicts_run_in_every_layout():
    torch.manual_seed(0)
    model = Model(widths=(8, 8))
    twins = bench.twins(model.denoiser.network)
    runs = [*bench.training_steps(model.denoiser.network, twins, 4),
            *bench.predicts(model, twins, torch.rand(3, 3, 16, 16) * 255)]
    assert len(runs) == 2 * (1 + len(bench.LAYOUTS))
    for run in runs:
        run()
    ours, *theirs = bench.predicts(model, twins, torch.rand(2, 3, 16, 16) * 255)
    for run in theirs:
        torch.testing.assert_close(ours(), run(), rtol=1e-4, atol=1e-3)


def test_runs_combine_into_medians_with_every_ratio():
    def report(ratio, ours_s):
        case = {'ours_s': ours_s, 'torch_s': 1.0, 'ratio': ratio, 'ours_extra_memory_mb': 5,
                'torch_nchw_s': 1.5, 'ratio_nchw': ratio / 1.5}
        return {'machine': {'threads': 2}, 'architecture': {'network': 'unet'},
                **{network: {'train_step_batch_32': dict(case)} for network in bench.NETWORKS}}
    combined = bench.combine([report(0.9, 0.9), report(1.4, 1.4), report(1.0, 1.0)])
    entry = combined['shipped']['train_step_batch_32']
    assert combined['runs'] == 3 and combined['machine'] == {'threads': 2}
    assert entry['ratio'] == 1.0 and entry['ours_s'] == 1.0
    assert entry['ratios'] == [0.9, 1.4, 1.0]


def test_product_counter_counts_two_flop_per_multiply_add():
    a, b = torch.rand(5, 7), torch.rand(7, 3)
    out = torch.empty(5, 3)
    batches = torch.rand(4, 5, 7), torch.rand(4, 7, 3)
    with bench.ProductCounter() as counter:
        a.mm(b)
        out.addmm_(a, b, beta=0)
        torch.bmm(*batches)
        _ = batches[0] @ batches[1]
        a.add(1)  # not a product
    assert counter.flop == 2 * (5 * 7 * 3) * (1 + 1 + 4 + 4)
    assert bench.product_gflop(lambda: a.mm(b)) == 2 * 5 * 7 * 3 / 1e9


def test_training_steps_report_their_gemm_floor(monkeypatch):
    torch.manual_seed(0)
    model = Model(widths=(8, 8))
    monkeypatch.setattr(bench, 'median_seconds', lambda runs, repeats, warmup: [0.5] * len(runs))
    monkeypatch.setattr(bench, 'predicts', lambda model, twins, images: [lambda: None] * 3)
    results = bench.benchmark('small', model, repeats=1, peak_gflops=100)
    entry = results['train_step_batch_32']
    network = model.denoiser.network
    x, y = (torch.rand(32, 3, 32, 32).contiguous(memory_format=torch.channels_last)
            for _ in range(2))
    step = bench.training_step(ours, network, x, y)
    assert entry['ours_gemm_gflop'] == pytest.approx(bench.product_gflop(step))
    assert entry['gemm_floor_ratio'] == pytest.approx(entry['ours_gemm_gflop'] / 100 / 0.5)
    assert 'gemm_floor_ratio' not in results['predict_512x512']


def test_machine_describes_the_cpu_and_mkl_rate():
    description = bench.machine(repeats=1)
    assert set(description) == {'cpu', 'l2_per_core', 'threads', 'torch',
                                'mkl_sgemm_2048_gflops'}
    assert description['mkl_sgemm_2048_gflops'] > 0


@pytest.mark.parametrize('flag', ['--runs', '--repeats'])
def test_bench_refuses_fewer_than_one(flag, capsys):
    with pytest.raises(SystemExit):
        bench.main([flag, '0'])
    assert 'at least 1' in capsys.readouterr().err


def test_layer_timings_cover_each_distinct_convolution_once():
    torch.manual_seed(0)
    network = Model(widths=(8, 8)).denoiser.network
    layers = bench.convolution_layers(network, batch=2, size=16)
    found = [(type(layer).__name__, shape) for layer, shape in layers]
    assert found == [('Conv2d', (2, 3, 16, 16)), ('Conv2d', (2, 8, 16, 16)),  # level 0
                     ('Conv2d', (2, 8, 16, 16)), ('Conv2d', (2, 8, 8, 8)),    # down, level 1
                     ('Upsampling', (2, 8, 8, 8)),
                     ('Conv2d', (2, 16, 16, 16)), ('Conv2d', (2, 8, 16, 16))]  # after the skip
    assert layers[1][0].stride == (1, 1) and layers[2][0].stride == (2, 2)
    assert all('forward' not in vars(layer) for layer, _ in layers)  # recording undone
    rows = bench.layer_timings(network, repeats=1, batch=2, size=16)
    assert [row['input'] for row in rows] == [list(shape) for _, shape in found]
    assert all(row['forward_ratio'] > 0 and row['step_ratio'] > 0 for row in rows)
    assert all(row['backward_ratio'] == pytest.approx(
        (row['ours_step_ms'] - row['ours_forward_ms'])
        / (row['torch_step_ms'] - row['torch_forward_ms'])) for row in rows)


SMALL_CASES = {'train_step_batch_2': (2, 3, 16, 16), 'predict_2x16x16': (2, 3, 16, 16)}


def test_against_a_revision_times_each_case_now_and_then():
    report = bench.against('HEAD', repeats=1, cases=SMALL_CASES)
    assert report['revision'] == 'HEAD' and set(report['cases']) == set(SMALL_CASES)
    for entry in report['cases'].values():
        assert entry['ratio'] == pytest.approx(entry['now_s'] / entry['then_s'])


def test_against_refuses_a_revision_without_model_py():
    with pytest.raises(ValueError, match='no model.py at git revision'):
        bench.model_at('no-such-revision')


def test_against_refuses_a_revision_that_predicts_differently(monkeypatch):
    class Shifted(ours.Model):
        def predict(self, test_input, symmetries=1):
            return super().predict(test_input, symmetries=symmetries) + 1

    monkeypatch.setattr(bench, 'model_at', lambda revision: types.SimpleNamespace(
        Model=Shifted, MSE=ours.MSE, Adam=ours.Adam))
    with pytest.raises(AssertionError, match='predicts differently'):
        bench.against('HEAD', repeats=1, cases=SMALL_CASES)


def test_bench_takes_one_measurement_at_a_time(capsys):
    with pytest.raises(SystemExit):
        bench.main(['--layers', '--against', 'HEAD'])
    assert 'give one' in capsys.readouterr().err
