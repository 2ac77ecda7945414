"""MSE against torch.nn.MSELoss: 0-dim forward, gradient, no broadcasting."""
import pytest
import torch
from hypothesis import given, strategies as st

from Miniproject_2.model import MSE
from oracle import assert_close
from strategies import SETTINGS, dtypes, random_tensor, seeds

nonempty_shapes = st.lists(st.integers(1, 5), min_size=0, max_size=4).map(tuple)


def autograd_mse(prediction, target, grad_output=None):
    with torch.enable_grad():
        p = prediction.clone().requires_grad_()
        loss = torch.nn.MSELoss()(p, target)
        loss.backward(grad_output)
    return loss.detach(), p.grad


@SETTINGS
@given(nonempty_shapes, dtypes, seeds)
def test_mse_matches_torch(shape, dtype, seed):
    prediction = random_tensor(seed, shape, dtype)
    target = random_tensor(seed + 1, shape, dtype)
    snapshot = prediction.clone(), target.clone()
    loss_fn = MSE()
    loss = loss_fn.forward(prediction, target)
    loss_ref, grad_ref = autograd_mse(prediction, target)
    assert loss.dim() == 0 and loss.dtype == dtype
    assert_close(loss, loss_ref, 'loss')
    assert_close(loss_fn.backward(), grad_ref, 'gradient')
    assert torch.equal(prediction, snapshot[0]) and torch.equal(target, snapshot[1])


@SETTINGS
@given(nonempty_shapes, dtypes, seeds, st.floats(-3, 3, allow_nan=False))
def test_mse_backward_scales_by_the_output_gradient(shape, dtype, seed, scale):
    prediction = random_tensor(seed, shape, dtype)
    target = random_tensor(seed + 1, shape, dtype)
    grad_output = torch.tensor(scale, dtype=dtype)
    loss_fn = MSE()
    loss_fn.forward(prediction, target)
    _, grad_ref = autograd_mse(prediction, target, grad_output)
    assert_close(loss_fn.backward(grad_output), grad_ref, 'gradient')


def test_mse_is_zero_for_equal_inputs():
    x = random_tensor(0, (2, 3, 4, 4))
    loss_fn = MSE()
    assert loss_fn.forward(x, x.clone()).item() == 0
    assert torch.equal(loss_fn.backward(), torch.zeros_like(x))


@pytest.mark.parametrize('prediction_shape, target_shape', [
    ((2, 3), (3,)), ((1, 3), (3,)), ((3,), (3, 1)), ((2, 3, 4, 4), (1, 3, 4, 4)),
    ((4,), (5,)), ((), (1,))])
def test_shape_mismatch_raises_instead_of_broadcasting(prediction_shape, target_shape):
    with pytest.raises(ValueError, match='MSE'):
        MSE().forward(torch.zeros(prediction_shape), torch.zeros(target_shape))
    with pytest.raises(ValueError, match='MSE'):
        MSE().forward(torch.zeros(target_shape), torch.zeros(prediction_shape))


def test_mse_repr_and_no_parameters():
    assert repr(MSE()) == 'MSE()'
    assert MSE().param() == []
