"""ReLU, LeakyReLU, ELU and Sigmoid against torch: any shape, extreme values, inplace."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

from Miniproject_2.model import ELU, LeakyReLU, ReLU, Sigmoid
from oracle import assert_close, check_against_autograd
from strategies import SETTINGS, alphas, dtypes, negative_slopes, random_tensor, seeds, shapes


@st.composite
def activations(draw):
    """(our module factory, its torch functional) with drawn hyper-parameters."""
    kind = draw(st.sampled_from(['relu', 'leaky_relu', 'elu', 'sigmoid']))
    if kind == 'relu':
        return lambda **kw: ReLU(**kw), F.relu
    if kind == 'leaky_relu':
        a = draw(negative_slopes)
        return lambda **kw: LeakyReLU(a, **kw), lambda x: F.leaky_relu(x, a)
    if kind == 'elu':
        a = draw(alphas)
        return lambda **kw: ELU(a, **kw), lambda x: F.elu(x, a)
    return lambda **kw: Sigmoid(**kw), torch.sigmoid


def with_zeros(x):
    """Every third entry exactly zero: the kink, where the derivative convention matters."""
    x.view(-1)[::3] = 0
    return x


@SETTINGS
@given(activations(), shapes, dtypes, seeds, st.sampled_from([0.1, 1.0, 5.0]))
def test_activation_matches_autograd(activation, shape, dtype, seed, scale):
    make, _ = activation
    x = with_zeros(random_tensor(seed, shape, dtype, scale))
    check_against_autograd(make(), x, seed + 1)


@SETTINGS
@given(activations(), shapes, dtypes, seeds)
def test_inplace_gives_same_values_and_gradients_and_overwrites_input(activation, shape, dtype,
                                                                      seed):
    make, function = activation
    x = with_zeros(random_tensor(seed, shape, dtype, 3.0))
    module = make(inplace=True)
    check_against_autograd(module, x, seed + 1, inplace=True)   # values and gradients
    x_inplace = x.clone()
    y = module.forward(x_inplace)
    assert y.data_ptr() == x_inplace.data_ptr()
    assert_close(x_inplace, function(x), 'input after an inplace forward')


@SETTINGS
@given(activations(), shapes, dtypes, seeds)
def test_not_inplace_never_modifies_its_input(activation, shape, dtype, seed):
    make, _ = activation
    x = with_zeros(random_tensor(seed, shape, dtype, 3.0))
    x_copy = x.clone()
    module = make()
    y = module.forward(x)
    assert torch.equal(x, x_copy)
    module.backward(torch.ones_like(y))
    assert torch.equal(x, x_copy)
    assert y.data_ptr() != x.data_ptr() or x.numel() == 0


@SETTINGS
@given(activations(), shapes, dtypes, seeds, st.booleans())
def test_a_forward_only_pass_gives_the_same_output(activation, shape, dtype, seed, inplace):
    make, function = activation
    x = with_zeros(random_tensor(seed, shape, dtype, 3.0))
    module = make(inplace=inplace).requires_backward_(False)
    assert_close(module(x.clone()), function(x), 'forward-only output')


EXTREMES = [-float('inf'), -1e30, -1e4, -1000.0, -100.0, -30.0, -1.0, -1e-30, -0.0, 0.0,
            1e-30, 1.0, 30.0, 100.0, 1000.0, 1e4, 1e30, float('inf')]

TWINS = [(ReLU, F.relu), (lambda: LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
         (lambda: ELU(1.5), lambda x: F.elu(x, 1.5)), (Sigmoid, torch.sigmoid)]


def ours_and_torch(make, function, x, inplace):
    """(our module, its output and input gradient for a gradient of ones, torch's two)."""
    module = make()
    module.inplace = inplace
    with torch.enable_grad():
        x_ref = x.clone().requires_grad_()
        y_ref = function(x_ref)
        y_ref.backward(torch.ones_like(y_ref))
    y = module.forward(x.clone())
    return module, y, module.backward(torch.ones_like(y)), y_ref.detach(), x_ref.grad


@pytest.mark.parametrize('make, function', TWINS)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('inplace', [False, True])
def test_extreme_inputs_as_torch(make, function, dtype, inplace):
    """Large |x| (and +-inf): the same values as torch, no nan or inf where torch has none."""
    x = torch.tensor(EXTREMES, dtype=dtype)
    module, y, grad, y_ref, grad_ref = ours_and_torch(make, function, x, inplace)
    forward_only = module.requires_backward_(False)(x.clone())
    for ours, theirs, what in ((y, y_ref, 'output'), (grad, grad_ref, 'gradient'),
                               (forward_only, y_ref, 'forward-only output')):
        assert not ours.isnan().any(), f'{what} has nan at {x[ours.isnan()].tolist()}'
        assert torch.equal(ours.isinf(), theirs.isinf()), f'{what}: inf where torch has none'
        assert_close(ours, theirs, what)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_sigmoid_saturates_exactly(dtype):
    x = torch.tensor([-1000.0, 1000.0], dtype=dtype)
    module = Sigmoid()
    y = module.forward(x)
    assert torch.equal(y, torch.sigmoid(x))
    assert torch.equal(y, torch.tensor([0.0, 1.0], dtype=dtype))
    assert torch.equal(module.backward(torch.ones_like(y)), torch.zeros_like(y))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('alpha', [1.0, 0.3])
def test_elu_keeps_every_digit_near_zero(dtype, alpha):
    """a*(e^x - 1) as a*e^x - a loses the digits of small |x| (x = -1e-8 gave 0 in float32);
    torch computes a*expm1(x), and so do we: relative error of float rounding only."""
    x = -torch.logspace(-12, 1, 200, dtype=dtype)
    y = ELU(alpha).forward(x)
    expected = F.elu(x.double(), alpha)
    assert ((y.double() - expected).abs() / expected.abs()).max() < 4 * torch.finfo(dtype).eps
    assert torch.equal(y, F.elu(x, alpha))


@pytest.mark.parametrize('ours, theirs', [
    (ReLU(), torch.nn.ReLU()), (ReLU(inplace=True), torch.nn.ReLU(inplace=True)),
    (LeakyReLU(0.1), torch.nn.LeakyReLU(0.1)),
    (LeakyReLU(inplace=True), torch.nn.LeakyReLU(inplace=True)),
    (ELU(), torch.nn.ELU()), (ELU(0.5, inplace=True), torch.nn.ELU(0.5, inplace=True)),
    (Sigmoid(), torch.nn.Sigmoid())])
def test_repr_matches_torch(ours, theirs):
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize('make', [ReLU, LeakyReLU, ELU, Sigmoid])
def test_parameter_free(make):
    assert make().param() == []
    assert make().state_dict() == {}


NAN_TWINS = TWINS + [(lambda: LeakyReLU(0.0), lambda x: F.leaky_relu(x, 0.0)),
                     (lambda: LeakyReLU(1.5), lambda x: F.leaky_relu(x, 1.5)),
                     (lambda: LeakyReLU(-0.5), lambda x: F.leaky_relu(x, -0.5))]


@pytest.mark.parametrize('make, function', NAN_TWINS)
@pytest.mark.parametrize('inplace', [False, True])
def test_nan_inputs_as_torch(make, function, inplace):
    """A nan input gives torch's output and gradient: conventions differ between activations
    (ReLU and ELU pass the gradient there, LeakyReLU scales it by its slope)."""
    x = torch.tensor([float('nan'), -1.0, 0.0, 1.0])
    _, y, grad, y_ref, grad_ref = ours_and_torch(make, function, x, inplace)
    assert torch.equal(y.isnan(), y_ref.isnan())
    torch.testing.assert_close(grad, grad_ref, equal_nan=True, rtol=0, atol=0)


LAYOUTS = {'contiguous': lambda x: x, 'channels_last': lambda x: x.contiguous(
    memory_format=torch.channels_last), 'sliced': lambda x: x[:, :, ::2],
    'empty': lambda x: x[:0]}


@pytest.mark.parametrize('layout', LAYOUTS)
@pytest.mark.parametrize('a', [0.1, 2.0])
@pytest.mark.parametrize('inplace', [False, True])
def test_forward_only_leaky_relu_in_parts_as_torch(layout, a, inplace):
    """The forward-only pass works on a dense tensor a quarter million values at a time (several
    parts here, whatever the memory format); other strides take one pass."""
    x = LAYOUTS[layout](torch.randn(2, 24, 100, 60))
    original = x.clone()
    output = LeakyReLU(a, inplace=inplace).requires_backward_(False)(x)
    expected = F.leaky_relu(original, a)
    assert torch.equal(output, expected)
    assert torch.equal(x, expected if inplace else original)
    assert (output.data_ptr() == x.data_ptr()) == inplace or x.numel() == 0
