"""Conv2d, TransposeConv2d, NearestUpsampling and Upsampling against torch autograd."""
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from Miniproject_2 import model as model_module
from Miniproject_2.model import SGD, Conv2d, Module, NearestUpsampling, TransposeConv2d, Upsampling
from oracle import assert_close, check_against_autograd, named_grads
from strategies import (FEW, SETTINGS, batches, channels, conv_geometries, dtypes,
                        narrow_channels, pairs, phase_geometries, random_tensor, seeds,
                        transpose_geometries, upsampling_geometries)


def conv(g, dtype, bias=True):
    return Conv2d(g.in_channels, g.out_channels, g.kernel_size, bias=bias,
                  **g.conv_kwargs()).to(dtype=dtype)


def transpose_conv(g, dtype, bias=True):
    return TransposeConv2d(g.in_channels, g.out_channels, g.kernel_size,
                           output_padding=g.output_padding, bias=bias,
                           **g.conv_kwargs()).to(dtype=dtype)


def upsampling(g, dtype, bias=True):
    return Upsampling(g.in_channels, g.out_channels, g.kernel_size, scale_factor=g.scale_factor,
                      bias=bias, **g.conv_kwargs()).to(dtype=dtype)


# --------------------------------------------------------------------------------------
# Forward and gradients against autograd, on hypothesis sweeps, in float32 and float64
# --------------------------------------------------------------------------------------

def in_layout(x, channels_last):
    """``x``, or the same values channels-last in memory: the layout our layers hand each
    other, whose patches are gathered in another order."""
    return x.movedim(-3, -1).contiguous().movedim(-1, -3) if channels_last else x


@SETTINGS
@given(conv_geometries(), dtypes, st.booleans(), st.booleans(), seeds)
def test_conv2d_matches_autograd(g, dtype, bias, channels_last, seed):
    module = conv(g, dtype, bias)
    x = in_layout(random_tensor(seed, g.input_shape, dtype), channels_last)
    check_against_autograd(module, x, seed + 1)


@SETTINGS
@given(transpose_geometries(), dtypes, st.booleans(), st.booleans(), seeds)
def test_transpose_conv2d_matches_autograd(g, dtype, bias, channels_last, seed):
    module = transpose_conv(g, dtype, bias)
    x = in_layout(random_tensor(seed, g.input_shape, dtype), channels_last)
    check_against_autograd(module, x, seed + 1)


# Where one row of the channels-last patch matrix computes two neighbouring output pixels:
# 9 to 24 output channels (input channels, for TransposeConv2d's backward), kernels at least
# 3 wide, stride and dilation 1 across; even output widths pair, odd ones do not.
pairing_kernels = st.tuples(st.integers(1, 5), st.integers(3, 5))
pairing_strides = st.tuples(st.integers(1, 3), st.just(1))
pairing_dilations = st.tuples(st.integers(1, 2), st.just(1))


@SETTINGS
@given(conv_geometries(kernel_size=pairing_kernels, stride=pairing_strides,
                       dilation=pairing_dilations, out_channels=narrow_channels),
       dtypes, st.booleans(), seeds)
def test_narrow_channels_last_conv2d_matches_autograd(g, dtype, bias, seed):
    x = in_layout(random_tensor(seed, g.input_shape, dtype), channels_last=True)
    check_against_autograd(conv(g, dtype, bias), x, seed + 1)


@SETTINGS
@given(transpose_geometries(kernel_size=pairing_kernels, stride=st.just((1, 1)),
                            dilation=pairing_dilations, in_channels=narrow_channels,
                            out_channels=narrow_channels),
       dtypes, st.booleans(), seeds)
def test_narrow_channels_last_transpose_conv2d_matches_autograd(g, dtype, bias, seed):
    x = in_layout(random_tensor(seed, g.input_shape, dtype), channels_last=True)
    check_against_autograd(transpose_conv(g, dtype, bias), x, seed + 1)


@pytest.mark.parametrize('shape, make', [
    ((1, 2, 5, 6), lambda: Conv2d(2, 3, 3, padding=1)),
    ((1, 2, 4), lambda: Conv2d(1, 2, (1, 4))),
    ((1, 1, 3, 1), lambda: Conv2d(1, 2, 3, padding=1)),
    ((2, 3, 1, 4), lambda: Conv2d(3, 1, 1))], ids=['batch-of-one', 'one-output-column',
                                                   'one-input-column', 'one-output-channel'])
