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
    network = Model(**architecture).network
    twin = torch_twin(network)
    bench.check_same_results(network, twin, size=16)
    with torch.no_grad():
        next(twin.parameters()).mul_(1.01)
    with pytest.raises(AssertionError, match='differs from torch.nn'):
        bench.check_same_results(network, twin, size=16)


def test_training_steps_and_predict_run_on_both_sides():
    torch.manual_seed(0)
    model = Model(widths=(8, 8))
    twin = torch_twin(model.network)
    for run in (*bench.training_step_pair(model.network, twin, 4),
                *bench.predict_pair(model, twin, torch.rand(3, 3, 16, 16) * 255)):
        run()
    ours, theirs = bench.predict_pair(model, twin, torch.rand(2, 3, 16, 16) * 255)
    torch.testing.assert_close(ours(), theirs(), rtol=1e-4, atol=1e-3)
