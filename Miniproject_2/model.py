"""A small deep-learning framework without autograd, and a Noise2Noise denoiser built on it.

Read top-down: the ``Module`` contract, layers (convolution, transposed convolution,
upsampling), activations, the loss, optimizers, containers; then the denoiser's parts
(``Denoiser``: a network and ``predict``; ``Trainer``, driven by a frozen ``Recipe``) and
``Model``, the course's interface over them.

Every module takes a batch (N, C, H, W) or a single image (C, H, W) and returns the rank it
was given. ``forward`` caches what ``backward`` needs; ``backward`` returns the gradient
with respect to the input and *accumulates* parameter gradients until ``zero_grad()``.

Layout. A convolution is GEMMs over the patch matrix of its input, one row per output
pixel, so its output lands channels-last in memory and is returned as an (N, C, H, W) view;
every module accepts any strides, so the next layer reads that memory without a transpose.
The patch matrix is one strided copy (``as_strided``) rather than ``unfold``, and its
adjoint a few strided adds rather than ``fold``: on this layout both are several times faster.

Course rules: only ``empty``, ``cat``, ``arange``, ``fold``, ``unfold`` and Tensor methods
(plus ``load``/``save``/``set_grad_enabled``/``cuda.is_available``/``device`` for the
weights file and the device); ``tests/test_rules.py`` enforces it.
"""
import math
import os
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

import torch
from torch import empty, cat, arange
from torch.nn.functional import fold, unfold


# --------------------------------------------------------------------------------------
# Module: the contract
# --------------------------------------------------------------------------------------

class Parameter:
    """A parameter tensor and its gradient, the pair ``param()`` lists.

    Both tensors keep their identity for life: ``to``, ``reset_parameters`` and
    ``load_state_dict`` change them in place, as torch.nn does, so whoever holds them (an
    optimizer built from ``param()``, a caller's ``conv.weight``) keeps the module's parameter.
    """

    def __init__(self, value):
        self.value = value
        self.grad = value.new_zeros(value.shape)

    def to(self, device=None, dtype=None):
        for name in ('value', 'grad'):
            moved = getattr(self, name).to(device=device, dtype=dtype)
            try:
                getattr(self, name).data = moved  # in place: the same tensor object
            except RuntimeError:
                # Tensor kinds that cannot share an object (such as to and from 'meta') get a
                # new tensor, as in torch.nn; the Parameter itself stays.
                setattr(self, name, moved)


class Module:
    """Base class: ``forward``, ``backward``, ``param`` and the bookkeeping torch.nn offers.

    Parameters are registered by name (``register_parameter('weight', tensor)``) and read as
    attributes (``self.weight``, a tensor); ``_parameters`` maps each name to its
    ``Parameter``, whose ``grad`` backward accumulates into. Sub-modules are listed in
    ``_children`` and give dotted state-dict names (``0.weight``), as in torch.nn.
    ``compute_input_grad = False`` lets ``backward`` skip the input gradient (it returns
    None): the first layer of a network has nobody upstream to give it to.
    ``requires_backward_(False)`` runs forward only (see there).
    """

    def __init__(self):
        self._parameters = {}
        self._children = {}
        self.compute_input_grad = True
        self.requires_backward = True
        self._saved = None

    def forward(self, *input):
        raise NotImplementedError

    def backward(self, *gradwrtoutput):
        raise NotImplementedError

    def __call__(self, *input, **options):
        output = self.forward(*input, **options)
        if not self.requires_backward:
            self._saved = None
        return output

    def requires_backward_(self, requires=True):
        """With False, this module and its children keep nothing for backward, as under
        torch.no_grad: each layer's input is freed once the next layer has read it, and
        the allocator reuses that memory while it is in cache (``predict`` runs so).
        Returns self."""
        self.requires_backward = requires
        for child in self._children.values():
            child.requires_backward_(requires)
        return self

    # -- parameters ---------------------------------------------------------------------
    def register_parameter(self, name, value):
        """Make the tensor ``value`` the parameter ``name``, with a zero gradient."""
        self._parameters[name] = Parameter(value)

    def __getattr__(self, name):
        # Called only when ordinary lookup fails: registered parameters read as tensors.
        parameters = self.__dict__.get('_parameters', {})
        if name in parameters:
            return parameters[name].value
        raise AttributeError(f'{type(self).__name__!r} object has no attribute {name!r}')

    def __setattr__(self, name, value):
        # Assigning a tensor to a parameter's name makes it a new parameter, as in torch.nn
        # (an attribute shadowing it would leave param() and forward using different tensors).
        if name in self.__dict__.get('_parameters', {}):
            self.register_parameter(name, value)
        else:
            super().__setattr__(name, value)

    def param(self):
        """List of (parameter, gradient) pairs; empty for parameter-free modules."""
        pairs = [(p.value, p.grad) for p in self._parameters.values()]
        for child in self._children.values():
            pairs += child.param()
        return pairs

    def named_parameters(self, prefix=''):
        for name, parameter in self._parameters.items():
            yield prefix + name, parameter.value
        for child_name, child in self._children.items():
            yield from child.named_parameters(f'{prefix}{child_name}.')

    def zero_grad(self):
        for _, grad in self.param():
            grad.zero_()

    def state_dict(self):
        return {name: tensor.detach().clone() for name, tensor in self.named_parameters()}

    def load_state_dict(self, state_dict):
        """Copy every parameter in place; names and shapes must match exactly."""
        own = dict(self.named_parameters())
        missing = sorted(own.keys() - state_dict.keys())
        unexpected = sorted(state_dict.keys() - own.keys())
        mismatched = [f'{name}: file {tuple(state_dict[name].shape)} vs model {tuple(p.shape)}'
                      for name, p in own.items()
                      if name in state_dict and tuple(state_dict[name].shape) != tuple(p.shape)]
        if missing or unexpected or mismatched:
            raise ValueError(f'{type(self).__name__}.load_state_dict: state dict does not match '
                             f'the network (missing: {missing}, unexpected: {unexpected}, '
                             f'wrong shape: {mismatched})')
        for name, p in own.items():
            p.copy_(state_dict[name])

    def to(self, *args, device=None, dtype=None):
        """Move parameters and gradients, in place, to a device and/or dtype, given by keyword
        or positionally as torch.nn accepts: ``to('cuda')``, ``to(torch.float64)``."""
        for arg in args:
            if isinstance(arg, _DTYPE):
                dtype = arg
            else:
                device = arg
        for parameter in self._parameters.values():
            parameter.to(device, dtype)
        for child in self._children.values():
            child.to(device=device, dtype=dtype)
        self._saved = None
        return self

    # -- printing -----------------------------------------------------------------------
    def extra_repr(self):
        return ''

    def __repr__(self):
        if not self._children:
            return f'{type(self).__name__}({self.extra_repr()})'
        lines = [f'  ({name}): ' + repr(child).replace('\n', '\n  ')
                 for name, child in self._children.items()]
        return f'{type(self).__name__}(\n' + '\n'.join(lines) + '\n)'

    # -- checks shared by the layers ----------------------------------------------------
    def _fail(self, message):
        raise ValueError(f'{type(self).__name__}: {message}')

    def _check_floating(self, x, what='input'):
        if not hasattr(x, 'is_floating_point'):
            raise TypeError(f'{type(self).__name__}: {what} must be a tensor, '
                            f'got {type(x).__name__}')
        if not x.is_floating_point():
            raise TypeError(f'{type(self).__name__}: {what} must be a floating-point tensor, '
                            f'got {x.dtype}')

    def _saved_or_fail(self):
        if self._saved is None:
            self._fail('backward called before forward' if self.requires_backward else
                       'backward called after a forward-only pass (requires_backward_(False))')
        return self._saved

    def _check_grad(self, grad, expected_shape):
        self._check_floating(grad, 'gradient')
        if tuple(grad.shape) != tuple(expected_shape):
            self._fail(f'gradient has shape {tuple(grad.shape)}, '
                       f'expected the output shape {tuple(expected_shape)}')

    def _batched_input(self, input, channels, dtype):
        """Validate an image input of ``channels`` channels and ``dtype`` (that of the
        weights); return it as a batch and whether it was a single image."""
        self._check_floating(input)
        if input.dim() not in (3, 4):
            self._fail(f'expected a (N, C, H, W) batch or a (C, H, W) image, '
                       f'got shape {tuple(input.shape)}')
        x = input if input.dim() == 4 else input.unsqueeze(0)
        if x.shape[1] != channels:
            self._fail(f'expected {channels} input channels, got shape {tuple(input.shape)}')
        if x.dtype != dtype:
            raise TypeError(f'{type(self).__name__}: input dtype {x.dtype} does not match the '
                            f'weight dtype {dtype} (use .to(dtype=...))')
        return x, input.dim() == 3

    @staticmethod
    def _unbatch(y, unbatched):
        return y.squeeze(0) if unbatched and y is not None else y

    def _batched_grad(self, grad, out_shape, unbatched):
        self._check_grad(grad, out_shape[1:] if unbatched else out_shape)
        return grad.unsqueeze(0) if unbatched else grad

    def _output_size(self, input_shape, h, w):
        if h < 1 or w < 1:
            self._fail(f'input of shape {tuple(input_shape)} gives an empty output '
                       f'({self.extra_repr()}): the kernel is larger than the padded input')
        return h, w


_DTYPE = type(empty(0).dtype)  # torch.dtype, named without the torch namespace


def _int_argument(owner, name, value, lowest=1, pair=False):
    """A constructor's int argument, checked to be at least ``lowest`` (1: a positive int);
    with ``pair``, an int or an (h, w) pair of them, returned as a pair. ``owner`` names the
    module in the message."""
    if pair:
        values = ((value, value) if isinstance(value, int) else
                  tuple(value) if isinstance(value, (tuple, list)) else ())
    else:
        values = (value,)
    if (len(values) != (2 if pair else 1)
            or not all(isinstance(v, int) and v >= lowest for v in values)):
        kind = 'a positive int' if lowest == 1 else f'an int >= {lowest}'
        raise ValueError(f'{owner}: {name} must be {kind}{" or a pair of them" if pair else ""}'
                         f', got {value!r}')
    return values if pair else value


# --------------------------------------------------------------------------------------
# The convolution core: three products over patch matrices
# --------------------------------------------------------------------------------------
# A convolution of x with the (O, C, kh, kw) weight W is, over the (N*Ho*Wo, C*kh*kw) patch
# matrix X of x, the *patch product* Y = X W^T + b. Its backward pass needs two more
# products of the output gradient dY: the *adjoint* col2im(dY W) (the input gradient) and
# the *weight gradient* dW += dY^T X. A transposed convolution is the adjoint as its forward
# pass, so the same three products serve both layers as mirror images:
#
#                    forward          input gradient     weight gradient
#   Conv2d           product(x)       adjoint(dy)        weight_grad(x, dy)
#   TransposeConv2d  adjoint(x)       product(dy)        weight_grad(dy, x)
#
# Two backends compute them with the same signatures: ``_Gemms``, chunked GEMMs over
# channels-last patch matrices, and ``_TorchBits``, PyTorch's own products for one small
# image; ``_backend`` chooses, once per layer call. What each device's cache and BLAS favour
# is one ``Tuning`` record, ``tuning(device)``.


@dataclass(frozen=True)
class Geometry:
    """Where a convolution's kernel reads: ``kernel``, ``stride``, ``padding`` and
    ``dilation``, each an (h, w) pair, passed to the core as one value."""
    kernel: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)

    def output_size(self, h, w):
        """(Ho, Wo) of the convolution of an h x w input (below 1 if the kernel does not fit)."""
        return tuple((size + 2 * p - d * (k - 1) - 1) // s + 1 for size, k, s, p, d in zip(
            (h, w), self.kernel, self.stride, self.padding, self.dilation))

    def transposed_size(self, h, w, output_padding=(0, 0)):
        """(H, W) of the transposed convolution of an h x w input: the smallest input that
        the convolution maps to h x w, plus ``output_padding``."""
        return tuple((size - 1) * s - 2 * p + d * (k - 1) + extra + 1
                     for size, k, s, p, d, extra in zip((h, w), self.kernel, self.stride,
                                                        self.padding, self.dilation,
                                                        output_padding))

    def flipped(self):
        """At stride 1 the adjoint is the convolution of dY with the flipped kernel, padded
        by the kernel's reach minus the padding: that geometry, or None where it does not
        apply (a stride above 1, or padding beyond the reach)."""
        reach = [d * (k - 1) for k, d in zip(self.kernel, self.dilation)]
        if self.stride != (1, 1) or any(p > r for p, r in zip(self.padding, reach)):
            return None
        return Geometry(self.kernel, (1, 1), tuple(r - p for r, p in zip(reach, self.padding)),
                        self.dilation)

    def unfold_arguments(self):
        return dict(kernel_size=self.kernel, dilation=self.dilation, padding=self.padding,
                    stride=self.stride)