def test_stride1_backward_reads_the_patch_order_of_its_layout(shape, make):
    """At stride 1 the weight gradient comes from dY's patch matrix, whose column order
    follows dY's memory layout; these gradients have size-1 dimensions (any stride there)
    or a column-major matrix (the second input is one unbatched image)."""
    x = random_tensor(0, shape, torch.float64)
    check_against_autograd(make().to(dtype=torch.float64), x, 1)


@pytest.mark.parametrize('stride, dilation, output_padding', [
    (2, 1, 1), (3, 1, 2), ((2, 3), 1, (1, 2)), (2, 2, 1), ((3, 2), 2, (2, 0))])
def test_transpose_conv2d_output_padding(stride, dilation, output_padding):
    module = TransposeConv2d(2, 3, 3, stride=stride, padding=1, dilation=dilation,
                             output_padding=output_padding).to(dtype=torch.float64)
    check_against_autograd(module, random_tensor(0, (2, 2, 4, 5), torch.float64), 1)


@pytest.mark.parametrize('stride, dilation, output_padding', [
    (1, 2, 1), ((1, 2), (3, 1), (2, 1)), (1, 3, 2)])
def test_transpose_conv2d_refuses_output_padding_past_stride(stride, dilation, output_padding):
    """torch accepts stride <= output_padding < dilation (rows only the bias reaches); this
    layer refuses it at construction rather than computing it."""
    with pytest.raises(ValueError, match='output_padding'):
        TransposeConv2d(2, 3, (1, 3), stride=stride, dilation=dilation,
                        output_padding=output_padding)


@SETTINGS
@given(st.integers(1, 4), batches, channels,
       st.integers(1, 6), st.integers(1, 6), dtypes, seeds)
def test_nearest_upsampling_matches_autograd(scale, batch, c, h, w, dtype, seed):
    shape = (c, h, w) if batch is None else (batch, c, h, w)
    check_against_autograd(NearestUpsampling(scale), random_tensor(seed, shape, dtype), seed + 1)


@SETTINGS
@given(upsampling_geometries(), dtypes, st.booleans(), seeds)
def test_upsampling_matches_interpolate_then_conv2d(g, dtype, bias, seed):
    module = upsampling(g, dtype, bias)
    check_against_autograd(module, random_tensor(seed, g.input_shape, dtype), seed + 1)


@SETTINGS
@given(phase_geometries, dtypes, st.booleans(), seeds)
def test_upsampling_phase_path_matches_interpolate_then_conv2d(g, dtype, bias, seed):
    module = upsampling(g, dtype, bias)
    assert module.use_phases
    # Channels-last: one channel-first image would take the plain path, as F.conv2d's.
    x = in_layout(random_tensor(seed, g.input_shape, dtype), channels_last=True)
    check_against_autograd(module, x, seed + 1)


@SETTINGS
@given(phase_geometries, dtypes, st.booleans(), seeds)
def test_upsampling_phase_path_equals_straightforward_path(g, dtype, bias, seed):
    """The fast path is an optimisation only: same output and gradients as the plain path."""
    fast, plain = upsampling(g, dtype, bias), upsampling(g, dtype, bias)
    plain.use_phases = False
    plain.load_state_dict(fast.state_dict())
    x = in_layout(random_tensor(seed, g.input_shape, dtype), channels_last=True)  # see above
    y_fast, y_plain = fast.forward(x), plain.forward(x)
    assert_close(y_fast, y_plain, 'output')
    grad = random_tensor(seed + 1, tuple(y_plain.shape), dtype)
    assert_close(fast.backward(grad), plain.backward(grad), 'input gradient')
    for name, grad_plain in named_grads(plain).items():
        assert_close(named_grads(fast)[name], grad_plain, f'gradient of {name}')


@pytest.mark.parametrize('kwargs, fast', [
    (dict(kernel_size=3, padding=1), True),
    (dict(kernel_size=(3, 3), padding=(1, 1), bias=False), True),
    (dict(kernel_size=3, padding=1, scale_factor=3), False),
    (dict(kernel_size=3, padding=0), False),
    (dict(kernel_size=3, padding=1, stride=2), False),
    (dict(kernel_size=3, padding=1, dilation=2), False),
    (dict(kernel_size=(3, 2), padding=1), False),
    (dict(kernel_size=5, padding=2), False)])
def test_phase_path_only_for_its_geometry(kwargs, fast):
    assert Upsampling(2, 3, **kwargs).use_phases is fast


