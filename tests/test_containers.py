"""Sequential, Concat and Residual against autograd on the same composition; gradient
accumulation, zero_grad, state dicts (names, round trip, strict loading), printing."""
import io
import weakref

import pytest
import torch
from hypothesis import given, strategies as st

from Miniproject_2.model import (ELU, Concat, Conv2d, LeakyReLU, NearestUpsampling, ReLU,
                                 Residual, Sequential, Sigmoid, TransposeConv2d, Upsampling)
from oracle import assert_close, check_against_autograd, named_grads, reference
from strategies import FEW, SETTINGS, dtypes, random_tensor, seeds


def unet(c=3, width=4):
    """A small U-Net-like nesting: the skip concatenates the input of a down-up branch."""
    return Sequential(
        Conv2d(c, width, 3, padding=1), ReLU(),
        Concat(Conv2d(width, width, 3, stride=2, padding=1), LeakyReLU(0.1),
               Upsampling(width, width, 3, padding=1)),
        Residual(Conv2d(2 * width, 2 * width, 3, padding=1), ELU()),
        Conv2d(2 * width, c, 1), Sigmoid())


UNET_NAMES = ['0.weight', '0.bias', '2.0.weight', '2.0.bias', '2.2.weight', '2.2.bias',
              '3.0.weight', '3.0.bias', '4.weight', '4.bias']

even = st.integers(1, 4).map(lambda k: 2 * k)
batch_or_none = st.one_of(st.none(), st.integers(1, 3))


def input_shape(batch, c, h, w):
    return (c, h, w) if batch is None else (batch, c, h, w)


@FEW
@given(dtypes, batch_or_none, even, even, seeds)
def test_unet_matches_autograd(dtype, batch, h, w, seed):
    torch.manual_seed(seed)
    network = unet().to(dtype=dtype)
    x = random_tensor(seed, input_shape(batch, 3, h, w), dtype)
    differences = check_against_autograd(network, x, seed + 1)
    assert set(differences) == {'output', 'input_grad', *UNET_NAMES}


COMPOSITIONS = {
    'sequential': lambda: Sequential(Conv2d(2, 3, 3, padding=1), ReLU(), Conv2d(3, 2, (1, 3))),
    'sequential-inplace': lambda: Sequential(Conv2d(2, 3, 3), ReLU(inplace=True),
                                             Conv2d(3, 3, 1), ELU(inplace=True),
                                             Conv2d(3, 2, 1), LeakyReLU(0.3, inplace=True),
                                             Conv2d(2, 2, 1), Sigmoid(inplace=True)),
    'concat': lambda: Concat(Conv2d(2, 3, 3, padding=1), Sigmoid()),
    'concat-transpose': lambda: Concat(Conv2d(2, 3, 3, stride=2, padding=1), ReLU(),
                                       TransposeConv2d(3, 3, 4, stride=2, padding=1)),
    'concat-nearest': lambda: Concat(Conv2d(2, 2, 2, stride=2), NearestUpsampling(2)),
    'residual': lambda: Residual(Conv2d(2, 2, 3, padding=1), LeakyReLU(0.2)),
    'residual-in-concat': lambda: Concat(Residual(Conv2d(2, 2, 3, padding=1), ReLU()),
                                         Conv2d(2, 1, 1)),
    'concat-in-residual': lambda: Residual(Concat(Conv2d(2, 2, 3, padding=1)),
                                           Conv2d(4, 2, 1)),
    'empty-bodies': lambda: Sequential(Residual(), Concat(), Sequential()),
    'upsampling-plain': lambda: Sequential(Conv2d(2, 2, 2, stride=2),
                                           Upsampling(2, 2, 3, scale_factor=2, padding=(1, 0))),
}


@SETTINGS
@given(st.sampled_from(sorted(COMPOSITIONS)), dtypes, batch_or_none, seeds)
def test_compositions_match_autograd(name, dtype, batch, seed):
    torch.manual_seed(seed)
    module = COMPOSITIONS[name]().to(dtype=dtype)
    x = random_tensor(seed, input_shape(batch, 2, 6, 8), dtype)
    check_against_autograd(module, x, seed + 1, inplace='inplace' in name)