@dataclass(frozen=True)
class Tuning:
    """How the layers cut and lay out their work on one kind of device: ``tuning(device)``.
    Each field carries its reason; what was measured for each value is in CHANGELOG.md."""

    # Bytes of patch matrix copied and multiplied at a time (None: the whole batch): a
    # chunk then stays in cache between its im2col copy and its GEMMs.
    chunk_bytes: int
    # Output channels (lowest, highest) of the narrow convolutions whose patch-matrix rows
    # compute two neighbouring pixels (None: never; see ``_pixels_per_row``): a GEMM twice as
    # wide runs enough faster per multiply-add to pay for the third more multiply-adds.
    paired_channels: tuple
    # Convolutions with at most this many output channels write their GEMM's output
    # column-major: a BLAS writes a few long columns faster than many short rows.
    column_major_channels: int
    # Stride-1 convolutions with at most this many output channels multiply the input by
    # every tap's weight first and sum shifted slices (``_taps_first_rows``): their patch
    # matrix would be copied to feed a GEMM a few columns wide.
    taps_first_channels: int
    # Zero-padded copies of at most this many values are zeroed whole, then their interior
    # copied in; larger ones at their borders only: small ones are in cache, where writing
    # the interior twice is cheaper than N*H short border runs, and large ones are often
    # fresh memory, cheaper to touch once.
    whole_padding_values: float
    # Bias gradients join the rows of the output gradient into rows of about this many
    # values before summing down them: a reduction down a narrow matrix is slow.
    column_sum_width: int
    # A forward-only LeakyReLU runs through its tensor in parts of this many values (None:
    # whole), so that the product a*x of each part is still in cache when it is read.
    activation_part_values: int
    # One channel-first image of at most this many values (after upsampling) gets PyTorch's
    # own products (``_TorchBits``): ATen computes such an image with one GEMM per product,
    # and hands larger ones to oneDNN, whose bits no GEMM of ours reproduces.
    torch_bits_values: int
    # Forward only, stride-1 convolutions of at least this many input channels, whose input
    # padded has at most ``shifted_rows_overhead`` times the output's pixels, take
    # ``_shifted_rows``: no patch matrix, a GEMM per tap, a little more arithmetic on the
    # padded grid. With fewer channels each tap's GEMM is too thin to pay.
    shifted_rows_channels: int
    shifted_rows_overhead: float
    # ``Denoiser.predict``'s default tile side: a tile also computes its margins, 1.56x its
    # pixels at 512 and 1.27x at 1024, whose widest activation (48 channels of 1152 x 1152
    # pixels) holds 250 MB.
    predict_tile: int


# On a CPU: chunks of 2 MiB, so that each of two GEMM threads reads its half from its own
# core's L2 cache (1 MiB or more); pairs for 9 to 24 output channels, where MKL's GEMMs ran
# 48 columns clearly faster per multiply-add than 24; column-major output up to 8 channels;
# padding zeroed whole up to 4 MiB in float32; parts of 1 MiB for the activation.
_CPU = Tuning(chunk_bytes=2 << 20, paired_channels=(9, 24), column_major_channels=8,
              taps_first_channels=8,
              whole_padding_values=1 << 20, column_sum_width=512,
              activation_part_values=1 << 18, torch_bits_values=20480,
              shifted_rows_channels=8, shifted_rows_overhead=1.3, predict_tile=1024)
# Elsewhere (a GPU) a chunk or a part is one more kernel launch and no cache would hold it,
# and pairs and border-only padding are unmeasured, so off; the rest as on a CPU.
_ELSEWHERE = Tuning(chunk_bytes=None, paired_channels=None, column_major_channels=8,
                    taps_first_channels=8,
                    whole_padding_values=math.inf, column_sum_width=512,
                    activation_part_values=None, torch_bits_values=20480,
                    shifted_rows_channels=8, shifted_rows_overhead=1.3, predict_tile=1024)


def tuning(device):
    """The ``Tuning`` the layers read for tensors on ``device``."""
    return _CPU if device.type == 'cpu' else _ELSEWHERE


def _backend(image, scale=1):
    """The backend of the products for a layer called on ``image`` (upsampled by ``scale``
    before its convolution): ``_TorchBits`` for one channel-first image small enough that
    PyTorch computes it with one GEMM per product (``Tuning.torch_bits_values``), else
    ``_Gemms``. The one place that decides: a layer asks once per forward and once per
    backward, of the same image, so both passes take the same backend."""
    one_small_image = (image.shape[0] == 1 and not _is_channels_last(image) and
                       image.numel() * scale ** 2 <= tuning(image.device).torch_bits_values)
    return _TORCH_BITS if one_small_image else _GEMMS


class _Backend:
    """The three products, each on (N, C, H, W) images of any strides, returning an image:

    - ``product(x, weight, bias, g, epilogue=None, forward_only=False)``: conv(x, W) + b,
      then ``epilogue`` (an in-place element-wise function, a fused activation) on each
      chunk while in cache; ``forward_only``: no backward will read the output, which may
      then be a view with gaps;
    - ``adjoint(dy, weight, bias, size, g)``: col2im(dY W) + b, of spatial ``size``;
    - ``weight_grad(x, dy, weight_grad, g)``: dW += dY^T X, into ``weight_grad``, shaped as W;

    and ``gradients``, a convolution's backward pass, which a backend may compute in fewer
    passes than its two products."""

    def gradients(self, x, dy, weight, weight_grad, g, input_grad=True):
        """dW += dY^T X, and the adjoint of dY (the input gradient) when ``input_grad``."""
        self.weight_grad(x, dy, weight_grad, g)
        return self.adjoint(dy, weight, None, x.shape[2:], g) if input_grad else None


# -- The products as chunked GEMMs, pixel-major --------------------------------------------
# Rows of the patch matrix are output pixels, so Y = X W^T + b is the output in
# channels-last memory, returned as an (N, C, H, W) view; every module accepts any strides.
# On a CPU a batch is processed a few images (or, for a large image, a band of rows) at a
# time, so that a chunk's patch matrix stays in cache between its copy and its GEMMs.

class _Gemms(_Backend):

    def product(self, x, weight, bias, g, epilogue=None, forward_only=False):
        n, c, h, w = x.shape
        ho, wo = g.output_size(h, w)
        settings = tuning(x.device)
        if g.stride == (1, 1) and weight.shape[0] <= settings.taps_first_channels:
            return _image_view(_taps_first_rows(x, weight, bias, g, epilogue), n, ho, wo)
        padded_pixels = (h + 2 * g.padding[0]) * (w + 2 * g.padding[1])
        if (forward_only and g.stride == (1, 1) and c >= settings.shifted_rows_channels
                and padded_pixels <= settings.shifted_rows_overhead * ho * wo):
            return _shifted_rows(x, weight, bias, g, epilogue)
        pixels = _pixels_per_row(weight.shape[0], wo, g, x.device)
        return _image_view(_product_rows(x, weight, bias, g, pixels, epilogue=epilogue),
                           n, ho, wo)

    def adjoint(self, dy, weight, bias, size, g):
        """At stride 1, the convolution of dY with the flipped kernel: one im2col and one GEMM
        instead of kh*kw strided adds."""
        flipped = g.flipped()
        if flipped is not None:
            return self.product(dy, _flipped_kernel(weight), bias, flipped)
        n, _, ho, wo = dy.shape
        c, (h, w) = weight.shape[1], size
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = g.kernel, g.stride, g.padding, g.dilation
        image = dy.new_zeros(n, h + 2 * ph, w + 2 * pw, c)
        rows, matrix = _pixel_major(dy), _weight_matrix(weight).t()
        for block in _blocks(n, ho, wo, matrix.shape[1] * matrix.element_size(), dy.device):
            first, end, first_row, end_row = block
            windows = rows[_pixel_rows(block, ho, wo)].mm(matrix).view(
                end - first, end_row - first_row, wo, kh, kw, c)
            target = image[first:end, sh * first_row:]
            for i in range(kh):  # col2im: kh*kw strided adds over the whole chunk
                for j in range(kw):
                    target[:, i * dh:i * dh + sh * (end_row - first_row - 1) + 1:sh,
                              j * dw:j * dw + sw * (wo - 1) + 1:sw] += windows[:, :, :, i, j]
        y = image[:, ph:ph + h, pw:pw + w].permute(0, 3, 1, 2)
        if bias is not None:
            y += bias.view(1, -1, 1, 1)
        return y

    def weight_grad(self, x, dy, weight_grad, g):
        channels_last = _is_channels_last(x)
        rows = _pixel_major(dy)
        total = rows.new_zeros(weight_grad[0].numel(), rows.shape[1])
        for span, patches in _patch_matrices(_windows(x, g, channels_last)):
            total.addmm_(patches.t(), rows[span])
        if channels_last:  # patches in (i, j, c) order
            weight_grad += total.view(*g.kernel, x.shape[1], -1).permute(3, 2, 0, 1)
        else:
            weight_grad += total.t().view(weight_grad.shape)

    def gradients(self, x, dy, weight, weight_grad, g, input_grad=True):
        """At stride 1, the patch matrix P of dY that the adjoint is computed from (rows:
        input pixels; columns: flipped taps and output channels) gives the weight gradient
        too, dW[o, c, i, j] = (X^T P)[c, (kh-1-i, kw-1-j, o)], so x needs no patch matrix."""
        flipped = g.flipped()
        if not input_grad or flipped is None:
            return super().gradients(x, dy, weight, weight_grad, g, input_grad)
        n, c, h, w = x.shape
        (kh, kw), o = g.kernel, dy.shape[1]
        x_rows = _pixel_major(x)
        total = dy.new_zeros(c, kh * kw * o)

        def accumulate(span, patches):
            total.addmm_(x_rows[span].t(), patches)
        # One pixel per row, so that X^T P lines up input pixels with patch rows.
        dx = _product_rows(dy, _flipped_kernel(weight), None, flipped, 1, accumulate)
        weight_grad += total.view(c, kh, kw, o).permute(3, 0, 1, 2).flip(2, 3)
        return _image_view(dx, n, h, w)


def _product_rows(x, weight, bias, g, pixels, each_chunk=None, epilogue=None):
    """Y = X W^T + b for the (O, C, kh, kw) ``weight``, as an (N*Ho*Wo, O) matrix, from
    patch matrices whose rows hold ``pixels`` neighbouring output pixels each (see
    ``_pixels_per_row``). ``each_chunk(span, patches)``, if given, is also called on each
    chunk's patch matrix while it is in cache (``span``: the slice of Y's rows it computes);
    ``epilogue``, an in-place element-wise function, on each chunk of Y after its bias."""
    o = weight.shape[0]
    windows = _windows(x, g, True, pixels)
    rows = windows.shape[0] * windows.shape[1] * windows.shape[2]
    weight = _weight_matrix(weight, pixels)
    if pixels == 1 and o <= tuning(x.device).column_major_channels:
        out = x.new_empty(o, rows).t()
    else:
        out = x.new_empty(rows, pixels * o)
    if bias is not None and pixels > 1:  # one bias per pixel of a row
        bias = bias.repeat(pixels)
    for span, patches in _patch_matrices(windows):
        chunk = out[span]
        chunk.addmm_(patches, weight, beta=0)
        if bias is not None:  # added in cache, not copied in before the GEMM
            chunk.add_(bias)
        if epilogue is not None:
            epilogue(chunk)
        if each_chunk is not None:
            each_chunk(span, patches)
    return out.view(-1, o)