@pytest.mark.parametrize('bias', [True, False])
def test_upsampling_holds_its_own_parameters(bias):
    """Not a Conv2d (its output size differs) and holding none: its own Parameters, with
    Conv2d's shapes and the state-dict names ``weight`` and ``bias`` (saved weights load),
    the same tensors for life (``to`` and ``reset_parameters`` change them in place)."""
    module = Upsampling(2, 3, (3, 2), padding=1, bias=bias)
    assert not isinstance(module, Conv2d)
    assert not any(isinstance(value, Module) and value.param() for value in vars(module).values())
    assert list(module.state_dict()) == (['weight', 'bias'] if bias else ['weight'])
    assert module.weight.shape == (3, 2, 3, 2) and (module.bias is None) == (not bias)
    tensors = [t for pair in module.param() for t in pair]
    before = [t.clone() for t in tensors]
    module.to(torch.float64)
    module.reset_parameters('kaiming')
    after = [t for pair in module.param() for t in pair]
    assert all(a is b for a, b in zip(after, tensors, strict=True))
    assert all(t.dtype == torch.float64 for t in after)
    assert not torch.equal(after[0], before[0].double())


def test_upsampling_rebuilds_its_phase_kernels_when_the_weight_changes():
    """The phase path keeps its kernels, made from the weight, until the weight changes:
    in place (an optimizer step, an in-place product, ``load_state_dict``), its memory
    (``.data``) or its dtype (``to``, which keeps the tensor). After each change it computes with the new
    weight, as autograd does with it."""
    module = Upsampling(2, 3, 3, padding=1)
    assert module.use_phases
    x = random_tensor(0, (2, 2, 5, 6))
    check_against_autograd(module, x)  # kernels made from the first weight
    optimizer = SGD(module.param(), lr=0.5)
    optimizer.step()
    check_against_autograd(module, x)
    module.weight.mul_(-2)
    check_against_autograd(module, x)
    module.weight.data = module.weight.flip(0)  # new memory, the version counter unchanged
    check_against_autograd(module, x)
    module.load_state_dict(Upsampling(2, 3, 3, padding=1).state_dict())
    check_against_autograd(module, x)
    module.to(torch.float64)
    check_against_autograd(module, x.double())


def test_upsampling_phase_kernels_of_inference_tensors():
    """Inference tensors count no versions: their phase kernels are made on every pass, so
    an in-place change still shows."""
    with torch.inference_mode():
        module = Upsampling(2, 3, 3, padding=1, bias=False)
        x = random_tensor(0, (2, 2, 5, 6))
        y = module(x)
        module.weight.mul_(2)
        torch.testing.assert_close(module(x), 2 * y)


# --------------------------------------------------------------------------------------
# PyTorch's products for one small image: one decision per layer call
# --------------------------------------------------------------------------------------

class Ops(TorchDispatchMode):
    """Records the name of every aten operation run inside it."""

    def __enter__(self):
        self.names = set()
        return super().__enter__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('make', [lambda: Conv2d(3, 4, 3, padding=1),
                                  lambda: Conv2d(3, 4, 3, stride=2, padding=1),
                                  lambda: TransposeConv2d(3, 4, 3, stride=2, padding=1,
                                                          output_padding=1),
                                  lambda: Upsampling(3, 4, 3, padding=1),
                                  lambda: Upsampling(3, 4, 3, scale_factor=3, padding=1)],
                         ids=['conv', 'strided', 'transpose', 'phases', 'plain'])
@pytest.mark.parametrize('channels_last', [False, True])
def test_one_decision_per_call_gives_every_pass_pytorchs_products(make, channels_last, tune):
    """One channel-first image of at most ``Tuning.torch_bits_values`` values (after
    upsampling) gets PyTorch's own products, which run im2col and col2im (unfold, fold),
    and anything else our GEMMs, which run neither. The decision is made from the image the
    layer is called on, the same in its forward and backward passes: at the limit every
    pass takes PyTorch's products, one value below it none does, nor does a channels-last
    image. (Deciding from the output gradient, ignoring the upsampling or the record
    would split them.)"""
    module = make()
    x = in_layout(torch.randn(1, 3, 6, 5), channels_last)
    scale = module.upsample.scale_factor if isinstance(module, Upsampling) else 1
    values = x.numel() * scale ** 2
    for limit in (values, values - 1):
        tune(torch_bits_values=limit)
        with Ops() as forward:
            y = module(x)
        with Ops() as backward:
            module.backward(torch.randn_like(y))
        expected = limit == values and not channels_last
        for ops in (forward, backward):
            assert bool(ops.names & {'im2col', 'col2im'}) == expected, (limit, ops.names)