# --------------------------------------------------------------------------------------
# Gradient accumulation, zero_grad, compute_input_grad
# --------------------------------------------------------------------------------------

def test_gradients_accumulate_over_two_backward_calls_as_in_pytorch():
    torch.manual_seed(0)
    dtype = torch.float64
    network = unet().to(dtype=dtype)
    x = random_tensor(1, (2, 3, 8, 6), dtype)
    grad_output = random_tensor(2, (2, 3, 8, 6), dtype)
    with torch.enable_grad():
        x_ref = x.clone().requires_grad_()
        params = {n: p.clone().requires_grad_() for n, p in network.named_parameters()}
        for _ in range(2):  # PyTorch accumulates into .grad too
            reference(network, x_ref, params).backward(grad_output)
    network.zero_grad()
    for _ in range(2):
        network.forward(x)
        network.backward(grad_output)
    for name, grad in named_grads(network).items():
        assert_close(grad, params[name].grad, name)
    network.zero_grad()
    assert all(torch.equal(grad, torch.zeros_like(grad)) for _, grad in network.param())
    network.forward(x)
    network.backward(grad_output)
    for name, grad in named_grads(network).items():
        assert_close(2 * grad, params[name].grad, name)


def test_first_layer_without_input_grad_still_trains():
    torch.manual_seed(0)
    full, lean = unet().to(dtype=torch.float64), unet().to(dtype=torch.float64)
    lean.load_state_dict(full.state_dict())
    lean[0].compute_input_grad = False
    x = random_tensor(0, (1, 3, 4, 4), torch.float64)
    grad = random_tensor(1, (1, 3, 4, 4), torch.float64)
    full.forward(x)
    lean.forward(x)
    assert full.backward(grad) is not None
    assert lean.backward(grad) is None
    for name, g in named_grads(full).items():
        assert_close(named_grads(lean)[name], g, name)


def test_a_forward_only_pass_computes_the_same_and_keeps_nothing():
    torch.manual_seed(0)
    network = Sequential(unet(), Upsampling(3, 3, 3))  # the second takes the plain path
    x = random_tensor(0, (2, 3, 6, 6), torch.float32)
    expected = network(x)
    kept = weakref.ref(x)
    assert network.requires_backward_(False) is network
    assert_close(network(x), expected, 'forward-only output')
    del x
    assert kept() is None, 'a layer still holds its input after a forward-only pass'
    with pytest.raises(ValueError, match='forward-only'):
        network.backward(torch.ones_like(expected))
    network.requires_backward_(True)
    y = network(expected.new_ones(2, 3, 6, 6))
    assert network.backward(torch.ones_like(y)).shape == (2, 3, 6, 6)


@pytest.mark.parametrize('activation', [lambda: ReLU(inplace=True),
                                        lambda: LeakyReLU(0.1, inplace=True),
                                        lambda: ELU(inplace=True), lambda: Sigmoid(inplace=True)],
                         ids=['relu', 'leaky_relu', 'elu', 'sigmoid'])
@pytest.mark.parametrize('make', [lambda: Conv2d(3, 16, 3, padding=1),
                                  lambda: Conv2d(3, 4, 3, padding=1),
                                  lambda: Conv2d(3, 16, 3, stride=2, padding=1),
                                  lambda: TransposeConv2d(3, 16, 4, stride=2, padding=1),
                                  lambda: Upsampling(3, 16, 3, padding=1),
                                  lambda: Upsampling(3, 4, 3, scale_factor=3, padding=1)],
                         ids=['paired', 'taps-first', 'strided', 'transpose', 'phases', 'plain'])