def _taps_first_rows(x, weight, bias, g, epilogue=None):
    """Y = conv(x, W) + b at stride 1, as an (N*Ho*Wo, O) matrix, for a narrow output: first
    Z = X [W_00 ... W_ij ...], one GEMM of the input's pixel rows by every tap's (C, O)
    weight, then Y = b + the kh*kw slices of Z shifted by their taps. A patch matrix would
    copy kh*kw*C values per output pixel to feed a GEMM only O columns wide; here the GEMM
    is kh*kw*O wide and nothing is copied but Z's slices, a chunk at a time (``_blocks``)
    while they are in cache. Zero padding is the slices' bounds: a tap that falls outside
    the input adds nothing there. ``epilogue`` as in ``_product_rows``."""
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    ho, wo = g.output_size(h, w)
    (ph, pw), (dh, dw) = g.padding, g.dilation
    taps = weight.permute(1, 2, 3, 0).reshape(c, kh * kw * o)          # (c, (i, j, o))
    pixels = x.permute(0, 2, 3, 1)
    out = x.new_empty(n, ho, wo, o)
    row_bytes = kh * kw * o * x.element_size()
    for first, end, top, bottom in _blocks(n, ho, wo, row_bytes, x.device):
        # the input rows that output rows [top, bottom) read
        low = max(top - ph, 0)
        high = max(low, min(bottom - ph + dh * (kh - 1), h))  # none: all padding
        z = pixels[first:end, low:high].reshape(-1, c).mm(taps).view(
            end - first, high - low, w, kh, kw, o)
        target = out[first:end, top:bottom]
        if bias is None:
            target.zero_()
        else:
            target.copy_(bias.expand_as(target))
        for i in range(kh):
            # output rows whose tap i reads an input row in [low, high)
            y0 = max(top, low + ph - i * dh)
            y1 = min(bottom, high + ph - i * dh)
            for j in range(kw):
                x0, x1 = max(0, pw - j * dw), min(wo, w + pw - j * dw)
                if y0 < y1 and x0 < x1:
                    target[:, y0 - top:y1 - top, x0:x1] += z[
                        :, y0 - ph + i * dh - low:y1 - ph + i * dh - low,
                        x0 - pw + j * dw:x1 - pw + j * dw, i, j]
        if epilogue is not None:
            epilogue(target)
    return out.view(-1, o)