# --------------------------------------------------------------------------------------
# compute_input_grad = False
# --------------------------------------------------------------------------------------

LAYERS = [lambda: Conv2d(2, 3, 3, padding=1),
          lambda: Conv2d(2, 3, (2, 3), stride=2),
          lambda: TransposeConv2d(2, 3, 3, stride=2, padding=1, output_padding=1),
          lambda: Upsampling(2, 3, 3, padding=1),                  # phase path
          lambda: Upsampling(2, 3, 3, scale_factor=3, padding=1)]  # plain path


@pytest.mark.parametrize('make', LAYERS)
@pytest.mark.parametrize('batched', [True, False])
def test_no_input_grad_returns_none_and_accumulates_parameter_grads(make, batched):
    full, lean = make().to(dtype=torch.float64), make().to(dtype=torch.float64)
    lean.load_state_dict(full.state_dict())
    lean.compute_input_grad = False
    x = random_tensor(0, (2, 2, 5, 6) if batched else (2, 5, 6), torch.float64)
    y = full.forward(x)
    assert torch.equal(lean.forward(x), y)
    grad = random_tensor(1, tuple(y.shape), torch.float64)
    assert full.backward(grad) is not None
    assert lean.backward(grad) is None
    lean.forward(x)
    assert lean.backward(grad) is None  # accumulates: twice the gradient of one pass
    for name, g in named_grads(full).items():
        assert g.abs().sum() > 0
        assert_close(named_grads(lean)[name], 2 * g, name)


def layouts(x):
    """The same values in other memory layouts: channel-major (as our layers return), a
    strided slice of a larger tensor, and channels-last."""
    yield x.transpose(0, 1).contiguous().transpose(0, 1)
    big = x.new_zeros(*x.shape[:-1], 2 * x.shape[-1])
    big[..., ::2] = x
    yield big[..., ::2]
    yield x.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize('make', LAYERS + [lambda: NearestUpsampling(2)])
def test_any_memory_layout_gives_the_same_results(make):
    module = make().to(dtype=torch.float64)
    x = random_tensor(0, (2, 2, 5, 6), torch.float64)
    y = module.forward(x)
    grad = random_tensor(1, tuple(y.shape), torch.float64)
    module.zero_grad()
    grad_x = module.backward(grad)
    expected = [g.clone() for _, g in module.param()]
    for x_other, grad_other in zip(layouts(x), layouts(grad)):
        module.zero_grad()
        assert_close(module.forward(x_other), y, 'output')
        assert_close(module.backward(grad_other), grad_x, 'input gradient')
        for (_, g), g_expected in zip(module.param(), expected):
            assert_close(g, g_expected, 'parameter gradient')


class _WrongWeightGrad(Conv2d):
    def backward(self, grad):
        result = super().backward(grad)
        weight_grad = self.param()[0][1]
        weight_grad *= 1 + 1e-3
        return result


class _WrongOutput(Conv2d):
    def forward(self, x):
        return super().forward(x) * (1 + 1e-3)


@pytest.mark.parametrize('broken', [_WrongWeightGrad, _WrongOutput])
def test_the_oracle_catches_small_errors(broken):
    module = broken(2, 3, 3)
    with pytest.raises(AssertionError):
        check_against_autograd(module, random_tensor(0, (2, 2, 5, 5)), 1)


# --------------------------------------------------------------------------------------
# Printing, parameter shapes, initialisation
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize('args, kwargs', [
    ((3, 64, 3), dict(stride=2, padding=1)),
    ((3, 64, 3), dict()),
    ((1, 2, (3, 5)), dict(stride=(1, 2), padding=(0, 2), dilation=2, bias=False))])
def test_conv2d_repr_matches_torch(args, kwargs):
    assert repr(Conv2d(*args, **kwargs)) == repr(torch.nn.Conv2d(*args, **kwargs))


@pytest.mark.parametrize('kwargs', [dict(), dict(stride=2, padding=1, output_padding=1),
                                    dict(stride=2, dilation=2, output_padding=1, bias=False)])