def test_forward_only_fuses_an_inplace_activation_into_its_layer(make, activation,
                                                                 monkeypatch):
    """Forward only, a layer applies the in-place activation after it to each chunk of its
    output (the activation's own forward is not called) and gives the output of the two
    run one after the other, to float32 rounding; with backward, nothing is fused."""
    torch.manual_seed(0)
    layer = make()
    network = Sequential(layer, activation(), Conv2d(layer.out_channels, 3, 1))
    x = random_tensor(0, (2, 3, 10, 12), torch.float32).movedim(1, -1).contiguous().movedim(
        -1, 1)
    expected = network(x.clone())
    calls = []
    forward = type(network[1]).forward
    monkeypatch.setattr(type(network[1]), 'forward',
                        lambda self, input: calls.append(1) or forward(self, input))
    network.requires_backward_(False)
    torch.testing.assert_close(network(x.clone()), expected, rtol=1e-6, atol=1e-6)
    assert calls == []
    network.requires_backward_(True)
    network(x.clone())
    assert calls == [1]


def test_a_full_pass_keeps_the_input_for_backward():  # the check above can fail
    network = unet()
    x = random_tensor(0, (1, 3, 4, 4), torch.float32)
    kept = weakref.ref(x)
    network(x)
    del x
    assert kept() is not None


# --------------------------------------------------------------------------------------
# State dicts
# --------------------------------------------------------------------------------------

def test_state_dict_names_are_dotted():
    network = unet()
    assert list(network.state_dict()) == UNET_NAMES
    assert [name for name, _ in network.named_parameters()] == UNET_NAMES
    assert len(network.param()) == len(UNET_NAMES)


def torch_twin():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                               torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1), torch.nn.ELU()),
                               torch.nn.Conv2d(4, 2, (1, 2), bias=False))


def ours_twin():
    return Sequential(Conv2d(3, 4, 3), ReLU(), Sequential(Conv2d(4, 4, 1), ELU()),
                      Conv2d(4, 2, (1, 2), bias=False))


def test_state_dict_names_and_printing_as_torch_nn():
    theirs, ours = torch_twin(), ours_twin()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict())   # a torch.nn state dict loads as is
    x = torch.randn(2, 3, 7, 6)
    with torch.no_grad():
        assert_close(ours.forward(x), theirs(x), 'output')


def test_load_state_dict_round_trip():
    torch.manual_seed(0)
    source = unet()
    torch.manual_seed(1)
    target = unet()
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    target.load_state_dict(torch.load(buffer))
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(source.forward(x), target.forward(x))
    for (name, p), (_, q) in zip(source.named_parameters(), target.named_parameters()):
        assert torch.equal(p, q) and p.data_ptr() != q.data_ptr(), name


def test_state_dict_is_a_copy():
    network = unet()
    state = network.state_dict()
    state['0.weight'].zero_()
    assert network[0].weight.abs().sum() > 0


def corrupt(state, kind):
    if kind == 'missing':
        del state['2.2.bias']
    elif kind == 'unexpected':
        state['5.weight'] = torch.zeros(1)
    elif kind == 'wrong-shape':
        state['3.0.weight'] = torch.zeros(8, 8, 1, 1)
    elif kind == 'missing-and-unexpected':
        state['4.bias_renamed'] = state.pop('4.bias')
    return state


@pytest.mark.parametrize('kind', ['missing', 'unexpected', 'wrong-shape',
                                  'missing-and-unexpected'])
def test_load_state_dict_is_strict_and_atomic(kind):
    torch.manual_seed(0)
    network = unet()
    before = network.state_dict()
    torch.manual_seed(1)
    state = corrupt(unet().state_dict(), kind)
    with pytest.raises(ValueError):
        network.load_state_dict(state)
    after = network.state_dict()   # a partial load is an error, and changes nothing
    assert all(torch.equal(before[name], after[name]) for name in before)


@pytest.mark.parametrize('module', [ReLU(), Sigmoid(), NearestUpsampling(2),
                                    Sequential(ReLU(), Sigmoid()), Concat(ELU()),
                                    Residual(LeakyReLU()), Sequential()],
                         ids=repr)
def test_parameter_free_modules(module):
    assert module.param() == []
    assert module.state_dict() == {}
    module.load_state_dict({})
    module.zero_grad()


def test_sequential_is_a_sequence_of_modules():
    layers = [Conv2d(1, 2, 1), ReLU()]
    network = Sequential(*layers)
    assert len(network) == 2 and network[0] is layers[0] and list(network) == layers
    with pytest.raises(TypeError):
        Sequential(Conv2d(1, 2, 1), torch.nn.ReLU())
