"""The benchmark's guard: speed is only reported for networks that compute the same thing."""
import pytest
import torch

from Miniproject_2.model import Model
from Miniproject_2.others import bench
from Miniproject_2.others.twin import torch_twin


@pytest.mark.parametrize('architecture', [dict(widths=(8, 8, 8)),
                                          dict(network='baseline', widths=(8,))])
def test_twin_matches_and_a_wrong_twin_is_caught(architecture):
    torch.manual_seed(0)
    network = Model(**architecture).denoiser.network
    twin = torch_twin(network)
    bench.check_same_results(network, twin, size=16)
    with torch.no_grad():
        next(twin.parameters()).mul_(1.01)
    with pytest.raises(AssertionError, match='differs from torch.nn'):
        bench.check_same_results(network, twin, size=16)


def test_training_steps_and_predict_run_on_both_sides():
    torch.manual_seed(0)
    model = Model(widths=(8, 8))
    twin = torch_twin(model.denoiser.network)
    for run in (*bench.training_step_pair(model.denoiser.network, twin, 4),
                *bench.predict_pair(model, twin, torch.rand(3, 3, 16, 16) * 255)):
        run()
    ours, theirs = bench.predict_pair(model, twin, torch.rand(2, 3, 16, 16) * 255)
    torch.testing.assert_close(ours(), theirs(), rtol=1e-4, atol=1e-3)


def test_runs_combine_into_medians_with_every_ratio():
    def report(ratio, ours_s):
        case = {'ours_s': ours_s, 'torch_s': 1.0, 'ratio': ratio, 'ours_extra_memory_mb': 5}
        return {'machine': {'threads': 2}, 'architecture': {'network': 'unet'},
                **{network: {'train_step_batch_32': dict(case)} for network in bench.NETWORKS}}
    combined = bench.combine([report(0.9, 0.9), report(1.4, 1.4), report(1.0, 1.0)])
    entry = combined['shipped']['train_step_batch_32']
    assert combined['runs'] == 3 and combined['machine'] == {'threads': 2}
    assert entry['ratio'] == 1.0 and entry['ours_s'] == 1.0
    assert entry['ratios'] == [0.9, 1.4, 1.0]


@pytest.mark.parametrize('flag', ['--runs', '--repeats'])
def test_bench_refuses_fewer_than_one(flag, capsys):
    with pytest.raises(SystemExit):
        bench.main([flag, '0'])
    assert 'at least 1' in capsys.readouterr().err