def test_transpose_conv2d_repr_matches_torch(kwargs):
    ours = repr(TransposeConv2d(3, 8, 3, **kwargs))
    theirs = repr(torch.nn.ConvTranspose2d(3, 8, 3, **kwargs))
    assert ours == theirs.replace('ConvTranspose2d', 'TransposeConv2d')


def test_upsampling_repr():
    assert repr(Upsampling(3, 8, 3, padding=1)) == \
        'Upsampling(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), scale_factor=2)'
    assert repr(NearestUpsampling(3)) == 'NearestUpsampling(scale_factor=3)'


@pytest.mark.parametrize('ours, theirs', [
    (lambda: Conv2d(3, 5, (2, 4)), lambda: torch.nn.Conv2d(3, 5, (2, 4))),
    (lambda: TransposeConv2d(3, 5, (2, 4)), lambda: torch.nn.ConvTranspose2d(3, 5, (2, 4))),
    (lambda: Upsampling(3, 5, (2, 4)), lambda: torch.nn.Conv2d(3, 5, (2, 4)))])
def test_parameter_shapes_as_torch(ours, theirs):
    module, twin = ours(), theirs()
    assert module.weight.shape == twin.weight.shape
    assert module.bias.shape == twin.bias.shape
    assert module.weight.dtype == torch.float32
    assert [tuple(p.shape) for p, _ in module.param()] == \
        [tuple(g.shape) for _, g in module.param()]


