"""A small deep-learning framework without autograd, and a Noise2Noise denoiser built on it.

Read top-down: the ``Module`` contract, layers (convolution, transposed convolution,
upsampling), activations, the loss, optimizers, containers, then ``Model``.

Every module takes a batch (N, C, H, W) or a single image (C, H, W) and returns the rank it
was given. ``forward`` caches what ``backward`` needs; ``backward`` returns the gradient
with respect to the input and *accumulates* parameter gradients until ``zero_grad()``.

Layout. Convolutions run as one GEMM over the whole batch: the input is unfolded into a
(C*kh*kw, N*Ho*Wo) matrix, so the product ``weight @ cols`` yields the output in
channel-major (C, N, H, W) memory, which is returned as an (N, C, H, W) view. Every
module accepts any strides, so the next layer reads that memory without a transpose.

Course rules: only ``empty``, ``cat``, ``arange``, ``fold``, ``unfold`` and Tensor methods
(plus ``load``/``save``/``set_grad_enabled``/``cuda.is_available``/``device`` for the
weights file and the device); ``tests/test_rules.py`` enforces it.
"""
import math
import os
import sys
import time

import torch
from torch import empty, cat, arange
from torch.nn.functional import fold, unfold  # noqa: F401  (allowed; the GEMM layout below needs neither)


# --------------------------------------------------------------------------------------
# Module: the contract
# --------------------------------------------------------------------------------------

class Module:
    """Base class: ``forward``, ``backward``, ``param`` and the bookkeeping torch.nn offers.

    Parameters are plain tensor attributes (``self.weight``) listed in ``_param_names``;
    their gradients live in ``self.grads`` under the same names. Sub-modules are listed in
    ``_children`` and give dotted state-dict names (``0.weight``), as in torch.nn.
    ``compute_input_grad = False`` lets ``backward`` skip the input gradient (it returns
    None): the first layer of a network has nobody upstream to give it to.
    """

    def __init__(self):
        self._param_names = ()
        self._children = {}
        self.grads = {}
        self.compute_input_grad = True
        self._saved = None

    def forward(self, *input):
        raise NotImplementedError

    def backward(self, *gradwrtoutput):
        raise NotImplementedError

    def __call__(self, *input):
        return self.forward(*input)

    # -- parameters ---------------------------------------------------------------------
    def param(self):
        """List of (parameter, gradient) pairs; empty for parameter-free modules."""
        pairs = [(getattr(self, name), self.grads[name]) for name in self._param_names]
        for child in self._children.values():
            pairs += child.param()
        return pairs

    def named_parameters(self, prefix=''):
        for name in self._param_names:
            yield prefix + name, getattr(self, name)
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

    def to(self, device=None, dtype=None):
        """Move parameters (and their gradients) to ``device`` and/or ``dtype``."""
        for name in self._param_names:
            setattr(self, name, getattr(self, name).to(device=device, dtype=dtype))
            self.grads[name] = self.grads[name].to(device=device, dtype=dtype)
        for child in self._children.values():
            child.to(device, dtype)
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
            raise TypeError(f'{type(self).__name__}: {what} must be a tensor, got {type(x).__name__}')
        if not x.is_floating_point():
            raise TypeError(f'{type(self).__name__}: {what} must be a floating-point tensor, '
                            f'got {x.dtype}')

    def _saved_or_fail(self):
        if self._saved is None:
            self._fail('backward called before forward')
        return self._saved

    def _check_grad(self, grad, expected_shape):
        self._check_floating(grad, 'gradient')
        if tuple(grad.shape) != tuple(expected_shape):
            self._fail(f'gradient has shape {tuple(grad.shape)}, '
                       f'expected the output shape {tuple(expected_shape)}')


def _pair(value, name):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f'{name} must be an int or a pair of ints, got {value!r}')
    return pair


# --------------------------------------------------------------------------------------
# im2col / col2im on the channel-major layout
# --------------------------------------------------------------------------------------

