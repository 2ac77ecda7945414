"""The course grader's own block checks, with torch.allclose's DEFAULT tolerances, over 200
seeds; on one small image, torch's own bits, forward and backward, for every layer with a
convolution; and the whole framework working with autograd switched off, as the grader runs
it."""
import pytest
import torch
import torch.nn.functional as F

from Miniproject_2.model import (MSE, SGD, Conv2d, ReLU, Sequential, Sigmoid,
                                 TransposeConv2d, Upsampling)
import strategies  # noqa: F401  (its import limits torch to one intra-op thread)

SEEDS = range(200)


def grader_input(seed):
    torch.manual_seed(seed)
    x = torch.randn(1, 3, 32, 32)
    conv = Conv2d(3, 3, 3)
    return x, conv


@pytest.mark.parametrize('grad_enabled', [True, False])
def test_grader_conv2d(grad_enabled):
    """As the grader writes it: one module, its own weight and bias in the reference."""
    failures = []
    with torch.set_grad_enabled(grad_enabled):
        for seed in SEEDS:
            x, conv = grader_input(seed)
            if not torch.allclose(conv.forward(x), F.conv2d(x, conv.weight, conv.bias)):
                failures.append(seed)
    assert not failures, f'conv2d differs for seeds {failures}'


def test_grader_conv2d_is_bitwise_equal():
    """What the README claims for the grader's case: not just close, the same bits."""
    for seed in SEEDS:
        x, conv = grader_input(seed)
        assert torch.equal(conv.forward(x), F.conv2d(x, conv.weight, conv.bias)), seed


def autograd_reference(function, x, module):
    """function(x, weight, bias) and its gradients by autograd, from ``module``'s parameters,
    for the output gradient ``grad`` returned alongside."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, module.weight, module.bias)]
    output = function(*leaves)
    grad = torch.randn_like(output)
    output.backward(grad)
    return output.detach(), grad, [leaf.grad for leaf in leaves]


def assert_same_bits_as(function, module, x):
    expected, grad, expected_grads = autograd_reference(function, x, module)
    assert torch.equal(module.forward(x), expected)
    module.zero_grad()
    grads = [module.backward(grad)] + [g for _, g in module.param()]
    for name, ours, theirs in zip(('input', 'weight', 'bias'), grads, expected_grads):
        assert torch.equal(ours, theirs), f'{name} gradient'


@pytest.mark.parametrize('arguments', [dict(in_channels=3, out_channels=3, kernel_size=3),
                                       dict(in_channels=3, out_channels=4, kernel_size=3,
                                            stride=2, padding=1),
                                       dict(in_channels=2, out_channels=8, kernel_size=(3, 2),
                                            dilation=2),
                                       dict(in_channels=5, out_channels=1, kernel_size=1)])
def test_one_image_convolutions_get_the_bits_of_f_conv2d(arguments):
    """Wherever F.conv2d computes one image with one GEMM (here: at most 20480 values, and a
    kernel of at most 3 on a side), Conv2d makes the same products, forward and backward."""
    for seed in range(10):
        torch.manual_seed(seed)
        conv = Conv2d(**arguments)
        x = torch.randn(1, arguments['in_channels'], 24, 20)
        assert_same_bits_as(lambda x, w, b: F.conv2d(x, w, b, conv.stride, conv.padding,
                                                     conv.dilation), conv, x)


@pytest.mark.parametrize('arguments', [dict(kernel_size=3),
                                       dict(kernel_size=3, stride=2, padding=1, output_padding=1),
                                       dict(kernel_size=(2, 3), stride=2, dilation=(1, 2))])
def test_one_image_transposed_convolutions_get_the_bits_of_conv_transpose2d(arguments):
    """As F.conv_transpose2d computes one image with kernels of at most 3 on a side."""
    for seed in range(10):
        torch.manual_seed(seed)
        conv = TransposeConv2d(3, 4, **arguments)
        assert_same_bits_as(lambda x, w, b: F.conv_transpose2d(
            x, w, b, conv.stride, conv.padding, conv.output_padding, 1, conv.dilation),
            conv, torch.randn(1, 3, 17, 14))


def test_one_image_upsampling_gets_the_bits_of_interpolate_then_conv2d():
    for seed in range(10):
        torch.manual_seed(seed)
        upsampling = Upsampling(3, 4, 3, scale_factor=2, padding=1)
        assert_same_bits_as(lambda x, w, b: F.conv2d(F.interpolate(x, scale_factor=2), w, b,
                                                     padding=1),
                            upsampling, torch.randn(1, 3, 32, 32))


def test_grader_sigmoid():
    failures = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        x = torch.randn(1, 3, 32, 32)
        if not torch.allclose(Sigmoid().forward(x), torch.sigmoid(x)):
            failures.append(seed)
    assert not failures, f'sigmoid differs for seeds {failures}'


def test_grader_sequential():
    failures = []
    for seed in SEEDS:
        x, conv = grader_input(seed)
        sigmoid = Sigmoid()
        model = Sequential(conv, sigmoid)
        expected = torch.sigmoid(F.conv2d(x, conv.weight, conv.bias))
        if not torch.allclose(model.forward(x), expected):
            failures.append(seed)
    assert not failures, f'Sequential(conv, sigmoid) differs for seeds {failures}'


def train(steps=20):
    """A few SGD steps of a small denoiser-shaped network on MSE; returns the losses."""
    torch.manual_seed(0)
    model = Sequential(Conv2d(3, 8, 3, stride=2, padding=1), ReLU(),
                       Upsampling(8, 3, 3, padding=1), Sigmoid())
    optimizer = SGD(model.param(), lr=1.0, momentum=0.9)
    loss_fn = MSE()
    # Smooth images (2x2 blocks), which the stride-2 bottleneck can reproduce.
    x = torch.rand(4, 3, 8, 8).repeat_interleave(2, 2).repeat_interleave(2, 3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        prediction = model.forward(x)
        assert not prediction.requires_grad
        losses.append(loss_fn.forward(prediction, x).item())
        model.backward(loss_fn.backward())
        optimizer.step()
    return losses


def test_trains_with_autograd_disabled():
    previous = torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:
        losses = train()
        assert not torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(previous)
    assert torch.is_grad_enabled() == previous
    assert all(loss == loss for loss in losses), f'nan loss: {losses}'
    assert losses[-1] < 0.85 * losses[0], f'the loss did not decrease: {losses}'
    assert train() == losses   # grad mode changes nothing: same losses with autograd on