def test_int_and_pair_arguments_are_equivalent():
    a = Conv2d(2, 3, 3, stride=2, padding=1, dilation=1)
    b = Conv2d(2, 3, (3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    assert repr(a) == repr(b)


# A big layer, so the sample statistics are tight: 64 * 64 * 3 * 3 = 36864 weights.
BIG = [(lambda init: Conv2d(64, 64, 3, init=init), torch.nn.Conv2d(64, 64, 3), 64 * 9, 64 * 9),
       (lambda init: TransposeConv2d(64, 32, 3, init=init), torch.nn.ConvTranspose2d(64, 32, 3),
        32 * 9, 64 * 9)]


@pytest.mark.parametrize('make, twin, fan_in, fan_out', BIG)
def test_default_init_is_pytorchs(make, twin, fan_in, fan_out):
    torch.manual_seed(0)
    module = make('pytorch')
    bound = 1 / math.sqrt(fan_in)
    for ours, theirs in ((module.weight, twin.weight.detach()), (module.bias, twin.bias.detach())):
        assert ours.abs().max() <= bound and theirs.abs().max() <= bound
    # The bound is PyTorch's, and tight (checked on the weights: thousands of draws).
    assert twin.weight.detach().abs().max() > 0.99 * bound
    assert module.weight.abs().max() > 0.99 * bound
    assert abs(module.weight.std().item() / (bound / math.sqrt(3)) - 1) < 0.05   # uniform
    assert abs(module.weight.mean().item()) < 0.05 * bound


@pytest.mark.parametrize('make, twin, fan_in, fan_out', BIG)
@pytest.mark.parametrize('init', ['xavier', 'kaiming'])
def test_xavier_and_kaiming_std(make, twin, fan_in, fan_out, init):
    torch.manual_seed(0)
    module = make(init)
    expected = math.sqrt(2 / (fan_in + fan_out)) if init == 'xavier' else math.sqrt(2 / fan_in)
    assert abs(module.weight.std().item() / expected - 1) < 0.05
    assert abs(module.weight.mean().item()) < 0.05 * expected
    assert module.bias.abs().max() <= 1 / math.sqrt(fan_in)


@FEW
@given(conv_geometries())
def test_float64_conversion_moves_gradients_too(g):
    module = conv(g, torch.float64)
    assert all(p.dtype == torch.float64 and grad.dtype == torch.float64
               for p, grad in module.param())


# --------------------------------------------------------------------------------------
# The chunked convolution core against its straightforward path (one chunk per batch)
# --------------------------------------------------------------------------------------

@settings(SETTINGS, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(g=conv_geometries(stride=st.just((1, 1)), padding=pairs(0, 3)), bias=st.booleans(),
       chunk_bytes=st.sampled_from([None, 1, 256]), seed=seeds)
def test_taps_first_product_equals_the_patch_product(tune, g, bias, chunk_bytes, seed):
    """Narrow stride-1 outputs multiply the input by every tap first and sum shifted slices
    (``Tuning.taps_first_channels``): the same convolution as the patch matrix's, up to
    float64 rounding, for any kernel, dilation and padding (beyond the kernel's reach too,
    where some output rows read only zeros), chunked into bands of rows or not."""
    x = in_layout(random_tensor(seed, g.input_shape, torch.float64), channels_last=True)

    def run(channels):
        tune(taps_first_channels=channels, chunk_bytes=chunk_bytes, torch_bits_values=0)
        torch.manual_seed(seed)
        return conv(g, torch.float64, bias)(x)
    torch.testing.assert_close(run(8), run(0), rtol=1e-12, atol=1e-12)


@settings(SETTINGS, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(g=conv_geometries(stride=st.just((1, 1)), padding=pairs(0, 3)), bias=st.booleans(),
       chunk_bytes=st.sampled_from([None, 1, 256]), seed=seeds, phases=st.booleans())
def test_shifted_rows_equal_the_patch_product(tune, g, bias, chunk_bytes, seed, phases):
    """Forward only, stride-1 products may run as one GEMM per tap over shifted rows of the
    padded input (``_shifted_rows``): the same output as the training pass's patch product,
    up to float64 rounding, for any kernel, dilation and padding, in chunks or whole; and
    so the phase upsampling, whose product it also computes."""
    tune(taps_first_channels=0, shifted_rows_channels=1, shifted_rows_overhead=math.inf,
         chunk_bytes=chunk_bytes, torch_bits_values=0)
    x = in_layout(random_tensor(seed, g.input_shape, torch.float64), channels_last=True)
    torch.manual_seed(seed)
    module = (Upsampling(g.in_channels, g.out_channels, 3, padding=1, bias=bias).to(
        dtype=torch.float64) if phases else conv(g, torch.float64, bias))
    expected = module(x)
    torch.testing.assert_close(module.requires_backward_(False)(x), expected,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('make', [
    lambda: Conv2d(3, 4, 3, stride=2, padding=1),
    lambda: TransposeConv2d(3, 4, 4, stride=2, padding=1),
    lambda: Upsampling(3, 4, 3, scale_factor=2, padding=1)], ids=['conv', 'transpose', 'phases'])
def test_chunking_by_images_changes_nothing(make, tune):
    """Batches go through the GEMMs a few images (or, for a large image, a band of rows) at a
    time. Chunk sizes doubling from 1 byte up hold, in every pass (forward, weight and input
    gradients), bands of rows, then one image, then 2 to 4 of the 5 images, so the last chunk
    is partial, as in training (a chunk holds at most twice the rows of the size before, so
    no doubling jumps from one image to all five), then all five. Each must equal the single
    chunk up to float64 rounding, and agree with autograd."""
    x = torch.randn(5, 3, 9, 7, dtype=torch.float64)
    grad = torch.randn_like(make().to(dtype=torch.float64)(x))

    def run(chunk_bytes):
        tune(chunk_bytes=chunk_bytes)
        torch.manual_seed(0)
        module = make().to(dtype=torch.float64)
        return [module(x), module.backward(grad), *(g.clone() for _, g in module.param())]
    whole = run(None)
    for chunk_bytes in (2 ** k for k in range(21)):
        for a, b in zip(whole, run(chunk_bytes), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12,
                                       msg=lambda m: f'chunks of {chunk_bytes} bytes: {m}')
    tune(chunk_bytes=1)
    torch.manual_seed(0)
    check_against_autograd(make().to(dtype=torch.float64), x)


@pytest.mark.parametrize('make', [
    lambda: Conv2d(3, 4, 3, stride=2, padding=1),
    lambda: Conv2d(3, 4, (3, 2), padding=(2, 1), dilation=(1, 2)),
    lambda: TransposeConv2d(3, 4, 4, stride=2, padding=1),
    lambda: Upsampling(3, 4, 3, scale_factor=2, padding=1)],
    ids=['conv', 'dilated', 'transpose', 'phases'])
def test_padding_zeroed_at_its_borders_only_changes_nothing(make, tune):
    """Large zero-padded copies are zeroed at their borders only
    (``Tuning.whole_padding_values``). Done so at every size, over memory just freed full of
    nans, the layers still match autograd: no border is left unzeroed."""
    tune(whole_padding_values=0)
    x = torch.randn(5, 3, 9, 7, dtype=torch.float64)
    module = make().to(dtype=torch.float64)
    for size in range(500, 8000, 500):  # freed, these blocks hold nans for the next ones
        torch.full((size,), float('nan'), dtype=torch.float64)
    check_against_autograd(module, x)