def _out_size(size, kernel, stride, padding, dilation):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _im2col(x, kernel, stride, padding, dilation, out=None):
    """(N, C, H, W) tensor of any strides -> (C*kh*kw, N*Ho*Wo) matrix, in one copy.

    The columns are ordered (c, i, j) like ``unfold``'s, so ``weight.view(O, -1)`` applies.
    ``out``, if given, is a buffer of the right size to write into (no allocation).
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    ho, wo = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
    source = x.transpose(0, 1)
    if ph or pw:
        source = x.new_zeros(c, n, h + 2 * ph, w + 2 * pw)
        source[:, :, ph:ph + h, pw:pw + w] = x.transpose(0, 1)
    s_c, s_n, s_h, s_w = source.stride()
    windows = source.as_strided((c, kh, kw, n, ho, wo),
                                (s_c, dh * s_h, dw * s_w, s_n, sh * s_h, sw * s_w),
                                source.storage_offset())
    if out is None:
        return windows.reshape(c * kh * kw, n * ho * wo)
    out.view(c, kh, kw, n, ho, wo).copy_(windows)
    return out


def _col2im(cols, shape, kernel, stride, padding, dilation):
    """Adjoint of ``_im2col``: scatter-add the columns back onto an (N, C, H, W) image."""
    n, c, h, w = shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    ho, wo = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
    image = cols.new_zeros(c, n, h + 2 * ph, w + 2 * pw)
    windows = cols.view(c, kh, kw, n, ho, wo)
    for i in range(kh):  # kh*kw strided adds, each over the whole batch
        for j in range(kw):
            image[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                        j * dw:j * dw + sw * (wo - 1) + 1:sw] += windows[:, i, j]
    return image[:, :, ph:ph + h, pw:pw + w].transpose(0, 1)


def _affine(weight, bias, cols):
    """weight @ cols + bias[:, None]. Starting the GEMM from the bias (beta=1) rounds
    exactly as F.conv2d does on CPU; adding the bias afterwards does not."""
    return weight.mm(cols) if bias is None else bias.view(-1, 1).addmm(weight, cols)


def _channel_major(x):
    """(N, C, H, W) -> (C, N*H*W) matrix; free when x is already channel-major in memory."""
    n, c, h, w = x.shape
    return x.transpose(0, 1).reshape(c, n * h * w)


def _batch_view(matrix, n, h, w):
    """(C, N*H*W) matrix -> (N, C, H, W) view of the same memory."""
    return matrix.view(-1, n, h, w).transpose(0, 1)


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------

class _ConvBase(Module):
    """What Conv2d and TransposeConv2d share: geometry, parameters, initialisation, checks."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 bias, weight_shape, fan_in, fan_out, init):
        super().__init__()
        for name, value in (('in_channels', in_channels), ('out_channels', out_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{type(self).__name__}: {name} must be a positive int, got {value!r}')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, 'kernel_size')
        self.stride = _pair(stride, 'stride')
        self.padding = _pair(padding, 'padding')
        self.dilation = _pair(dilation, 'dilation')
        if min(self.kernel_size + self.stride + self.dilation) < 1 or min(self.padding) < 0:
            raise ValueError(f'{type(self).__name__}: kernel_size, stride and dilation must be '
                             f'>= 1 and padding >= 0, got {self.extra_repr()}')
        self.weight = empty(weight_shape)
        self.bias = empty(out_channels) if bias else None
        self._param_names = ('weight', 'bias') if bias else ('weight',)
        self._fans = (fan_in, fan_out)
        self.reset_parameters(init)

    def reset_parameters(self, init='pytorch'):
        """'pytorch': U(+-1/sqrt(fan_in)) as torch.nn's default (kaiming_uniform, a=sqrt(5));
        'xavier': N(0, 2/(fan_in+fan_out)); 'kaiming': N(0, 2/fan_in). Biases as PyTorch's."""
        fan_in, fan_out = self._fans
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
        self.grads = {name: getattr(self, name).new_zeros(getattr(self, name).shape)
                      for name in self._param_names}

    def extra_repr(self):
        text = (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}')
        if self.padding != (0, 0):
            text += f', padding={self.padding}'
        if self.dilation != (1, 1):
            text += f', dilation={self.dilation}'
        return text + ('' if self.bias is not None else ', bias=False')

    def _geometry(self):
        return self.kernel_size, self.stride, self.padding, self.dilation

    def _batched_input(self, input):
        """Validate the input; return it as a batch and remember whether it was one."""
        self._check_floating(input)
        if input.dim() not in (3, 4):
            self._fail(f'expected a (N, C, H, W) batch or a (C, H, W) image, '
                       f'got shape {tuple(input.shape)}')
        x = input if input.dim() == 4 else input.unsqueeze(0)
        if x.shape[1] != self.in_channels:
            self._fail(f'expected {self.in_channels} input channels, got shape {tuple(input.shape)}')
        if x.dtype != self.weight.dtype:
            raise TypeError(f'{type(self).__name__}: input dtype {x.dtype} does not match the '
                            f'weight dtype {self.weight.dtype} (use .to(dtype=...))')
        return x, input.dim() == 3

    @staticmethod
    def _unbatch(y, unbatched):
        return y.squeeze(0) if unbatched and y is not None else y

    def _batched_grad(self, grad, out_shape, unbatched):
        self._check_grad(grad, out_shape[1:] if unbatched else out_shape)
        return grad.unsqueeze(0) if unbatched else grad

    def _scratch(self, name, rows, cols, like):
        """A buffer kept between calls: large temporaries are not reallocated every step."""
        buffer = getattr(self, name, None)
        if (buffer is None or buffer.shape != (rows, cols) or buffer.dtype != like.dtype
                or buffer.device != like.device):
            buffer = like.new_empty(rows, cols)
            setattr(self, name, buffer)
        return buffer


class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation) as one GEMM per pass, like torch.nn.Conv2d.

    forward:  Y = W X + b, with X = im2col(x) the (C*kh*kw, N*Ho*Wo) patch matrix.
    backward: dW += dY X^T,  db += dY 1,  dx = col2im(W^T dY).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, *, init='pytorch'):
        kh, kw = _pair(kernel_size, 'kernel_size')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias,
                         weight_shape=(out_channels, in_channels, kh, kw),
                         fan_in=in_channels * kh * kw, fan_out=out_channels * kh * kw, init=init)

    def forward(self, input):
        x, unbatched = self._batched_input(input)
        n, _, h, w = x.shape
        kernel, stride, padding, dilation = self._geometry()
        ho = _out_size(h, kernel[0], stride[0], padding[0], dilation[0])
        wo = _out_size(w, kernel[1], stride[1], padding[1], dilation[1])
        if ho < 1 or wo < 1:
            self._fail(f'input of shape {tuple(input.shape)} is smaller than the kernel '
                       f'({self.extra_repr()})')
        cols = _im2col(x, *self._geometry(), out=self._scratch(
            '_cols', self.weight[0].numel(), n * ho * wo, x))
        y = _affine(self.weight.view(self.out_channels, -1), self.bias, cols)
        self._saved = (cols, x.shape, (n, self.out_channels, ho, wo), unbatched)
        return self._unbatch(_batch_view(y, n, ho, wo), unbatched)

    def backward(self, gradwrtoutput):
        cols, in_shape, out_shape, unbatched = self._saved_or_fail()
        g = _channel_major(self._batched_grad(gradwrtoutput, out_shape, unbatched))
        weight = self.weight.view(self.out_channels, -1)
        self.grads['weight'].view(self.out_channels, -1).addmm_(g, cols.t())
        if self.bias is not None:
            self.grads['bias'] += g.sum(1)
        if not self.compute_input_grad:
            return None
        grad_cols = self._scratch('_grad_cols', cols.shape[0], cols.shape[1], g)
        return self._unbatch(_col2im(grad_cols.addmm_(weight.t(), g, beta=0), in_shape,
                                     *self._geometry()), unbatched)


