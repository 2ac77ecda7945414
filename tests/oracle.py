"""PyTorch autograd as the oracle: run one of our modules and its torch.nn.functional twin on
the same input, parameters and output gradient, and compare output, input gradient and every
parameter gradient. Autograd is allowed here (tests), never in ``Miniproject_2/model.py``.
"""
import torch
import torch.nn.functional as F

from Miniproject_2.model import (ELU, Concat, Conv2d, LeakyReLU, NearestUpsampling, ReLU,
                                 Residual, Sequential, Sigmoid, TransposeConv2d, Upsampling)
from strategies import random_tensor

TOLERANCES = {torch.float32: dict(rtol=1e-4, atol=1e-5),
              torch.float64: dict(rtol=1e-10, atol=1e-10)}


def assert_close(actual, expected, what=''):
    """``torch.testing.assert_close`` with the suite's explicit per-dtype tolerances; the
    absolute one scales with the tensor's largest element, because the rounding error of a
    sum (a convolution's weight gradient: hundreds of terms) scales with its terms, not with
    an element where they happen to cancel."""
    tolerance = dict(TOLERANCES[expected.dtype])
    if expected.numel():
        tolerance['atol'] *= max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual, expected, **tolerance,
                               msg=lambda message: f'{what}: {message}')


def max_abs_diff(a, b):
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def named_grads(module):
    """{name: gradient}, with the dotted names of ``named_parameters``."""
    names = [name for name, _ in module.named_parameters()]
    return dict(zip(names, (grad for _, grad in module.param())))


# --------------------------------------------------------------------------------------
# The torch.nn.functional twin of any of our modules (containers included)
# --------------------------------------------------------------------------------------

def _on_batch(function, x):
    """F.interpolate reads a 3-D tensor as (N, C, L): give it a batch of one."""
    return function(x.unsqueeze(0)).squeeze(0) if x.dim() == 3 else function(x)


def reference(module, x, params, prefix=''):
    """What ``module.forward(x)`` computes, written with autograd-tracked torch ops;
    ``params`` maps our dotted parameter names to the tensors to use."""
    weight, bias = params.get(prefix + 'weight'), params.get(prefix + 'bias')
    if isinstance(module, Conv2d):
        return F.conv2d(x, weight, bias, module.stride, module.padding, module.dilation)
    if isinstance(module, TransposeConv2d):
        return F.conv_transpose2d(x, weight, bias, module.stride, module.padding,
                                  module.output_padding, 1, module.dilation)
    if isinstance(module, Upsampling):
        up = reference(module.upsample, x, params)
        return F.conv2d(up, weight, bias, module.stride, module.padding, module.dilation)
    if isinstance(module, NearestUpsampling):
        f = module.scale_factor
        return _on_batch(lambda b: F.interpolate(b, scale_factor=f, mode='nearest'), x)
    if isinstance(module, ReLU):
        return F.relu(x)
    if isinstance(module, LeakyReLU):
        return F.leaky_relu(x, module.negative_slope)
    if isinstance(module, ELU):
        return F.elu(x, module.alpha)
    if isinstance(module, Sigmoid):
        return torch.sigmoid(x)
    if isinstance(module, Concat):
        return torch.cat([x, _chain(module, x, params, prefix)], dim=-3)
    if isinstance(module, Residual):
        return x + _chain(module, x, params, prefix)
    if isinstance(module, Sequential):
        return _chain(module, x, params, prefix)
    raise TypeError(f'no reference for {type(module).__name__}')


def _chain(container, x, params, prefix):
    for index, child in enumerate(container):
        x = reference(child, x, params, f'{prefix}{index}.')
    return x


# --------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------

def check_against_autograd(module, x, seed=0, inplace=False):
    """Run ``module`` forward then backward on ``x`` with a random output gradient, and the
    autograd reference on the same input, parameters and output gradient.

    Asserts (with the per-dtype tolerances) that output, input gradient and every parameter
    gradient agree, that our module modified neither the output gradient nor (unless
    ``inplace``) its input, and returns the max absolute differences by name:
    ``output``, ``input_grad``, then each parameter name (``weight``, ``bias``, ``0.weight``...).
    """
    params = {name: p.detach().clone() for name, p in module.named_parameters()}
    module.zero_grad()
    x_ours = x.clone()
    y = module.forward(x_ours)
    grad_output = random_tensor(seed, tuple(y.shape), y.dtype)
    grad_output_ours = grad_output.clone()
    grad_input = module.backward(grad_output_ours)
    grads = named_grads(module)

    with torch.enable_grad():
        # torch's own CPU convolution can segfault on channels-last input (torch 2.13: a
        # 3x3x10x1 batch, dilation 2, crashes within 20k calls), so the oracle reads a
        # contiguous copy; our module still gets ``x`` in whatever layout the test chose.
        x_ref = x.clone(memory_format=torch.contiguous_format).requires_grad_()
        p_ref = {name: p.clone().requires_grad_() for name, p in params.items()}
        y_ref = reference(module, x_ref, p_ref)
        y_ref.backward(grad_output)

    name = type(module).__name__
    assert_close(y, y_ref.detach(), f'{name} output')
    assert grad_input is not None, f'{name}.backward returned None'
    assert_close(grad_input, x_ref.grad, f'{name} input gradient')
    assert grads.keys() == p_ref.keys()
    for param_name, grad in grads.items():
        assert_close(grad, p_ref[param_name].grad, f'{name} gradient of {param_name}')
    assert torch.equal(grad_output_ours, grad_output), f'{name}.backward modified its argument'
    if not inplace:
        assert torch.equal(x_ours, x), f'{name}.forward modified its input'
    for param_name, p in module.named_parameters():
        assert torch.equal(p, params[param_name]), f'{name} changed parameter {param_name}'

    differences = {'output': max_abs_diff(y, y_ref.detach()),
                   'input_grad': max_abs_diff(grad_input, x_ref.grad)}
    differences.update({n: max_abs_diff(g, p_ref[n].grad) for n, g in grads.items()})
    return differences
