"""Parameters keep their identity: an optimizer built before ``to``, ``reset_parameters`` or
``load_state_dict`` still trains the module afterwards, exactly as torch.optim trains the
torch.nn twin put through the same change."""
import pytest
import torch

import strategies  # noqa: F401  (its import limits torch to one intra-op thread)
from Miniproject_2.model import (MSE, SGD, Adam, Conv2d, ReLU, Sequential, TransposeConv2d,
                                 Upsampling)
from Miniproject_2.others.twin import torch_twin


def network():
    return Sequential(Conv2d(3, 4, 3, stride=2, padding=1), ReLU(),
                      Upsampling(4, 4, 3, scale_factor=2, padding=1), ReLU(),
                      TransposeConv2d(4, 3, 3, padding=1))


def copy_into_twin(ours, twin):
    with torch.no_grad():
        for (_, value), parameter in zip(ours.named_parameters(), twin.parameters(), strict=True):
            parameter.copy_(value)


def to_float64_positional(module):
    module.to(torch.float64)


def to_float64_keyword(module):
    module.to(dtype=torch.float64)


def to_cpu_float64(module):
    module.to('cpu', torch.float64)


def reset(module):
    for layer in module:
        if hasattr(layer, 'reset_parameters'):
            layer.reset_parameters()


def load_other_weights(module):
    torch.manual_seed(5)
    module.load_state_dict(network().state_dict())


CHANGES = [to_float64_positional, to_float64_keyword, to_cpu_float64, reset, load_other_weights]
OPTIMIZERS = [(lambda p: SGD(p, lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1,
                                                                                 momentum=0.9)),
              (lambda p: Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01))]


@pytest.mark.parametrize('change', CHANGES)
@pytest.mark.parametrize('make_optimizers', OPTIMIZERS, ids=['sgd', 'adam'])
def test_an_optimizer_built_before_a_change_still_trains_the_module(change, make_optimizers):
    torch.manual_seed(0)
    ours = network()
    twin = torch_twin(ours)
    make_ours, make_theirs = make_optimizers
    optimizer, twin_optimizer = make_ours(ours.param()), make_theirs(twin.parameters())
    change(ours)
    if change in (to_float64_positional, to_float64_keyword, to_cpu_float64):
        twin.to(torch.float64)
    copy_into_twin(ours, twin)  # the same starting point (reset and load drew new weights)
    dtype = ours[0].weight.dtype
    x, target = torch.rand(2, 3, 8, 8, dtype=dtype), torch.rand(2, 3, 8, 8, dtype=dtype)
    for _ in range(3):
        loss = MSE()
        optimizer.zero_grad()
        loss.forward(ours.forward(x), target)
        ours.backward(loss.backward())
        optimizer.step()
        twin_optimizer.zero_grad()
        torch.nn.functional.mse_loss(twin(x), target).backward()
        twin_optimizer.step()
    for (name, value), expected in zip(ours.named_parameters(), twin.parameters(), strict=True):
        assert value.dtype == expected.dtype, name
        torch.testing.assert_close(value, expected.detach(), msg=name)


@pytest.mark.parametrize('change', CHANGES)
def test_parameters_and_gradients_keep_their_identity(change):
    torch.manual_seed(0)
    module = network()
    before = [(id(value), id(grad)) for value, grad in module.param()]
    change(module)
    assert [(id(value), id(grad)) for value, grad in module.param()] == before
    assert all(grad.dtype == value.dtype and not grad.any() for value, grad in module.param())


def test_to_accepts_what_torch_nn_accepts():
    conv = Conv2d(2, 3, 3)
    assert conv.to(torch.float64) is conv and conv.weight.dtype == torch.float64
    conv.to('cpu')
    assert conv.weight.dtype == torch.float64 and conv.weight.device.type == 'cpu'
    conv.to(torch.device('cpu'), dtype=torch.float32)
    assert all(t.dtype == torch.float32 for pair in conv.param() for t in pair)


def test_assigning_a_tensor_makes_a_new_parameter():
    """As in torch.nn: forward and param() then both use the new tensor."""
    conv = Conv2d(2, 3, 3)
    weight = torch.zeros(3, 2, 3, 3)
    conv.weight = weight
    assert conv.weight is weight and conv.param()[0][0] is weight
    assert not conv.forward(torch.ones(1, 2, 3, 3)).sub(conv.bias.view(1, 3, 1, 1)).any()


def test_upsampling_used_before_a_change_of_dtype_follows_it():
    torch.manual_seed(0)
    ours = Upsampling(2, 3, 3, scale_factor=2, padding=1)
    ours.forward(torch.rand(1, 2, 4, 4))  # builds what the float32 pass needs
    ours.to(torch.float64)
    twin = torch_twin(ours).double()
    x = torch.rand(1, 2, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(ours.forward(x), twin(x).detach())
    ours.backward(torch.ones(1, 3, 8, 8, dtype=torch.float64))
    twin(x).sum().backward()
    torch.testing.assert_close(ours.param()[0][1], twin[1].weight.grad)