class TransposeConv2d(_ConvBase):
    """Transposed convolution, like torch.nn.ConvTranspose2d: the adjoint of Conv2d.

    forward:  y = col2im(W^T x) + b, with W viewed as (C_in, C_out*kh*kw).
    backward: G = im2col(dy);  dW += x G^T,  db += dy 1,  dx = W G.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, dilation=1, bias=True, *, init='pytorch'):
        kh, kw = _pair(kernel_size, 'kernel_size')
        # torch.nn computes the fan from weight.shape[1] (= out_channels) for this layer.
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias,
                         weight_shape=(in_channels, out_channels, kh, kw),
                         fan_in=out_channels * kh * kw, fan_out=in_channels * kh * kw, init=init)
        self.output_padding = _pair(output_padding, 'output_padding')
        if any(op < 0 or (op >= s and op >= d) for op, s, d in
               zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError(f'TransposeConv2d: output_padding must be smaller than stride or '
                             f'dilation, got {self.output_padding}')

    def extra_repr(self):
        text = super().extra_repr()
        return text + (f', output_padding={self.output_padding}'
                       if self.output_padding != (0, 0) else '')

    def forward(self, input):
        x, unbatched = self._batched_input(input)
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self._geometry()
        ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + self.output_padding[0] + 1
        wo = (w - 1) * sw - 2 * pw + dw * (kw - 1) + self.output_padding[1] + 1
        if ho < 1 or wo < 1:
            self._fail(f'input of shape {tuple(input.shape)} gives an empty output '
                       f'({self.extra_repr()})')
        x2d = _channel_major(x)
        cols = self.weight.view(self.in_channels, -1).t().mm(x2d)
        y = _col2im(cols, (n, self.out_channels, ho, wo), *self._geometry())
        if self.bias is not None:
            y += self.bias.view(1, -1, 1, 1)
        self._saved = (x2d, x.shape, y.shape, unbatched)
        return self._unbatch(y, unbatched)

    def backward(self, gradwrtoutput):
        x2d, in_shape, out_shape, unbatched = self._saved_or_fail()
        g = self._batched_grad(gradwrtoutput, out_shape, unbatched)
        grad_cols = _im2col(g, *self._geometry())
        weight = self.weight.view(self.in_channels, -1)
        self.grads['weight'].view(self.in_channels, -1).addmm_(x2d, grad_cols.t())
        if self.bias is not None:
            self.grads['bias'] += g.sum((0, 2, 3))
        if not self.compute_input_grad:
            return None
        n, _, h, w = in_shape
        return self._unbatch(_batch_view(weight.mm(grad_cols), n, h, w), unbatched)


class NearestUpsampling(Module):
    """Nearest-neighbour upsampling by an integer factor; backward sums each s x s block."""

    def __init__(self, scale_factor=2):
        super().__init__()
        if not isinstance(scale_factor, int) or scale_factor < 1:
            raise ValueError(f'NearestUpsampling: scale_factor must be a positive int, '
                             f'got {scale_factor!r}')
        self.scale_factor = scale_factor

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
        return gradwrtoutput.reshape(*lead, h, s, w, s).sum((-3, -1))


def _phase_taps(like):
    """taps[r, p, i]: weight of 3x3 tap i in the 2-tap kernel of output phase r at offset p.

    After nearest x2 upsampling, output row 2a+r of a 3x3 'same' convolution reads input
    rows (a-1, a) with taps (w0, w1+w2) for r=0 and rows (a, a+1) with (w0+w1, w2) for r=1.
    """
    taps = like.new_zeros(2, 2, 3)
    taps[0, 0, 0] = taps[0, 1, 1] = taps[0, 1, 2] = 1
    taps[1, 0, 0] = taps[1, 0, 1] = taps[1, 1, 2] = 1
    return taps


class Upsampling(Conv2d):
    """Nearest-neighbour upsampling followed by a convolution; parameters are the conv's.

    Fast path (scale 2, 3x3 kernel, stride 1, padding 1): the four output phases are 2x2
    convolutions of the *small* input, whose kernels are sums of the 3x3 taps. One im2col of
    the small input and one GEMM with a (4*C_out, 4*C_in) weight replace an im2col of the 4x
    larger upsampled image and 2.25x more multiply-adds. Other settings take the plain path.
    """

    def __init__(self, in_channels, out_channels, kernel_size, scale_factor=2, stride=1,
                 padding=0, dilation=1, bias=True, *, init='pytorch'):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias,
                         init=init)
        self.upsample = NearestUpsampling(scale_factor)
        self.use_phases = (scale_factor == 2 and self.kernel_size == (3, 3) and
                           self.stride == (1, 1) and self.padding == (1, 1) and
                           self.dilation == (1, 1))

    def extra_repr(self):
        return super().extra_repr() + f', scale_factor={self.upsample.scale_factor}'

    def forward(self, input):
        if not self.use_phases:
            return super().forward(self.upsample(input))
        x, unbatched = self._batched_input(input)
        n, _, h, w = x.shape
        phase_geometry = ((2, 2), (1, 1), (1, 1), (1, 1))
        cols = _im2col(x, *phase_geometry, out=self._scratch(
            '_cols', 4 * self.in_channels, n * (h + 1) * (w + 1), x))
        bias = None if self.bias is None else self.bias.repeat(4)
        y = _affine(self._phase_weight(), bias, cols)   # rows (r, t, o), columns (n, a, b)
        self._saved = (cols, x.shape, unbatched)
        # Output pixel (2a+r, 2b+t) is phase (r, t) at window (a+r, b+t): one strided gather.
        y = y.view(2, 2, self.out_channels, n, h + 1, w + 1)
        s_r, s_t, s_o, s_n, s_a, s_b = y.stride()
        interleaved = y.as_strided((self.out_channels, n, h, 2, w, 2),
                                   (s_o, s_n, s_a, s_r + s_a, s_b, s_t + s_b))
        y = interleaved.reshape(self.out_channels, n * 2 * h * 2 * w)
        return self._unbatch(_batch_view(y, n, 2 * h, 2 * w), unbatched)

    def _phase_weight(self):
        """(O, C, 3, 3) weight -> (4*O, 4*C) phase weight: taps[r] @ w @ taps[t]^T."""
        taps = _phase_taps(self.weight)
        rows = taps.view(2, 1, 1, 1, 2, 3) @ self.weight
        w = rows @ taps.transpose(1, 2).view(1, 2, 1, 1, 3, 2)
        return w.reshape(4 * self.out_channels, 4 * self.in_channels)

    def backward(self, gradwrtoutput):
        if not self.use_phases:
            grad = super().backward(gradwrtoutput)
            return None if grad is None else self.upsample.backward(grad)
        cols, in_shape, unbatched = self._saved_or_fail()
        n, _, h, w = in_shape
        o = self.out_channels
        g = self._batched_grad(gradwrtoutput, (n, o, 2 * h, 2 * w), unbatched)
        # Scatter the output gradient onto the phase windows; unused windows stay zero.
        phase_grad = self._scratch('_phase_grad', 4 * o, n * (h + 1) * (w + 1), g)
        phase_grad.zero_()
        view = phase_grad.view(2, 2, o, n, h + 1, w + 1)
        s_r, s_t, s_o, s_n, s_a, s_b = view.stride()
        view.as_strided((o, n, h, 2, w, 2), (s_o, s_n, s_a, s_r + s_a, s_b, s_t + s_b)).copy_(
            g.transpose(0, 1).reshape(o, n, h, 2, w, 2))
        # dW: gradient of the phase weight, mapped back through the taps.
        grad_phase_w = phase_grad.mm(cols.t()).view(2, 2, o, self.in_channels, 2, 2)
        taps = _phase_taps(self.weight)
        grad_w = taps.transpose(1, 2).view(2, 1, 1, 1, 3, 2) @ grad_phase_w @ taps.view(1, 2, 1, 1, 2, 3)
        self.grads['weight'] += grad_w.sum((0, 1))
        if self.bias is not None:
            self.grads['bias'] += phase_grad.sum(1).view(4, o).sum(0)
        if not self.compute_input_grad:
            return None
        grad_cols = self._scratch('_grad_cols', cols.shape[0], cols.shape[1], g)
        grad_x = _col2im(grad_cols.addmm_(self._phase_weight().t(), phase_grad, beta=0), in_shape,
                         (2, 2), (1, 1), (1, 1), (1, 1))
        return self._unbatch(grad_x, unbatched)


# --------------------------------------------------------------------------------------
# Activations (element-wise: any shape)
# --------------------------------------------------------------------------------------

class _Elementwise(Module):
    """y = f(x) element-wise; backward multiplies by the derivative ``_slope`` saved in forward.

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
        output, slope = self._apply(input)
        self._saved = slope
        return output

    def backward(self, gradwrtoutput):
        slope = self._saved_or_fail()
        self._check_grad(gradwrtoutput, slope.shape)
        return gradwrtoutput * slope