def _shifted_rows(x, weight, bias, g, epilogue=None):
    """Y = conv(x, W) + b at stride 1 with no patch matrix, as an (N, C, Ho, Wo) view of an
    (N, Hp, Wp, O) tensor, Hp x Wp the zero-padded input's size. On the padded input as an
    (N*Hp*Wp, C) matrix, output pixel (y, x) of image n reads tap (i, j) at row n*Hp*Wp +
    (y + i*dh)*Wp + x + j*dw: for a run of output rows, each tap is one GEMM of a run of
    input rows shifted by the tap's offset, accumulated. The output is computed on the
    padded grid, whose extra rows and columns (a fraction of a large image, 13% of a 32x32
    one) are left out of the returned view. A chunk of rows (``Tuning.chunk_bytes`` of
    input and output) is done with all its taps, its bias and ``epilogue`` while in cache."""
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    ho, wo = g.output_size(h, w)
    (ph, pw), (dh, dw) = g.padding, g.dilation
    padded = _zero_padded(x.permute(0, 2, 3, 1), ph, pw)
    hp, wp = padded.shape[1:3]
    rows = padded.view(-1, c)
    taps = weight.permute(2, 3, 1, 0).contiguous()  # each tap's (C, O) matrix in one piece
    out = x.new_empty(n, hp, wp, o)
    out_rows = out.view(-1, o)
    end = (n - 1) * hp * wp + (ho - 1) * wp + wo  # after the last pixel of the last image
    budget = tuning(x.device).chunk_bytes
    step = end if budget is None else max(1, budget // ((c + o) * x.element_size()))
    for first in range(0, end, step):
        last = min(first + step, end)
        target = out_rows[first:last]
        for t in range(kh * kw):
            i, j = divmod(t, kw)
            offset = i * dh * wp + j * dw
            target.addmm_(rows[first + offset:last + offset], taps[i, j],
                          beta=0 if t == 0 else 1)
        if bias is not None:
            target.add_(bias)
        if epilogue is not None:
            epilogue(target)
    return out[:, :ho, :wo].permute(0, 3, 1, 2)


def _blocks(n, ho, wo, row_bytes, device):
    """(first image, end image, first row, end row) of each chunk of output pixels whose
    rows of ``row_bytes`` (of patch matrix) make about ``Tuning.chunk_bytes``: whole images
    while they are small, bands of rows of one image when it is large. The chunk's pixels
    are rows [(first * ho + first_row) * wo, ((end - 1) * ho + end_row) * wo) of the
    (N*Ho*Wo, ...) matrices."""
    budget = tuning(device).chunk_bytes
    rows = n * ho * wo if budget is None else max(1, budget // row_bytes)
    if ho * wo > rows:
        band = max(1, rows // wo)
        return [(i, i + 1, r, min(r + band, ho)) for i in range(n) for r in range(0, ho, band)]
    step = rows // (ho * wo)
    return [(i, min(i + step, n), 0, ho) for i in range(0, n, step)]


def _pixel_rows(block, ho, wo):
    first, end, first_row, end_row = block
    return slice((first * ho + first_row) * wo, ((end - 1) * ho + end_row) * wo)


def _is_channels_last(x):
    return x.stride(1) < x.stride(3)


def _zero_padded(image, ph, pw):
    """(N, H, W, C) -> a new (N, H+2ph, W+2pw, C) tensor with zero borders: zeroed whole or
    at its borders only (``Tuning.whole_padding_values``), then the interior copied in."""
    n, h, w, c = image.shape
    if image.numel() <= tuning(image.device).whole_padding_values:
        out = image.new_zeros(n, h + 2 * ph, w + 2 * pw, c)
    else:
        out = image.new_empty(n, h + 2 * ph, w + 2 * pw, c)
        for border in (out[:, :ph], out[:, ph + h:], out[:, ph:ph + h, :pw],
                       out[:, ph:ph + h, pw + w:]):
            border.zero_()
    out[:, ph:ph + h, pw:pw + w] = image
    return out


def _windows(x, g, channels_last, pixels=1):
    """(N, C, H, W) tensor of any strides -> the (N, Ho, Wo/pixels, patch) strided view whose
    rows, reshaped, are the patch matrix: one copy per chunk makes a chunk's patch matrix.

    Patches are ordered (i, j, c) for channels-last input, so the copy moves contiguous runs
    of kw*C values; (c, i, j), unfold's order, for channel-first input. With ``pixels``
    > 1 (channels-last, stride and dilation 1 across; see ``_pixels_per_row``) a row is the
    window of that many neighbouring output pixels: kw + pixels - 1 columns.
    """
    n, c, h, w = x.shape
    ho, wo = g.output_size(h, w)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = g.kernel, g.stride, g.padding, g.dilation
    source = x.permute(0, 2, 3, 1)
    if ph or pw:
        source = _zero_padded(source, ph, pw)
    s_n, s_h, s_w, s_c = source.stride()
    if channels_last:
        shape = (n, ho, wo // pixels, kh, kw + pixels - 1, c)
        strides = (s_n, sh * s_h, pixels * sw * s_w, dh * s_h, dw * s_w, s_c)
    else:
        shape, strides = (n, ho, wo, c, kh, kw), (s_n, sh * s_h, sw * s_w, s_c, dh * s_h, dw * s_w)
    return source.as_strided(shape, strides, source.storage_offset())


def _pixels_per_row(out_channels, wo, g, device):
    """How many neighbouring output pixels one row of the patch matrix computes: 2 for a
    narrow layer (``Tuning.paired_channels``) with kw >= 3, stride and dilation 1 across and
    an even output width, else 1.

    A pair's window is kw + 1 columns wide and its weight matrix has 2*O columns, zero
    where a tap misses its pixel: a third more multiply-adds for kw = 3, in a GEMM twice as
    wide, over a patch matrix a third smaller; and (N*Ho*Wo/2, 2*O) rows are the
    (N*Ho*Wo, O) output in the same memory."""
    paired = tuning(device).paired_channels
    narrow = paired is not None and paired[0] <= out_channels <= paired[1]
    single_steps = g.stride[1] == g.dilation[1] == 1
    return 2 if narrow and g.kernel[1] >= 3 and single_steps and wo % 2 == 0 else 1


def _patch_matrices(windows):
    """(span, patches) for each chunk (see ``_blocks``) of the patch matrix that ``windows``
    describes: ``patches`` is the chunk's patch matrix, made in one copy, and ``span`` the
    slice of the (N*Ho*Wo, ...) matrices' rows it covers. Every chunk is copied into the
    same buffer, which stays in cache, where a new tensor per chunk would not."""
    n, ho, wo = windows.shape[:3]
    width = windows[0, 0, 0].numel()
    blocks = _blocks(n, ho, wo, width * windows.element_size(), windows.device)
    chunks = [windows[first:end, first_row:end_row] for first, end, first_row, end_row in blocks]
    buffer = windows.new_empty(max(chunk.numel() for chunk in chunks))
    for block, chunk in zip(blocks, chunks):
        patches = buffer[:chunk.numel()].view(chunk.shape).copy_(chunk)
        yield _pixel_rows(block, ho, wo), patches.view(-1, width)


def _weight_matrix(weight, pixels=1):
    """(O, C, kh, kw) weight -> (kh*kw*C, O) matrix, rows in channels-last patches' order;
    with ``pixels`` > 1, the (kh*(kw+pixels-1)*C, pixels*O) matrix of ``_windows``' wider rows:
    column block t holds the weight shifted right by t taps, zeros elsewhere.

    Otherwise the transposed view of a (O, kh*kw*C) matrix: a BLAS multiplies by a narrow
    row-major matrix slowly, by a wide one no faster than by this view, and the view is free
    when the weight is laid out so (see ``_flipped_kernel``)."""
    o, c, kh, kw = weight.shape
    if pixels > 1:
        wide = weight.new_zeros(kh, kw + pixels - 1, c, pixels, o)
        taps = weight.permute(2, 3, 1, 0)
        for t in range(pixels):
            wide[:, t:t + kw, :, t] = taps
        return wide.view(-1, pixels * o)
    return weight.permute(0, 2, 3, 1).reshape(o, -1).t()


def _flipped_kernel(weight):
    """(O, C, kh, kw) -> the (C, O, kh, kw) kernel flipped in both axes, of the adjoint as a
    convolution (``Geometry.flipped``): dx[y, x] = sum_ij W[:, :, i, j]^T dY[y + p - i*d,
    x + p - j*d]. Made (C, kh, kw, O) in memory in one copy, so its weight matrix is a view."""
    return weight.permute(1, 2, 3, 0).flip(1, 2).permute(0, 3, 1, 2)


# -- The products as PyTorch computes one small image ----------------------------------------
# The course checks its modules on one image (3x32x32) against F.conv2d and its kin. On a
# CPU, PyTorch computes such an image with one GEMM per product (ATen's slow_conv2d and
# slow_conv_transpose2d: im2col, then W X^T started from the bias, or col2im); unfold and
# fold as im2col and col2im make the same GEMMs and get the same bits. ``_Gemms``' products
# (X W^T, the bias added after) differ in the last bits, which near zero can exceed
# torch.allclose's default tolerance. These products take one image (N = 1) only.

class _TorchBits(_Backend):

    def product(self, x, weight, bias, g, epilogue=None, forward_only=False):
        """(O, Ho*Wo) = W unfold(x), started from the bias."""
        patches = unfold(x, **g.unfold_arguments())[0]
        out = x.new_empty(weight.shape[0], patches.shape[1])
        if bias is not None:
            out.copy_(bias.view(-1, 1).expand_as(out))
        out.addmm_(weight.reshape(weight.shape[0], -1), patches, beta=0 if bias is None else 1)
        if epilogue is not None:
            epilogue(out)
        return out.view(1, -1, *g.output_size(*x.shape[2:]))

    def adjoint(self, dy, weight, bias, size, g):
        """fold(W^T dY), then the bias."""
        columns = weight.reshape(weight.shape[0], -1).t().mm(_channel_rows(dy))
        y = fold(columns.unsqueeze(0), size, **g.unfold_arguments())
        if bias is not None:
            y += bias.view(1, -1, 1, 1)
        return y

    def weight_grad(self, x, dy, weight_grad, g):
        """dY unfold(x)^T."""
        patches = unfold(x, **g.unfold_arguments())[0]
        rows = _channel_rows(dy)
        weight_grad += x.new_zeros(rows.shape[0], patches.shape[0]).addmm_(
            rows, patches.t()).view_as(weight_grad)


def _channel_rows(image):
    """(1, C, H, W) image -> (C, H*W) matrix, contiguous, as ATen hands it to its GEMMs."""
    return image[0].reshape(image.shape[1], -1).contiguous()


_GEMMS, _TORCH_BITS = _Gemms(), _TorchBits()


def _channel_sums(x):
    """(N, C, H, W) -> (C,): the sum over images and pixels, a bias's gradient 1^T dY. Torch
    sums a channels-last x, a narrow (N*H*W, C) row-major matrix, down its rows slowly, so
    rows are first joined k at a time into rows of about ``Tuning.column_sum_width`` values,
    and the k partial sums folded."""
    pixel_rows = x.permute(0, 2, 3, 1)
    if not pixel_rows.is_contiguous():  # not channels-last
        return x.sum((0, 2, 3))
    matrix = pixel_rows.reshape(-1, x.shape[1])
    rows, columns = matrix.shape
    k = max(1, tuning(x.device).column_sum_width // columns)
    while rows % k:
        k -= 1
    return matrix.view(rows // k, k * columns).sum(0).view(k, columns).sum(0)


def _pixel_major(x):
    """(N, C, H, W) -> (N*H*W, C) matrix; free when x is channels-last in memory."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _image_view(matrix, n, h, w):
    """(N*H*W, C) matrix, or (N, H*W, C) tensor of any strides, -> (N, C, H, W) view of the
    same memory."""
    return matrix.view(n, h, w, -1).permute(0, 3, 1, 2)


def _in_channels_last(x):
    """(N, C, H, W) -> the same values channels-last in memory: a view when they already are."""
    n, _, h, w = x.shape
    return _image_view(_pixel_major(x), n, h, w)


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------

class _ConvBase(Module):
    """What the layers with a convolution share: geometry, parameters, initialisation.
    ``transposed``: the weight is (in, out, kh, kw), as torch.nn's ConvTranspose2d's.

    Their ``forward(input, *, epilogue=None)`` takes, when running forward only, an in-place
    element-wise function that the core applies to the output a chunk at a time while it
    is in cache: ``Sequential`` fuses a following in-place activation so."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 bias, init, transposed=False):
        super().__init__()
        name = type(self).__name__
        self.in_channels = _int_argument(name, 'in_channels', in_channels)
        self.out_channels = _int_argument(name, 'out_channels', out_channels)
        self.geometry = Geometry(*(_int_argument(name, argument, value, lowest, pair=True)
                                   for argument, value, lowest in (
                                       ('kernel_size', kernel_size, 1), ('stride', stride, 1),
                                       ('padding', padding, 0), ('dilation', dilation, 1))))
        channels = (in_channels, out_channels) if transposed else (out_channels, in_channels)
        self.register_parameter('weight', empty(*channels, *self.kernel_size))
        if bias:
            self.register_parameter('bias', empty(out_channels))
        else:
            self.bias = None
        self.reset_parameters(init)

    # torch.nn's names for the geometry
    kernel_size = property(lambda self: self.geometry.kernel)
    stride = property(lambda self: self.geometry.stride)
    padding = property(lambda self: self.geometry.padding)
    dilation = property(lambda self: self.geometry.dilation)

    def reset_parameters(self, init='pytorch'):
        """'pytorch': U(+-1/sqrt(fan_in)) as torch.nn's default (kaiming_uniform, a=sqrt(5));
        'xavier': N(0, 2/(fan_in+fan_out)); 'kaiming': N(0, 2/fan_in). Biases as PyTorch's.
        The fans come from the weight's shape, as in torch.nn: weight.shape[1] (resp. [0])
        times the kernel's area."""
        fan_in = self.weight[0].numel()
        fan_out = self.weight.shape[0] * self.weight[0, 0].numel()
        bound = 1 / math.sqrt(fan_in)
        if init == 'pytorch':
            self.weight.uniform_(-bound, bound)
        elif init == 'xavier':
            self.weight.normal_(0, math.sqrt(2 / (fan_in + fan_out)))
        elif init == 'kaiming':
            self.weight.normal_(0, math.sqrt(2 / fan_in))
        else:
            raise ValueError(f"init must be 'pytorch', 'xavier' or 'kaiming', got {init!r}")
        if self.bias is not None:
            self.bias.uniform_(-bound, bound)
        self.zero_grad()

    def extra_repr(self):
        text = (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}')
        if self.padding != (0, 0):
            text += f', padding={self.padding}'
        if self.dilation != (1, 1):
            text += f', dilation={self.dilation}'
        return text + ('' if self.bias is not None else ', bias=False')

    def _accumulate_bias_grad(self, dy):
        """db += 1^T dY: each output channel's gradient summed over images and pixels."""
        if self.bias is not None:
            self._parameters['bias'].grad += _channel_sums(dy)


class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation), like torch.nn.Conv2d: the patch product.

    forward:  y = X W^T + b, with X = im2col(x) the (N*Ho*Wo, C*kh*kw) patch matrix.
    backward: dW += dY^T X,  db += 1^T dY,  dx = col2im(dY W), the adjoint.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, *, init='pytorch'):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias,
                         init)

    def forward(self, input, *, epilogue=None):
        x, unbatched = self._batched_input(input, self.in_channels, self.weight.dtype)
        self._output_size(input.shape, *self.geometry.output_size(*x.shape[2:]))  # fits?
        y = _backend(x).product(x, self.weight, self.bias, self.geometry, epilogue,
                                not self.requires_backward)
        self._saved = (x, y.shape, unbatched)
        return self._unbatch(y, unbatched)

    def backward(self, gradwrtoutput):
        x, out_shape, unbatched = self._saved_or_fail()
        dy = _in_channels_last(self._batched_grad(gradwrtoutput, out_shape, unbatched))
        self._accumulate_bias_grad(dy)
        dx = _backend(x).gradients(x, dy, self.weight, self._parameters['weight'].grad,
                                   self.geometry, self.compute_input_grad)
        return self._unbatch(dx, unbatched)


class TransposeConv2d(_ConvBase):
    """Transposed convolution, like torch.nn.ConvTranspose2d: the adjoint of Conv2d, so the
    same three products with the roles of input and output swapped.

    forward:  y = col2im(x W) + b, with x as an (N*H*W, C_in) matrix and W (C_in, C_out*kh*kw).
    backward: dx = im2col(dy) W^T,  dW += x^T im2col(dy),  db += 1^T dy.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, dilation=1, bias=True, *, init='pytorch'):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias,
                         init, transposed=True)
        self.output_padding = _int_argument('TransposeConv2d', 'output_padding', output_padding,
                                            lowest=0, pair=True)
        # torch.nn also accepts stride <= output_padding < dilation; those extra rows lie
        # beyond every kernel's reach, a corner case this layer refuses rather than pads.
        if any(op >= s for op, s in zip(self.output_padding, self.stride)):
            raise ValueError(f'TransposeConv2d: output_padding must be >= 0 and smaller than '
                             f'stride, got output_padding={self.output_padding}, '
                             f'stride={self.stride}')

    def extra_repr(self):
        text = super().extra_repr().replace(', bias=False', '')  # torch.nn's order
        return (text + (f', output_padding={self.output_padding}'
                        if self.output_padding != (0, 0) else '')
                + ('' if self.bias is not None else ', bias=False'))

    def forward(self, input, *, epilogue=None):
        x, unbatched = self._batched_input(input, self.in_channels, self.weight.dtype)
        size = self._output_size(input.shape, *self.geometry.transposed_size(
            *x.shape[2:], self.output_padding))
        if self.geometry.output_size(*size) != tuple(x.shape[2:]):
            self._fail(f'input of shape {tuple(input.shape)} is too small for padding '
                       f'{self.padding} ({self.extra_repr()})')
        y = _backend(x).adjoint(x, self.weight, self.bias, size, self.geometry)
        if epilogue is not None:  # col2im adds into the whole output: nothing to fuse
            epilogue(y)
        self._saved = (x, y.shape, unbatched)
        return self._unbatch(y, unbatched)

    def backward(self, gradwrtoutput):
        x, out_shape, unbatched = self._saved_or_fail()
        dy = self._batched_grad(gradwrtoutput, out_shape, unbatched)
        backend = _backend(x)
        backend.weight_grad(dy, x, self._parameters['weight'].grad, self.geometry)
        self._accumulate_bias_grad(dy)
        if not self.compute_input_grad:
            return None
        return self._unbatch(backend.product(dy, self.weight, None, self.geometry), unbatched)


class NearestUpsampling(Module):
    """Nearest-neighbour upsampling by an integer factor; backward sums each s x s block."""

    def __init__(self, scale_factor=2):
        super().__init__()
        self.scale_factor = _int_argument('NearestUpsampling', 'scale_factor', scale_factor)

    def extra_repr(self):
        return f'scale_factor={self.scale_factor}'

    def forward(self, input):
        self._check_floating(input)
        if input.dim() not in (3, 4):
            self._fail(f'expected a (N, C, H, W) batch or a (C, H, W) image, '
                       f'got shape {tuple(input.shape)}')
        s = self.scale_factor
        *lead, h, w = input.shape
        y = input.unsqueeze(-1).unsqueeze(-3).expand(*lead, h, s, w, s)
        self._saved = tuple(input.shape)
        return y.reshape(*lead, h * s, w * s)

    def backward(self, gradwrtoutput):
        in_shape = self._saved_or_fail()
        s = self.scale_factor
        *lead, h, w = in_shape
        self._check_grad(gradwrtoutput, (*lead, h * s, w * s))
        blocks = gradwrtoutput.reshape(*lead, h, s, w, s)
        # Each block summed row by row, as torch's kernel does (its bits; sum() adds in
        # another order).
        offsets = [(r, t) for r in range(s) for t in range(s)]
        grad = blocks[..., 0, :, 0].clone()
        for r, t in offsets[1:]:
            grad += blocks[..., r, :, t]
        return grad


def _phase_taps(like):
    """taps[(r, p), i]: 1 where tap i of a 3x3 kernel falls in row p of the 2-tap kernel of
    output phase r, as a (4, 3) matrix in ``like``'s dtype and on its device:

        r = 0: p = 0 gets (w0), p = 1 gets (w1 + w2);  r = 1: p = 0 gets (w0 + w1), p = 1 (w2).

    After nearest x2 upsampling, output row 2a+r of a 3x3 'same' convolution reads
    upsampled rows 2a+r-1+i, which are input rows a + (r+i-1)//2: row p = (r+i+1)//2 - r of
    the window of input rows (a+r-1, a+r). Built from ``arange`` on the device: a tensor
    made from a list is copied from the host, which on a GPU waits for the queued kernels.
    """
    r, p, i = (arange(n, device=like.device).view(shape)
               for n, shape in ((2, (2, 1, 1)), (2, (1, 2, 1)), (3, (1, 1, 3))))
    return (p == (r + i + 1) // 2 - r).to(like.dtype).view(4, 3)


class Upsampling(_ConvBase):
    """Nearest-neighbour upsampling then a convolution, as nn.Sequential(nn.Upsample(
    scale_factor), nn.Conv2d(...)), whose parameters (state-dict names ``weight`` and
    ``bias``) are this layer's own.

    Fast path (scale 2, 3x3 kernel, stride 1, padding 1): the four output phases are 2x2
    convolutions of the *small* input, whose kernels are sums of the 3x3 taps. One im2col of
    the small input and one GEMM with a (4*C_out, 4*C_in) weight replace an im2col of the 4x
    larger upsampled image and 2.25x more multiply-adds. Other settings take the plain path
    (upsample, then the patch product), and so does an image that ``_backend`` gives
    PyTorch's own products: it then gets the bits of F.conv2d after F.interpolate.
    """

    _PHASE_GEOMETRY = Geometry((2, 2), padding=(1, 1))  # 2x2 windows of the padded input

    def __init__(self, in_channels, out_channels, kernel_size, scale_factor=2, stride=1,
                 padding=0, dilation=1, bias=True, *, init='pytorch'):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias,
                         init)
        self.upsample = NearestUpsampling(scale_factor)
        self.use_phases = (scale_factor == 2 and
                           self.geometry == Geometry((3, 3), padding=(1, 1)))
        self._phases = None  # see _phase_kernels

    def extra_repr(self):
        return super().extra_repr() + f', scale_factor={self.upsample.scale_factor}'

    def forward(self, input, *, epilogue=None):
        x, unbatched = self._batched_input(input, self.in_channels, self.weight.dtype)
        n, _, h, w = x.shape
        s, o = self.upsample.scale_factor, self.out_channels
        out_shape = (n, o, *self._output_size(input.shape,
                                              *self.geometry.output_size(s * h, s * w)))
        backend = _backend(x, s)
        if not self.use_phases or backend is _TORCH_BITS:
            up = self.upsample(x)
            self._saved = (x, out_shape, unbatched, up, None)
            return self._unbatch(backend.product(up, self.weight, self.bias, self.geometry,
                                                 epilogue, not self.requires_backward), unbatched)
        taps, phase_weight = self._phase_kernels()
        bias = None if self.bias is None else self.bias.repeat(4)
        # Rows (n, a, b): image and 2x2 window; columns (r, t, o): phase and channel.
        phases = _GEMMS.product(x, phase_weight, bias, self._PHASE_GEOMETRY, epilogue,
                                not self.requires_backward).permute(0, 2, 3, 1)
        self._saved = (x, out_shape, unbatched, None, (taps, phase_weight))
        y = self._interleaved(phases.view(n, h + 1, w + 1, 2, 2, o))
        return self._unbatch(_image_view(y.reshape(-1, o), n, 2 * h, 2 * w), unbatched)

    @staticmethod
    def _interleaved(phases):
        """(N, h+1, w+1, 2, 2, O) phase windows -> (N, h, 2, w, 2, O) view of the output:
        output pixel (2a+r, 2b+t) is phase (r, t) of window (a+r, b+t)."""
        n, h1, w1, _, _, o = phases.shape
        s_n, s_a, s_b, s_r, s_t, s_o = phases.stride()
        return phases.as_strided((n, h1 - 1, 2, w1 - 1, 2, o),
                                 (s_n, s_a, s_a + s_r, s_b, s_b + s_t, s_o),
                                 phases.storage_offset())

    def _phase_kernels(self):
        """(taps, phase kernels) of the current weight, built on its device and kept until
        the weight changes. Parameters change in place (an optimizer step,
        ``load_state_dict``, ``to``), so the key is the weight tensor with its version
        counter, storage, device and dtype; an inference tensor counts no versions, so its
        kernels are built on every pass."""
        weight, cached = self.weight, self._phases
        key = None if weight.is_inference() else (weight._version, weight.data_ptr(),
                                                  weight.device, weight.dtype)
        if key is None or cached is None or cached[0] is not weight or cached[1] != key:
            taps = _phase_taps(weight)
            cached = self._phases = (weight, key, taps, self._phase_weight(taps))
        return cached[2:]

    def _phase_weight(self, taps):
        """(O, C, 3, 3) weight -> (4*O, C, 2, 2) phase kernels taps[r] @ w @ taps[t]^T, as
        two batched matrix products over all channels, stored (r, t, o, p, q, c): the
        channels-last weight matrix is then a view, where products over other axes needed
        copies with scattered reads."""
        o, c = self.out_channels, self.in_channels
        by_tap = self.weight.permute(0, 2, 3, 1).reshape(o * 3, 3, c)      # (o i, j, c)
        rows = taps @ (taps @ by_tap).view(o, 3, 4 * c)                    # (o, r p, t q c)
        phases = rows.view(o, 2, 2, 2, 2, c).permute(1, 3, 0, 2, 4, 5).reshape(4 * o, 2, 2, c)
        return phases.permute(0, 3, 1, 2)

    def backward(self, gradwrtoutput):
        x, out_shape, unbatched, up, phase_kernels = self._saved_or_fail()
        dy = _in_channels_last(self._batched_grad(gradwrtoutput, out_shape, unbatched))
        weight_grad = self._parameters['weight'].grad
        self._accumulate_bias_grad(dy)
        if phase_kernels is None:  # the plain path
            dx = _backend(x, self.upsample.scale_factor).gradients(
                up, dy, self.weight, weight_grad, self.geometry, self.compute_input_grad)
            return None if dx is None else self._unbatch(self.upsample.backward(dx), unbatched)
        n, c, h, w = x.shape
        o = self.out_channels
        taps, phase_weight = phase_kernels
        # Scatter the output gradient onto the phase windows; unused windows stay zero.
        phase_grad = dy.new_zeros(n, h + 1, w + 1, 2, 2, o)
        self._interleaved(phase_grad).copy_(_pixel_major(dy).view(n, h, 2, w, 2, o))
        phase_grad = phase_grad.view(-1, 4 * o)
        # dW of the phase kernels, mapped back through the taps: sum_rt taps[r]^T dW_rt taps[t].
        grad_phase_w = x.new_zeros(4 * o, 2, 2, c).permute(0, 3, 1, 2)  # as _phase_weight
        dx = _GEMMS.gradients(x, _image_view(phase_grad, n, h + 1, w + 1), phase_weight,
                              grad_phase_w, self._PHASE_GEOMETRY, self.compute_input_grad)
        by_phase = grad_phase_w.permute(0, 2, 3, 1).reshape(2, 2, o, 2, 2, c)  # (r t o p q c)
        by_phase = by_phase.permute(2, 0, 3, 1, 4, 5).reshape(o, 4, 4 * c)    # (o, r p, t q c)
        rows = (taps.t() @ by_phase).view(o * 3, 4, c)                        # (o i, t q, c)
        grad_w = (taps.t() @ rows).view(o, 3, 3, c)                           # (o, i, j, c)
        weight_grad += grad_w.permute(0, 3, 1, 2)
        return self._unbatch(dx, unbatched)


# --------------------------------------------------------------------------------------
# Activations (element-wise: any shape)
# --------------------------------------------------------------------------------------

class _Elementwise(Module):
    """y = f(x) element-wise: ``_apply(x, slope)`` returns y and, when ``slope``, f'(x) (a
    forward-only pass skips it); backward multiplies by f'(x).

    ``inplace=True`` overwrites the input, as torch.nn's ``inplace``: for a network's own
    intermediate tensors, never for a caller's.
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self):
        return 'inplace=True' if self.inplace else ''

    def forward(self, input):
        self._check_floating(input)
        output, slope = self._apply(input, slope=self.requires_backward)
        self._saved = slope
        return output

    def backward(self, gradwrtoutput):
        slope = self._saved_or_fail()
        self._check_grad(gradwrtoutput, slope.shape)
        return gradwrtoutput * slope

    def apply_(self, x):
        """f(x) in place, keeping nothing: what a layer fuses (``_fusable``)."""
        self._check_floating(x)
        return self._apply(x, slope=False)[0]


def _flat_view(x):
    """The 1-D view of a tensor whose elements fill a block of memory in some order (any
    memory format), or None."""
    ordered = sorted(zip(x.stride(), x.shape))
    expected = 1
    for stride, size in ordered:
        if size != 1 and stride != expected:
            return None
        expected *= size
    return x.as_strided((x.numel(),), (1,), x.storage_offset())


def _step(x):
    """1 where x > 0, else 0, in x's dtype: sign and an in-place clamp, two light passes,
    where a comparison converted from bool costs several times more."""
    return x.sign().clamp_min_(0)


class ReLU(_Elementwise):
    """max(x, 0); derivative 1[x > 0], and 1 at nan, as torch (which passes the gradient
    unless the output is <= 0)."""

    def _apply(self, x, slope):
        slope = _step(x).masked_fill_(x.isnan(), 1) if slope else None
        # clamp, not x * slope: -inf * 0 would be nan where torch.relu gives 0
        return (x.clamp_min_(0) if self.inplace else x.clamp_min(0)), slope


class LeakyReLU(_Elementwise):
    """x if x > 0 else a*x; derivative 1 or a."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__(inplace)
        self.negative_slope = negative_slope

    def extra_repr(self):
        return f'negative_slope={self.negative_slope}' + (', inplace=True' if self.inplace else '')

    def _apply(self, x, slope):
        a = self.negative_slope
        if not slope:
            # max(x, a x) for a <= 1, else min: two passes instead of five, over parts
            # (Tuning.activation_part_values) whose product a x stays in cache; as one
            # product the size of a large image's activation, it would be fresh memory.
            output = x if self.inplace else x.clone()
            part_values = tuning(output.device).activation_part_values
            flat = None if part_values is None else _flat_view(output)
            for part in ([output] if flat is None else flat.split(part_values)):
                if a <= 1:
                    part.clamp_min_(part * a)
                else:
                    part.clamp_max_(part * a)
            return output, None
        if 0 <= a <= 1:  # sign(x) is -1, 0 or 1: clamped to [a, 1], the slope in two passes
            slope = x.sign().clamp_(a, 1)
        else:
            slope = _step(x).mul_(1 - a).add_(a)
        return (x.mul_(slope) if self.inplace else x * slope), slope


class ELU(_Elementwise):
    """x if x > 0 else a*(e^x - 1); derivative 1 or a*e^x."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__(inplace)
        self.alpha = alpha

    def extra_repr(self):
        return f'alpha={self.alpha}' + (', inplace=True' if self.inplace else '')

    def _apply(self, x, slope):
        negative = x.clamp_max(0)
        # a*e^x, or 1 where x > 0 (nan counts as positive, as in torch's backward)
        slope = (negative.exp().mul_(self.alpha).masked_fill_(x.le(0).logical_not_(), 1)
                 if slope else None)
        # a*(e^x - 1) through expm1, as torch: exact near 0, where a*e^x - a loses digits
        negative_part = negative.expm1_().mul_(self.alpha)
        output = x.clamp_(min=0) if self.inplace else x.clamp_min(0)
        return output.add_(negative_part), slope


class Sigmoid(_Elementwise):
    """1 / (1 + e^-x), evaluated through e^-|x| so it never overflows; derivative s(1 - s)."""

    def _apply(self, x, slope):
        e = (-x.abs()).exp()
        s = (x >= 0).to(x.dtype).mul_(1 - e).add_(e).div_(1 + e)   # 1/(1+e) or e/(1+e)
        output = x.copy_(s) if self.inplace else s
        return output, (s * (1 - s) if slope else None)


# --------------------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------------------

class MSE(Module):
    """Mean squared error, like torch.nn.MSELoss(): mean((p - t)^2); d/dp = 2 (p - t) / n."""

    def forward(self, prediction, target):
        self._check_floating(prediction, 'prediction')
        self._check_floating(target, 'target')
        if prediction.shape != target.shape:
            self._fail(f'prediction {tuple(prediction.shape)} and target {tuple(target.shape)} '
                       f'must have the same shape (no broadcasting)')
        if prediction.numel() == 0:
            self._fail('empty prediction')
        difference = prediction - target
        self._saved = difference
        return difference.pow(2).mean()

    def backward(self, gradwrtoutput=None):
        difference = self._saved_or_fail()
        return difference * self._scale(gradwrtoutput, difference.numel())

    def _scale(self, gradwrtoutput, n):
        """2 g / n: the difference's factor in the gradient (g: the loss's gradient)."""
        scale = 2 / n
        if gradwrtoutput is None:
            return scale
        if gradwrtoutput.numel() != 1:
            self._fail(f'the loss is a scalar: its gradient must have one element, '
                       f'got shape {tuple(gradwrtoutput.shape)}')
        return scale * gradwrtoutput.reshape(())


def expected_clipped(mean, sigma):
    """g = E[clip(mean + sigma Z, 0, 1)], Z ~ N(0, 1), and its slope dg/dmean. With
    a = -mean / sigma, b = (1 - mean) / sigma, Phi/phi the normal cdf/pdf:
    g = mean (Phi(b) - Phi(a)) + sigma (phi(a) - phi(b)) + 1 - Phi(b); dg/dmean = Phi(b) - Phi(a).
    Tensor operations only, so autograd can differentiate it too (the tests' oracle)."""
    a, b = -mean / sigma, (1 - mean) / sigma
    cdf_a, cdf_b = [(z / math.sqrt(2)).erf().add(1).div(2) for z in (a, b)]
    pdf_a, pdf_b = [(-z * z / 2).exp() / math.sqrt(2 * math.pi) for z in (a, b)]
    slope = cdf_b - cdf_a
    return mean * slope + sigma * (pdf_a - pdf_b) + (1 - cdf_b), slope


class ClippedMSE(MSE):
    """MSE against noisy targets that were clipped to [0, 1]: mean((g(p) - t)^2) with
    g(p) = E[clip(p + sigma Z, 0, 1)], the mean a target has when p is the clean value.

    Noise2Noise with plain MSE learns each pixel's mean target, and clipping pushes that
    mean towards mid-grey near black and white: a bias clean targets don't have. Fitting
    g(p) instead makes p itself the clean value. ``sigma`` is the targets' noise level on
    the 0-1 scale, broadcastable to the prediction (one per image: (N, 1, 1, 1)), positive;
    without it the loss is plain MSE. d/dp = 2 (g(p) - t) g'(p) / n."""

    def forward(self, prediction, target, sigma=None):
        expected, slope = prediction, None
        if sigma is not None:
            self._check_floating(sigma, 'sigma')
            if not (sigma > 0).all():
                self._fail('sigma must be positive')
            try:
                expected, slope = expected_clipped(prediction, sigma)
            except RuntimeError:  # shapes that don't broadcast
                expected = None
            if expected is None or expected.shape != prediction.shape:
                self._fail(f"sigma {tuple(sigma.shape)} must broadcast to the prediction's "
                           f'shape {tuple(prediction.shape)}')
        loss = super().forward(expected, target)
        self._saved = self._saved, slope
        return loss

    def backward(self, gradwrtoutput=None):
        difference, slope = self._saved_or_fail()
        grad = difference * self._scale(gradwrtoutput, difference.numel())
        return grad if slope is None else grad * slope


class RobustMSE(MSE):
    """MSE, except for the images ``robust`` marks: the square of their mean absolute error.

    Noise2Noise learns the minimiser of the loss over the noisy targets: each pixel's mean
    with the squared error, its median with the absolute error. The mean is the clean value
    for the course's pixelation (a block's median is not its mean); the median is the clean
    value where clipping or impulses pull the mean towards mid-grey. Squaring an image's mean
    absolute error m keeps the median as the minimiser (every pixel's gradient is the
    absolute error's, times the image's 2 m) and puts those images on the squared error's
    scale, so neither kind outweighs the other in a mixed batch. ``robust``: a bool per image,
    shape (N,). For a robust image d/dp = 2 m sign(p - t) / n; the others' is MSE's."""

    def forward(self, prediction, target, robust=None):
        loss = super().forward(prediction, target)
        difference, absolute = self._saved, None
        if robust is not None:
            n = prediction.shape[0] if prediction.dim() == 4 else None
            if getattr(robust, 'dtype', None) != empty(0).bool().dtype or robust.shape != (n,):
                self._fail(f'robust must be a bool tensor with one value per image of the '
                           f'batch (N, C, H, W): shape ({n},), got '
                           f'{getattr(robust, "shape", robust)}')
            robust = robust.to(difference.device)
            absolute = difference.abs().flatten(1).mean(1)
            loss = absolute.pow(2).where(robust, difference.pow(2).flatten(1).mean(1)).mean()
        self._saved = difference, robust, absolute
        return loss

    def backward(self, gradwrtoutput=None):
        difference, robust, absolute = self._saved_or_fail()
        scale = self._scale(gradwrtoutput, difference.numel())
        if robust is None:
            return difference * scale
        median_grad = difference.sign().mul_(absolute.view(-1, 1, 1, 1) * scale)
        return median_grad.where(robust.view(-1, 1, 1, 1), difference * scale)


# --------------------------------------------------------------------------------------
# Optimizers: torch.optim's update rules, on the (parameter, gradient) pairs of param()
# --------------------------------------------------------------------------------------

class Optimizer:
    """Updates parameters in place. ``state`` holds per-parameter tensors, by position."""

    def __init__(self, params, lr, **hyper):
        self.params = list(params)
        if not self.params:
            raise ValueError(f'{type(self).__name__}: got no parameters to optimize')
        if lr < 0:
            raise ValueError(f'{type(self).__name__}: learning rate must be >= 0, got {lr}')
        self.lr = lr
        self.hyper = hyper
        self.steps = 0
        self.state = [{} for _ in self.params]

    def zero_grad(self):
        for _, grad in self.params:
            grad.zero_()

    def step(self):
        self.steps += 1
        for (parameter, grad), state in zip(self.params, self.state):
            weight_decay = self.hyper.get('weight_decay', 0)
            if weight_decay:
                grad = grad.add(parameter, alpha=weight_decay)
            self._update(parameter, grad, state)

    def state_dict(self):
        return {'lr': self.lr, 'steps': self.steps,
                'state': [{k: v.clone() for k, v in s.items()} for s in self.state]}

    def load_state_dict(self, state_dict):
        if len(state_dict['state']) != len(self.params):
            raise ValueError(f'{type(self).__name__}.load_state_dict: {len(state_dict["state"])} '
                             f'parameter states for {len(self.params)} parameters')
        self.lr, self.steps = state_dict['lr'], state_dict['steps']
        self.state = [{k: v.to(p.device, p.dtype).clone() for k, v in s.items()}
                      for s, (p, _) in zip(state_dict['state'], self.params)]

    def extra_repr(self):
        return ', '.join([f'lr={self.lr}'] + [f'{k}={v}' for k, v in self.hyper.items()])

    def __repr__(self):
        return f'{type(self).__name__}({self.extra_repr()})'


class SGD(Optimizer):
    """v = m v + (1 - dampening) g;  p -= lr * (g + m v if nesterov else v)  (v = g at step 1)."""

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError('SGD: nesterov momentum requires a momentum and zero dampening')
        super().__init__(params, lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    def _update(self, parameter, grad, state):
        momentum = self.hyper['momentum']
        if momentum:
            if 'momentum_buffer' not in state:
                state['momentum_buffer'] = grad.clone()
            else:
                state['momentum_buffer'].mul_(momentum).add_(
                    grad, alpha=1 - self.hyper['dampening'])
            buffer = state['momentum_buffer']
            grad = grad.add(buffer, alpha=momentum) if self.hyper['nesterov'] else buffer
        parameter.add_(grad, alpha=-self.lr)


class Adagrad(Optimizer):
    """s += g^2;  p -= lr * g / (sqrt(s) + eps)."""

    def __init__(self, params, lr=1e-2, eps=1e-10, weight_decay=0):
        super().__init__(params, lr, eps=eps, weight_decay=weight_decay)

    def _update(self, parameter, grad, state):
        if 'sum' not in state:
            state['sum'] = grad.new_zeros(grad.shape)
        state['sum'].addcmul_(grad, grad)
        parameter.addcdiv_(grad, state['sum'].sqrt().add_(self.hyper['eps']), value=-self.lr)


class Adam(Optimizer):
    """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
    p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params, lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def _update(self, parameter, grad, state):
        beta1, beta2 = self.hyper['betas']
        if 'exp_avg' not in state:
            state['exp_avg'] = grad.new_zeros(grad.shape)
            state['exp_avg_sq'] = grad.new_zeros(grad.shape)
        state['exp_avg'].lerp_(grad, 1 - beta1)
        state['exp_avg_sq'].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = self.lr / (1 - beta1 ** self.steps)
        denominator = (state['exp_avg_sq'].sqrt() / math.sqrt(1 - beta2 ** self.steps)).add_(
            self.hyper['eps'])
        parameter.addcdiv_(state['exp_avg'], denominator, value=-step_size)


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------

class Sequential(Module):
    """Modules applied in order; backward runs them in reverse."""

    def __init__(self, *modules):
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f'{type(self).__name__}: argument {index} is a '
                                f'{type(module).__name__}, not a Module')
        self._children = {str(i): m for i, m in enumerate(modules)}

    @property
    def modules(self):
        """The children, in order."""
        return list(self._children.values())

    def __getitem__(self, index):
        return self.modules[index]

    def __len__(self):
        return len(self.modules)

    def __iter__(self):
        return iter(self.modules)

    def forward(self, input):
        modules, index = self.modules, 0
        while index < len(modules):
            module = modules[index]
            after = modules[index + 1] if index + 1 < len(modules) else None
            if _fusable(module, after):
                input = module(input, epilogue=after.apply_)
                index += 2
            else:
                input = module(input)
                index += 1
        return input

    def backward(self, gradwrtoutput):
        for module in reversed(self.modules):
            if gradwrtoutput is None:  # an earlier layer has compute_input_grad = False
                break
            gradwrtoutput = module.backward(gradwrtoutput)
        return gradwrtoutput


def _fusable(module, after):
    """Whether ``module`` can apply ``after`` to its output as it computes it: a layer with a
    convolution, running forward only, then an in-place activation (whose forward keeps
    nothing, so skipping its call loses nothing)."""
    return (isinstance(module, _ConvBase) and isinstance(after, _Elementwise) and after.inplace
            and not module.requires_backward and not after.requires_backward)


class Concat(Sequential):
    """U-Net skip: [x, body(x)] stacked along channels; dx = dy[:C] + body.backward(dy[C:])."""

    def forward(self, input):
        output = super().forward(input)
        c = input.shape[-3]
        if output.shape[:-3] != input.shape[:-3] or output.shape[-2:] != input.shape[-2:]:
            self._fail(f'the body maps {tuple(input.shape)} to {tuple(output.shape)}: '
                       f'batch and image size must stay the same to concatenate')
        self._saved = (c, tuple(output.shape))
        # Concatenating channels-last views keeps the result channels-last.
        return cat([input.movedim(-3, -1), output.movedim(-3, -1)], -1).movedim(-1, -3)

    def backward(self, gradwrtoutput):
        c, body_shape = self._saved_or_fail()
        expected = (*body_shape[:-3], c + body_shape[-3], *body_shape[-2:])
        self._check_grad(gradwrtoutput, expected)
        skip, body = gradwrtoutput.split([c, body_shape[-3]], dim=-3)
        body_grad = super().backward(body)
        return skip if body_grad is None else skip + body_grad


class Residual(Sequential):
    """x + body(x); dx = dy + body.backward(dy)."""

    def forward(self, input):
        output = super().forward(input)
        if output.shape != input.shape:
            self._fail(f'the body maps {tuple(input.shape)} to {tuple(output.shape)}: '
                       f'shapes must match to add')
        self._saved = tuple(output.shape)
        return input + output

    def backward(self, gradwrtoutput):
        self._check_grad(gradwrtoutput, self._saved_or_fail())
        body_grad = super().backward(gradwrtoutput)
        return gradwrtoutput if body_grad is None else gradwrtoutput + body_grad


# --------------------------------------------------------------------------------------
# The denoiser
# --------------------------------------------------------------------------------------

def build_network(widths=(32, 64, 96), activation='leaky_relu', upsampling='nearest',
                  skip='concat', residual=True):
    """A small U-Net: per level two 3x3 convolutions; stride-2 convolutions go down, and
    ``upsampling`` ('nearest': NN upsampling + 3x3 conv, 'transpose': 4x4 stride-2 transposed
    conv) comes back up, joined to the level's skip by ``skip`` ('concat' as in U-Net, or
    'add', half the decoder's cost). With ``residual`` the network predicts the correction
    to add to its input (the noise, negated); otherwise a sigmoid gives the image."""
    def act():
        return {'relu': ReLU, 'leaky_relu': lambda **kw: LeakyReLU(0.1, **kw),
                'elu': ELU}[activation](inplace=True)

    def conv(c_in, c_out, **kw):
        return [Conv2d(c_in, c_out, 3, padding=1, **kw), act()]

    def up(c_in, c_out):
        if upsampling == 'nearest':
            return Upsampling(c_in, c_out, 3, scale_factor=2, padding=1)
        if upsampling == 'transpose':
            return TransposeConv2d(c_in, c_out, 4, stride=2, padding=1)
        raise ValueError(f"upsampling must be 'nearest' or 'transpose', got {upsampling!r}")

    if skip not in ('concat', 'add'):
        raise ValueError(f"skip must be 'concat' or 'add', got {skip!r}")
    join, joined = (Concat, 2) if skip == 'concat' else (Residual, 1)

    def level(depth):
        """Everything from the stride-2 entry into level ``depth`` back to its exit."""
        c_above, c = widths[depth - 1], widths[depth]
        body = [Conv2d(c_above, c, 3, stride=2, padding=1), act(), *conv(c, c)]
        if depth + 1 < len(widths):
            body += [join(*level(depth + 1)), *conv(joined * c, c)]
        return body + [up(c, c_above), act()]

    c0 = widths[0]
    layers = [*conv(3, c0), *conv(c0, c0), join(*level(1)), *conv(joined * c0, c0),
              Conv2d(c0, 3, 3, padding=1)]
    if residual:
        return Residual(*layers)
    return Sequential(*layers, Sigmoid())


def course_baseline(width=64):
    """The course's reference network: two stride-2 convolutions, two upsamplings, sigmoid."""
    return Sequential(Conv2d(3, width, 3, stride=2, padding=1), ReLU(inplace=True),
                      Conv2d(width, width, 3, stride=2, padding=1), ReLU(inplace=True),
                      Upsampling(width, width, 3, scale_factor=2, padding=1), ReLU(inplace=True),
                      Upsampling(width, 3, 3, scale_factor=2, padding=1), Sigmoid())


def _build(architecture):
    """The network an architecture dict (``Denoiser.ARCHITECTURE``'s keys) describes, and its
    total stride (the factor every image side is padded to)."""
    settings = dict(architecture)
    network = settings.pop('network')
    if network == 'baseline':
        return course_baseline(settings['widths'][0]), 4
    if network != 'unet':
        raise ValueError(f"network must be 'unet' or 'baseline', got {network!r}")
    return build_network(**settings), 2 ** (len(settings['widths']) - 1)


def _first_layer(network):
    while isinstance(network, Sequential):
        network = network[0]
    return network


def dihedral(x, k, inverse=False):
    """The k-th of the 8 symmetries of the square (k in 0..7), applied to H and W: a
    transpose if bit 4, then flips of W (bit 1) and H (bit 2); ``inverse`` undoes it."""
    def flip(x):
        return x.flip([d for bit, d in ((1, -1), (2, -2)) if k & bit]) if k & 3 else x

    def transpose(x):
        return x.transpose(-2, -1) if k & 4 else x
    return transpose(flip(x)) if inverse else flip(transpose(x))


def _learning_rate(step, total_steps, peak, warmup_steps):
    """Linear warm-up to ``peak`` over ``warmup_steps``, times a cosine decay to zero."""
    warmup = min(1.0, (step + 1) / max(warmup_steps, 1))
    return peak * warmup * 0.5 * (1 + math.cos(math.pi * step / total_steps))


def noise_levels(a, b, iterations=3, chunk=2048):
    """Per image, the noise level (0-1 scale) of two noisy copies ``a``, ``b`` (0-255).

    Their difference is the difference of two independent noises: variance 2 sigma^2, plus
    2/12 from rounding to integers. Clipping shrinks it near 0 and 255, so only pixels whose
    pair mean lies 2 sigma inside count (sigma from the previous estimate; the first one
    keeps all pixels): for Gaussian noise the mean and the difference are independent, so
    picking pixels by their mean doesn't bias the difference's variance."""
    levels = []
    for start in range(0, a.shape[0], chunk):
        x, y = a[start:start + chunk].float(), b[start:start + chunk].float()
        mean, squared = (x + y).div_(2), (x - y).pow_(2)
        sigma = None
        for _ in range(iterations):
            margin = 0 if sigma is None else 2 * sigma.view(-1, 1, 1, 1)
            kept = (mean >= margin) & (mean <= 255 - margin)
            count = kept.flatten(1).sum(1)
            variance = (squared * kept).flatten(1).sum(1) / count.clamp(min=1) / 2 - 1 / 12
            estimate = variance.clamp(min=0.25).sqrt()  # at least half a grey level
            sigma = estimate if sigma is None else estimate.where(count >= 16, sigma)
        levels.append(sigma / 255)
    return cat(levels) if levels else a.new_empty(0).float()


def _channels_last(images, device):
    """0-255 images -> 0-1 float32 on ``device``, channels-last in memory (the layout the
    convolutions read fastest). The copy into that layout is explicit: a dtype conversion
    keeps the strides it is given, so converting a permuted view left NCHW images NCHW."""
    pixels = images.to(device).permute(0, 2, 3, 1).contiguous()
    return pixels.float().div(255).permute(0, 3, 1, 2)


def _reflect_index(size, before, after, like):
    """Indices that reflect-pad an axis of length ``size``: -1 -> 1, size -> size - 2."""
    index = arange(-before, size + after, device=like.device)
    period = max(2 * size - 2, 1)
    index = index.remainder(period)
    return (period - index).where(index >= size, index).clamp_(0, size - 1)


def _reflect_padded(x, bottom, right):
    """(N, C, H, W) images reflect-padded by ``bottom`` rows and ``right`` columns,
    channels-last in memory (indexing the channel-first view left the channels between rows
    and columns, and the first convolution then took 2.5x as long: 9.7 ms on a 512x512
    image against 3.9); x itself when there is nothing to pad."""
    if not bottom and not right:
        return x
    h, w = x.shape[-2:]
    pixels = x.permute(0, 2, 3, 1)
    pixels = pixels[:, _reflect_index(h, 0, bottom, x)][:, :, _reflect_index(w, 0, right, x)]
    return pixels.permute(0, 3, 1, 2)


_UINT8 = empty(0).byte().dtype  # torch.uint8, named without the torch namespace


def _as_images(images, name):
    """Validate 0-255 images; return them as a float batch on their own device."""
    if not hasattr(images, 'dim'):
        raise TypeError(f'{name} must be a torch tensor, got {type(images).__name__}')
    if not (images.is_floating_point() or images.dtype == _UINT8):
        raise TypeError(f'{name} must be uint8 or floating point (0-255), got {images.dtype}')
    if images.dim() not in (3, 4) or images.shape[-3] != 3:
        raise ValueError(f'{name} must be (N, 3, H, W) or (3, H, W), '
                         f'got shape {tuple(images.shape)}')
    if images.is_floating_point() and images.numel():
        if not images.isfinite().all():
            raise ValueError(f'{name} contains NaN or infinite pixels')
        low, high = images.aminmax()
        if low < 0 or high > 255:
            raise ValueError(f'{name} has pixels outside 0-255 (min {low.item():g}, '
                             f'max {high.item():g})')
    return images if images.dim() == 4 else images.unsqueeze(0)


def _check_count(value, name, high=None):
    """Raise unless ``value`` is an int >= 1 (and <= ``high``); bools are not counts."""
    if (not isinstance(value, int) or isinstance(value, bool) or value < 1
            or (high is not None and value > high)):
        span = f'in 1..{high}' if high is not None else '>= 1'
        raise ValueError(f'{name} must be an int {span}, got {value!r}')


class Denoiser:
    """A network and ``predict``: 0-255 images of any size in, denoised images out.

    The network is described by an architecture dict (``ARCHITECTURE``'s keys; see
    ``build_network``), which travels with its weights. It sees images scaled to [0, 1].
    """

    ARCHITECTURE = dict(network='unet', widths=(24, 32, 64, 128), activation='leaky_relu',
                        upsampling='nearest', skip='concat', residual=True)

    def __init__(self, architecture=None, device=None):
        self.architecture = self.complete(architecture or {})
        self.device = device or torch.device('cuda' if torch.cuda.is_available() else 'cpu')
        self.network, self.total_stride = _build(self.architecture)
        self.network.to(self.device)
        _first_layer(self.network).compute_input_grad = False

    @classmethod
    def complete(cls, architecture):
        """``architecture`` with the defaults for what it leaves out; lists (as a weights
        file stores them) read as tuples."""
        return {key: tuple(value) if isinstance(value, list) else value
                for key, value in {**cls.ARCHITECTURE, **architecture}.items()}

    @property
    def tile_margin(self):
        """Context around each tile: two 3x3 convolutions each way per level, each reaching
        one pixel at that level's stride, so about 8 * total_stride covers the receptive
        field and tiles stitch without seams (a test checks tiled == untiled)."""
        return 8 * self.total_stride

    def predict(self, images, *, symmetries=8, tile=None, pixels_per_pass=2 ** 16,
                progress=None):
        """Denoise 0-255 images ((N, 3, H, W) or (3, H, W), uint8 or float, any size);
        returns float 0-255, same shape and device.

        ``symmetries``: the mean of the network over this many flips/rotations of the
        square (1..8, a self-ensemble: each sees the noise in another orientation, so errors
        partly cancel; 1 is the network alone, 8 times faster). ``tile``: larger images go
        through the network tile by tile (seamlessly; tiles overlap by their context
        margins, so a 512x512 image in tiles of 256 took 1.4-1.6x as long as whole); None
        takes the device's ``Tuning.predict_tile``.
        ``pixels_per_pass``: images per pass so that a pass sees about this many pixels
        (bounds memory; on 1,000 images of 32x32, 2^16 took 3-4% less time than 2^15 and
        10-12% less than 2^17, whose activations are fresh memory, slow to touch first). The
        network runs forward only (``Module.requires_backward_``).
        ``progress(done, total)``, if given, is called after each pass of the network."""
        batch = _as_images(images, 'test_input')
        _check_count(symmetries, 'symmetries', high=8)
        tile = tuning(self.device).predict_tile if tile is None else tile
        _check_count(tile, 'tile')
        _check_count(pixels_per_pass, 'pixels_per_pass')
        output = batch.new_empty(batch.shape).float()
        if output.numel() == 0:  # no image, or images with no pixel
            return output if images.dim() == 4 else output[0]
        chunk = max(1, pixels_per_pass // (batch.shape[-2] * batch.shape[-1]))
        starts = range(0, batch.shape[0], chunk)
        # A transpose swaps H and W, which leaves the number of tiles as it is.
        total = len(starts) * symmetries * len(self._tiles(*batch.shape[-2:], tile))
        done = 0

        def network(x):
            nonlocal done
            y = self.network(x)
            done += 1
            if progress is not None:
                progress(done, total)
            return y
        with self.forward_only():
            for start in starts:
                self._denoise_batch(batch[start:start + chunk], output[start:start + chunk],
                                    network, symmetries, tile)
        output = output.clamp_(0, 1).mul_(255)
        return output if images.dim() == 4 else output[0]

    @contextmanager
    def forward_only(self):
        """A context in which the network keeps nothing for backward
        (``Module.requires_backward_``); ``predict`` runs in it. The setting is restored
        on exit."""
        previous = self.network.requires_backward
        self.network.requires_backward_(False)
        try:
            yield
        finally:
            self.network.requires_backward_(previous)

    def _denoise_batch(self, batch, output, network, symmetries, tile):
        """``output`` = the mean over ``symmetries`` of the tiled network on ``batch``."""
        x = _channels_last(batch, self.device)
        summed = self._denoise_tiled(x, network, tile)
        for k in range(1, symmetries):
            summed += dihedral(self._denoise_tiled(dihedral(x, k), network, tile), k,
                               inverse=True)
        output.copy_(summed.div_(symmetries))

    def _tiles(self, h, w, tile):
        """Top-left corners of the tiles that cover an h x w image padded to the total
        stride, or [None] when it runs whole."""
        s = self.total_stride
        h, w = h + -h % s, w + -w % s
        if max(h, w) <= tile + 2 * self.tile_margin:
            return [None]
        return [(top, left) for top in range(0, h, tile) for left in range(0, w, tile)]

    def _denoise_tiled(self, x, network, tile):
        """Pad to the total stride (reflect), run ``network`` tile by tile, crop back."""
        h, w = x.shape[-2:]
        s = self.total_stride
        x = _reflect_padded(x, -h % s, -w % s)
        tiles = self._tiles(h, w, tile)
        if tiles == [None]:
            return network(x)[..., :h, :w]
        margin = self.tile_margin
        out = x.new_empty(x.shape)
        for top, left in tiles:
            t0, l0 = max(top - margin, 0), max(left - margin, 0)
            t1 = min(top + tile + margin, x.shape[-2])
            l1 = min(left + tile + margin, x.shape[-1])
            piece = network(x[..., t0:t1, l0:l1])
            out[..., top:top + tile, left:left + tile] = \
                piece[..., top - t0:top - t0 + tile, left - l0:left - l0 + tile]
        return out[..., :h, :w]


@dataclass(frozen=True)
class Recipe:
    """How ``Trainer`` trains. Frozen: a setting changes by making another recipe
    (``dataclasses.replace(recipe, lr=1e-3)``), and an unknown setting or a value of the
    wrong type is an error rather than silently ignored."""

    batch_size: int = 32
    lr: float = 2e-3            # peak learning rate from random weights
    finetune_lr: float = 1e-4   # peak learning rate after load_pretrained_model
    warmup_steps: int = 200
    betas: tuple = (0.9, 0.99)  # Adam's
    symmetries: bool = True     # random flips/rotations of each batch
    swap: bool = True           # random input/target swaps
    clipped_noise: bool = False  # plain MSE; True: ClippedMSE with each pair's noise level
    seed: int = 0               # batch order and augmentations

    def __post_init__(self):
        lowest = {'batch_size': 1, 'lr': 0, 'finetune_lr': 0, 'warmup_steps': 0}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type is bool:
                fits = isinstance(value, bool)
            elif field.type is tuple:  # Adam's betas
                fits = (isinstance(value, (tuple, list)) and len(value) == 2
                        and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in value))
            else:  # an int or a float: an int is a fine float, a bool is neither
                fits = (isinstance(value, (int, float)) and not isinstance(value, bool)
                        and (field.type is float or isinstance(value, int))
                        and value >= lowest.get(field.name, value))
            if not fits:
                raise ValueError(f'Recipe: {field.name}={value!r} is not a valid '
                                 f'{field.type.__name__}')
        object.__setattr__(self, 'betas', tuple(self.betas))


class Trainer:
    """Noise2Noise training of a ``Denoiser``'s network, as its ``Recipe`` says: Adam,
    warm-up then cosine decay over the epochs, random flips/rotations and input/target
    swaps, and a loss whose minimiser over the noisy targets is the clean image:

    - ``RobustMSE`` (the default): plain MSE, whose minimiser is each pixel's mean target,
      right for the course's pixelation (zero-mean noise); the pairs that ``train``'s
      ``robust`` marks (noise whose median is clean, such as impulses) take the squared mean
      absolute error, whose minimiser is the median;
    - ``ClippedMSE`` with ``Recipe(clipped_noise=True)``: for Gaussian noise clipped to
      0-255, each pair's noise level estimated from the pair;
    - ``loss``, if given: a loss module with that interface (``forward(prediction, target,
      **per_pair)``, ``backward()``).

    Its state (the optimizer's, the epochs done, whether the weights were pretrained, the
    recipe) is what resuming needs: ``state_dict``/``load_state_dict``.
    """

    def __init__(self, denoiser, recipe=Recipe(), *, loss=None, pretrained=False):
        self.denoiser = denoiser
        self.recipe = recipe
        self.custom_loss, self._recipe_loss = loss, None
        self._optimizer = None
        self.pretrained = pretrained
        self.epochs_done = 0

    @property
    def recipe(self):
        return self._recipe

    @recipe.setter
    def recipe(self, recipe):
        if not isinstance(recipe, Recipe):
            raise TypeError(f'recipe must be a Recipe, got {type(recipe).__name__}')
        self._recipe = recipe

    @property
    def loss(self):
        """The loss module: ``custom_loss`` if given, else the one the recipe calls for."""
        if self.custom_loss is not None:
            return self.custom_loss
        wanted = ClippedMSE if self.recipe.clipped_noise else RobustMSE
        if type(self._recipe_loss) is not wanted:
            self._recipe_loss = wanted()
        return self._recipe_loss

    @property
    def peak_lr(self):
        """The schedule's peak: ``recipe.lr`` from random weights; after
        ``load_pretrained_model``, the small ``finetune_lr``, so that the weights are refined
        rather than thrown away."""
        return self.recipe.finetune_lr if self.pretrained else self.recipe.lr

    def make_optimizer(self):
        return Adam(self.denoiser.network.param(), lr=self.peak_lr, betas=self.recipe.betas)

    @property
    def optimizer(self):
        """The optimizer, made (``make_optimizer``) when first needed."""
        if self._optimizer is None:
            self._optimizer = self.make_optimizer()
        return self._optimizer

    def state_dict(self):
        # Lists, not tuples: torch.load(weights_only=True) reads back only plain containers.
        recipe = {name: list(value) if isinstance(value, tuple) else value
                  for name, value in asdict(self.recipe).items()}
        return {'optimizer': self.optimizer.state_dict(), 'epochs_done': self.epochs_done,
                'pretrained': self.pretrained, 'recipe': recipe}

    def load_state_dict(self, state):
        """Resume from ``state_dict()``: the recipe, the optimizer's state and the progress."""
        recipe = Recipe(**state['recipe'])
        previous, self.recipe = self.recipe, recipe
        try:
            optimizer = self.make_optimizer()
            optimizer.load_state_dict(state['optimizer'])
        except BaseException:
            self.recipe = previous
            raise
        self._optimizer, self.epochs_done, self.pretrained = \
            optimizer, state['epochs_done'], state['pretrained']

    def train(self, train_input, train_target, num_epochs, *, robust=None, start_epoch=0,
              end_epoch=None, on_epoch_end=None, log=None):
        """Train on pairs of 0-255 images for ``num_epochs`` epochs (the schedule's length).

        ``robust``: a bool per pair, (N,), marking the pairs whose noise's median, not mean,
        is the clean image (``RobustMSE``); None for none. The peak learning rate is
        ``peak_lr``, and the warm-up spares pretrained weights the full-size first steps of
        a fresh Adam. ``start_epoch``/``on_epoch_end(epoch)`` let a caller resume a schedule
        and checkpoint between epochs, and ``end_epoch`` stop it early (after that many
        epochs of the ``num_epochs`` schedule, to go on later). Progress lines go to
        ``log``: a text stream, ``sys.stderr`` (as it is at the call) when None, or none
        when False."""
        source = _as_images(train_input, 'train_input')
        target = _as_images(train_target, 'train_target')
        if source.shape != target.shape:
            raise ValueError(f'train_input {tuple(source.shape)} and train_target '
                             f'{tuple(target.shape)} must have the same shape')
        if not isinstance(num_epochs, int) or isinstance(num_epochs, bool) or num_epochs < 1:
            raise ValueError(f'num_epochs must be a positive int, got {num_epochs!r}')
        if source.shape[0] == 0:
            raise ValueError('train_input is empty')
        min_side = 2 * self.denoiser.total_stride
        if min(source.shape[-2:]) < min_side:
            raise ValueError(f'training images must be at least {min_side}x{min_side}, '
                             f'got {tuple(source.shape[-2:])}')
        if robust is not None:
            if (getattr(robust, 'dtype', None) != empty(0).bool().dtype
                    or tuple(robust.shape) != (source.shape[0],)):
                raise ValueError(f'robust must be a bool tensor of shape ({source.shape[0]},), '
                                 f'one value per pair, got {getattr(robust, "shape", robust)}')
            if self.recipe.clipped_noise:
                raise ValueError('robust pairs need RobustMSE, not the clipped_noise recipe')
        log = sys.stderr if log is None else log
        recipe, network = self.recipe, self.denoiser.network
        peak_lr = self.peak_lr
        optimizer = self.optimizer
        # Each pair's noise level, for the loss that models the targets' clipping.
        levels = noise_levels(source, target) if recipe.clipped_noise else None
        n, batch = source.shape[0], recipe.batch_size
        steps_per_epoch = math.ceil(n / batch)
        total_steps = num_epochs * steps_per_epoch
        for epoch in range(start_epoch, num_epochs if end_epoch is None else end_epoch):
            order = list(range(n))
            rng = random.Random(recipe.seed * 100003 + epoch)
            rng.shuffle(order)
            order = arange(n)[order]
            good_state = network.state_dict()
            started, loss_sum = time.perf_counter(), 0.0
            for i in range(steps_per_epoch):
                optimizer.lr = _learning_rate(epoch * steps_per_epoch + i, total_steps,
                                              peak_lr, recipe.warmup_steps)
                index = order[i * batch:(i + 1) * batch]
                x, y = self._augmented_batch(source, target, index, rng)
                per_pair = {}
                if levels is not None:
                    per_pair['sigma'] = levels[index].view(-1, 1, 1, 1).to(self.denoiser.device)
                if robust is not None:
                    per_pair['robust'] = robust[index].to(self.denoiser.device)
                loss = self.step(x, y, **per_pair)
                if not math.isfinite(loss):
                    network.load_state_dict(good_state)
                    self._optimizer = None  # its moments hold the divergence
                    raise RuntimeError(f'training diverged: loss {loss} at epoch {epoch + 1}, '
                                       f'step {i + 1}; the weights of the epoch start were kept')
                loss_sum += loss
                if log is not False and ((i + 1) % 50 == 0 or i + 1 == steps_per_epoch):
                    _report(log, epoch, num_epochs, i + 1, steps_per_epoch,
                            loss_sum / (i + 1), (i + 1) * batch, started)
            self.epochs_done = epoch + 1
            if on_epoch_end is not None:
                on_epoch_end(epoch)
        return self

    def _augmented_batch(self, source, target, index, rng):
        x = _channels_last(source[index], self.denoiser.device)
        y = _channels_last(target[index], self.denoiser.device)
        if self.recipe.swap and rng.random() < 0.5:  # either noisy copy is a fair target
            x, y = y, x
        if self.recipe.symmetries:
            k = rng.randrange(8)
            x, y = dihedral(x, k), dihedral(y, k)
        return x, y

    def step(self, x, y, **per_pair):
        """One optimizer step on the batch (x, y), inputs and targets on the 0-1 scale;
        ``per_pair`` goes to the loss (``sigma``, ``robust``). Returns the loss."""
        optimizer, network, loss = self.optimizer, self.denoiser.network, self.loss
        optimizer.zero_grad()
        value = loss.forward(network(x), y, **per_pair)
        network.backward(loss.backward())
        optimizer.step()
        return value.item()


def _report(log, epoch, epochs, step, steps, loss, images, started):
    elapsed = time.perf_counter() - started
    rate = images / max(elapsed, 1e-9)
    left = (steps - step) * elapsed / step + (epochs - epoch - 1) * steps * elapsed / step
    print(f'\repoch {epoch + 1}/{epochs}  step {step}/{steps}  loss {loss:.5f}  '
          f'{rate:.0f} img/s  {left / 60:.1f} min left', end='\n' if step == steps else '',
          file=log, flush=True)


class Model:
    """The course's Noise2Noise denoiser: ``train`` on pairs of noisy images, ``predict``
    clean ones; images are 0-255 tensors (uint8 or float), (N, 3, H, W) or (3, H, W).

    A thin composition: ``denoiser`` (the network and ``predict``, built from
    ``architecture``: ``Denoiser.ARCHITECTURE``'s keys) and ``trainer`` (its ``Recipe``,
    ``recipe`` or the default one, and training state). One file format holds both:
    ``save``/``load``.
    """

    DENOISER, TRAINER = Denoiser, Trainer  # what a variant (the torch.nn twin) replaces

    def __init__(self, recipe=None, **architecture):
        self.denoiser = self.DENOISER(architecture)
        self.trainer = self.TRAINER(self.denoiser, Recipe() if recipe is None else recipe)

    @staticmethod
    def weights_path():
        return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bestmodel.pth')

    def load_pretrained_model(self, path=None):
        """Load ``bestmodel.pth`` (or ``path``): every parameter set, or a clear error."""
        self.load(self.weights_path() if path is None else path)

    def train(self, train_input, train_target, num_epochs, **options):
        """``Trainer.train``: Noise2Noise training, see there for the options."""
        self.trainer.train(train_input, train_target, num_epochs, **options)
        return self

    def predict(self, test_input, **options):
        """``Denoiser.predict``: denoised 0-255 images, see there for the options."""
        return self.denoiser.predict(test_input, **options)

    # -- one file format: the architecture, the weights and, for resuming, training ----
    def state(self, *, training=False):
        """What ``save`` writes: the network's architecture and weights and, with
        ``training``, under ``'trainer'``, the trainer's state that resuming needs
        (``Trainer.state_dict``: optimizer, epochs done, recipe)."""
        # Lists, not tuples: torch.load(weights_only=True) reads back only plain containers.
        state = {'architecture': {key: list(value) if isinstance(value, tuple) else value
                                  for key, value in self.denoiser.architecture.items()},
                 'state_dict': self.denoiser.network.state_dict()}
        return {**state, 'trainer': self.trainer.state_dict()} if training else state

    def load_state(self, state, source='state'):
        """Set the model from ``state()``'s format, all or nothing: on any error the model
        is left as it was. The network is rebuilt if the architecture differs. Without a
        training state the weights count as pretrained (training fine-tunes them)."""
        if not (isinstance(state, dict) and isinstance(state.get('state_dict'), dict)
                and isinstance(state.get('architecture'), dict)):
            raise ValueError(f'{source} is not a weights file of this model: expected a dict '
                             f"with 'architecture' and 'state_dict'")
        kept = self.denoiser
        try:
            architecture = self.DENOISER.complete(state['architecture'])
            same = architecture == kept.architecture
            denoiser = kept if same else self.DENOISER(architecture, kept.device)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError,
                RuntimeError) as error:
            raise ValueError(f"{source}: unknown architecture {state['architecture']}: "
                             f'{error}') from None
        weights = {name: tensor.clone() for name, tensor in kept.network.state_dict().items()}
        try:
            denoiser.network.load_state_dict(state['state_dict'])
            trainer = self.TRAINER(denoiser, self.trainer.recipe, loss=self.trainer.custom_loss,
                                   pretrained=True)
            if 'trainer' in state:  # a checkpoint: resume where it stopped, as it trained
                trainer.load_state_dict(state['trainer'])
        except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as error:
            kept.network.load_state_dict(weights)
            raise ValueError(f'{source}: {error}') from None
        self.denoiser, self.trainer = denoiser, trainer

    def save(self, path, *, training=False):
        """Write ``state(training=...)`` to ``path``, atomically: an interrupted save leaves
        the old file."""
        partial = f'{os.fspath(path)}.partial'
        torch.save(self.state(training=training), partial)
        os.replace(partial, path)

    def load(self, file):
        """Read a file ``save`` wrote (a path, or a binary file object) and ``load_state``
        it. The file may hold tensors and plain containers only: it never runs code."""
        name = getattr(file, 'name', file)
        if isinstance(file, (str, os.PathLike)) and not os.path.isfile(file):
            raise FileNotFoundError(f'weights file not found: {file}')
        try:
            state = torch.load(file, map_location=self.denoiser.device, weights_only=True)
        except Exception as error:
            raise RuntimeError(f'cannot read weights file {name}: {error}') from None
        self.load_state(state, source=name)