class ReLU(_Elementwise):
    """max(x, 0); derivative 1[x > 0]."""

    def _apply(self, x):
        slope = (x > 0).to(x.dtype)
        return (x.mul_(slope) if self.inplace else x * slope), slope


class LeakyReLU(_Elementwise):
    """x if x > 0 else a*x; derivative 1 or a."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__(inplace)
        self.negative_slope = negative_slope

    def extra_repr(self):
        return f'negative_slope={self.negative_slope}' + (', inplace=True' if self.inplace else '')

    def _apply(self, x):
        slope = (x > 0).to(x.dtype).mul_(1 - self.negative_slope).add_(self.negative_slope)
        return (x.mul_(slope) if self.inplace else x * slope), slope


class ELU(_Elementwise):
    """x if x > 0 else a*(e^x - 1); derivative 1 or a*e^x."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__(inplace)
        self.alpha = alpha

    def extra_repr(self):
        return f'alpha={self.alpha}' + (', inplace=True' if self.inplace else '')

    def _apply(self, x):
        positive = x > 0
        exp = x.clamp_max(0).exp()
        slope = exp.mul_(self.alpha).masked_fill_(positive, 1)   # a*e^x, or 1 where x > 0
        negative_part = (slope - self.alpha).masked_fill_(positive, 0)  # a*(e^x - 1)
        output = x.clamp_(min=0) if self.inplace else x.clamp_min(0)
        return output.add_(negative_part), slope


class Sigmoid(_Elementwise):
    """1 / (1 + e^-x), evaluated through e^-|x| so it never overflows; derivative s(1 - s)."""

    def _apply(self, x):
        e = (-x.abs()).exp()
        s = (x >= 0).to(x.dtype).mul_(1 - e).add_(e).div_(1 + e)   # 1/(1+e) or e/(1+e)
        output = x.copy_(s) if self.inplace else s
        return output, s * (1 - s)


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
        scale = 2 / difference.numel()
        if gradwrtoutput is not None:
            if gradwrtoutput.numel() != 1:
                self._fail(f'the loss is a scalar: its gradient must have one element, '
                           f'got shape {tuple(gradwrtoutput.shape)}')
            return difference * (scale * gradwrtoutput.reshape(()))
        return difference * scale


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
                state['momentum_buffer'].mul_(momentum).add_(grad, alpha=1 - self.hyper['dampening'])
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
        self.modules = list(modules)

    def __getitem__(self, index):
        return self.modules[index]

    def __len__(self):
        return len(self.modules)

    def __iter__(self):
        return iter(self.modules)

    def forward(self, input):
        for module in self.modules:
            input = module(input)
        return input

    def backward(self, gradwrtoutput):
        for module in reversed(self.modules):
            if gradwrtoutput is None:  # an earlier layer has compute_input_grad = False
                break
            gradwrtoutput = module.backward(gradwrtoutput)
        return gradwrtoutput


class Concat(Sequential):
    """U-Net skip: [x, body(x)] stacked along channels; dx = dy[:C] + body.backward(dy[C:])."""

    def forward(self, input):
        output = super().forward(input)
        c = input.shape[-3]
        if output.shape[:-3] != input.shape[:-3] or output.shape[-2:] != input.shape[-2:]:
            self._fail(f'the body maps {tuple(input.shape)} to {tuple(output.shape)}: '
                       f'batch and image size must stay the same to concatenate')
        self._saved = (c, tuple(output.shape))
        # Stacking the channel-major views along dim 0 keeps the result channel-major.
        return cat([input.transpose(0, -3), output.transpose(0, -3)]).transpose(0, -3)

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
