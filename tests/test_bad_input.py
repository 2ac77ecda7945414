"""Bad input fails loudly, with a ValueError (TypeError for dtypes) that names the module at
fault; invalid constructor arguments raise ValueError."""
import re

import pytest
import torch

from Miniproject_2.model import (ELU, MSE, Concat, Conv2d, LeakyReLU, NearestUpsampling, ReLU,
                                 Residual, Sequential, Sigmoid, TransposeConv2d, Upsampling)


def names(cls_name):
    """The message names the class as a word ('Upsampling' does not match 'NearestUpsampling')."""
    return re.compile(rf'(?<![A-Za-z0-9_]){cls_name}\b')


def raises(exception, cls_name):
    return pytest.raises(exception, match=names(cls_name))


# Layers taking (N, 3, H, W) or (3, H, W) images; the name their errors must carry.
IMAGE_MODULES = {
    'Conv2d': lambda: Conv2d(3, 2, 3, padding=1),
    'TransposeConv2d': lambda: TransposeConv2d(3, 2, 3, stride=2, padding=1, output_padding=1),
    'Upsampling': lambda: Upsampling(3, 2, 3, padding=1),                     # phase path
    'Upsampling-plain': lambda: Upsampling(3, 2, 3, scale_factor=3, padding=1),
    'NearestUpsampling': lambda: NearestUpsampling(2),
}
ELEMENTWISE = {'ReLU': ReLU, 'LeakyReLU': LeakyReLU, 'ELU': ELU, 'Sigmoid': Sigmoid}
WEIGHTED = [key for key in IMAGE_MODULES if key != 'NearestUpsampling']


def class_name(key):
    return key.split('-')[0]


# --------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize('key', sorted(IMAGE_MODULES))
@pytest.mark.parametrize('shape', [(3, 8), (1, 1, 3, 8, 8), (8,)])
def test_wrong_rank(key, shape):
    with raises(ValueError, class_name(key)):
        IMAGE_MODULES[key]().forward(torch.zeros(shape))


@pytest.mark.parametrize('key', WEIGHTED)
@pytest.mark.parametrize('shape', [(2, 4, 6, 6), (4, 6, 6), (1, 1, 6, 6)])
def test_channel_count_must_match_in_channels(key, shape):
    with raises(ValueError, class_name(key)):
        IMAGE_MODULES[key]().forward(torch.zeros(shape))


@pytest.mark.parametrize('make, shape, name', [
    (lambda: Conv2d(1, 1, 5), (1, 1, 3, 3), 'Conv2d'),
    (lambda: Conv2d(1, 1, 5, padding=1), (1, 2, 2), 'Conv2d'),
    (lambda: Conv2d(1, 1, (1, 4), padding=(0, 1)), (1, 1, 5, 1), 'Conv2d'),
    (lambda: Conv2d(1, 1, 3, dilation=3), (1, 1, 6, 6), 'Conv2d'),
    (lambda: Upsampling(1, 1, 7, scale_factor=2), (1, 1, 3, 3), 'Upsampling'),
    (lambda: TransposeConv2d(1, 1, 1, padding=1), (1, 1, 1, 1), 'TransposeConv2d'),
    (lambda: TransposeConv2d(1, 1, 2, padding=2), (1, 1, 2, 2), 'TransposeConv2d')])
def test_kernel_larger_than_padded_input(make, shape, name):
    with raises(ValueError, name):
        make().forward(torch.zeros(shape))


# --------------------------------------------------------------------------------------
# Dtypes
# --------------------------------------------------------------------------------------

BAD_DTYPES = [torch.int64, torch.uint8, torch.bool]


@pytest.mark.parametrize('key', sorted(IMAGE_MODULES))
@pytest.mark.parametrize('dtype', BAD_DTYPES)
def test_integer_and_bool_images_are_refused(key, dtype):
    with raises(TypeError, class_name(key)):
        IMAGE_MODULES[key]().forward(torch.zeros(2, 3, 6, 6, dtype=dtype))


@pytest.mark.parametrize('name', sorted(ELEMENTWISE))
@pytest.mark.parametrize('dtype', BAD_DTYPES)
def test_integer_and_bool_activation_inputs_are_refused(name, dtype):
    with raises(TypeError, name):
        ELEMENTWISE[name]().forward(torch.zeros(2, 3, dtype=dtype))


@pytest.mark.parametrize('dtype', BAD_DTYPES)
def test_integer_and_bool_loss_inputs_are_refused(dtype):
    with raises(TypeError, 'MSE'):
        MSE().forward(torch.zeros(4, dtype=dtype), torch.zeros(4))
    with raises(TypeError, 'MSE'):
        MSE().forward(torch.zeros(4), torch.zeros(4, dtype=dtype))


@pytest.mark.parametrize('key', WEIGHTED)
def test_float64_input_into_float32_weights(key):
    with raises(TypeError, class_name(key)):
        IMAGE_MODULES[key]().forward(torch.zeros(2, 3, 6, 6, dtype=torch.float64))
    module = IMAGE_MODULES[key]().to(dtype=torch.float64)   # and the reverse
    with raises(TypeError, class_name(key)):
        module.forward(torch.zeros(2, 3, 6, 6))


def test_non_tensor_input():
    with raises(TypeError, 'Conv2d'):
        Conv2d(3, 2, 3).forward([[1.0]])
    with raises(TypeError, 'ReLU'):
        ReLU().forward(1.0)


# --------------------------------------------------------------------------------------
# backward: before forward, wrong gradient shape
# --------------------------------------------------------------------------------------

# (name at fault, module factory, valid input shape) for every kind, containers included.
EVERY = ([(class_name(key), make, (2, 3, 6, 6)) for key, make in IMAGE_MODULES.items()]
         + [(name, make, (2, 3, 4)) for name, make in ELEMENTWISE.items()]
         + [('Conv2d', lambda: Sequential(ReLU(), Conv2d(3, 2, 1)), (2, 3, 6, 6)),
            ('Concat', lambda: Concat(Conv2d(3, 2, 1), ReLU()), (2, 3, 6, 6)),
            ('Residual', lambda: Residual(Conv2d(3, 3, 1), ReLU()), (2, 3, 6, 6))])
EVERY_IDS = [f'{type(make()).__name__}-{i}' for i, (_, make, _) in enumerate(EVERY)]


@pytest.mark.parametrize('name, make, shape', EVERY, ids=EVERY_IDS)
def test_backward_before_forward(name, make, shape):
    with raises(ValueError, name):
        make().backward(torch.zeros(2, 2, 6, 6))


@pytest.mark.parametrize('name, make, shape', EVERY, ids=EVERY_IDS)
def test_gradient_of_the_wrong_shape(name, make, shape):
    module = make()
    y = module.forward(torch.randn(shape))
    for bad in (y.shape[:-1] + (y.shape[-1] + 1,), y.shape[1:], (1,) + tuple(y.shape)):
        with raises(ValueError, name):
            module.backward(torch.zeros(bad))
    module.backward(torch.zeros_like(y))   # the right shape still works afterwards


@pytest.mark.parametrize('name, make, shape', EVERY, ids=EVERY_IDS)
def test_gradient_of_integer_dtype(name, make, shape):
    module = make()
    y = module.forward(torch.randn(shape))
    with raises(TypeError, name):
        module.backward(torch.zeros(y.shape, dtype=torch.int64))


def test_mse_backward_errors():
    with raises(ValueError, 'MSE'):
        MSE().backward()
    loss = MSE()
    loss.forward(torch.zeros(3), torch.ones(3))
    with raises(ValueError, 'MSE'):
        loss.backward(torch.ones(3))
    with raises(ValueError, 'MSE'):
        MSE().forward(torch.zeros(0), torch.zeros(0))


def test_container_bodies_must_keep_the_shape():
    with raises(ValueError, 'Concat'):
        Concat(Conv2d(3, 2, 3)).forward(torch.zeros(1, 3, 6, 6))   # 6x6 -> 4x4
    with raises(ValueError, 'Residual'):
        Residual(Conv2d(3, 2, 1)).forward(torch.zeros(1, 3, 6, 6))  # 3 -> 2 channels


# --------------------------------------------------------------------------------------
# Constructors
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize('make', [
    lambda: Conv2d(3, 2, 3, padding=-1),
    lambda: Conv2d(3, 2, 3, padding=(0, -1)),
    lambda: Conv2d(3, 2, 3, stride=0),
    lambda: Conv2d(3, 2, 3, stride=(1, 0)),
    lambda: Conv2d(3, 2, 0),
    lambda: Conv2d(3, 2, (3, 0)),
    lambda: Conv2d(3, 2, 3, dilation=0),
    lambda: Conv2d(3, 2, (1, 2, 3)),
    lambda: Conv2d(0, 2, 3),
    lambda: Conv2d(3, -1, 3),
    lambda: Conv2d(3, 2, 3, init='glorot'),
    lambda: TransposeConv2d(3, 2, 3, stride=0),
    lambda: TransposeConv2d(3, 2, 3, padding=-1),
    lambda: TransposeConv2d(3, 2, 0),
    lambda: TransposeConv2d(3, 2, 3, init='uniform'),
    lambda: TransposeConv2d(3, 2, 3, stride=2, output_padding=2),
    lambda: TransposeConv2d(3, 2, 3, stride=2, dilation=2, output_padding=2),
    lambda: TransposeConv2d(3, 2, 3, stride=(2, 1), output_padding=(1, 1)),
    lambda: TransposeConv2d(3, 2, 3, output_padding=-1),
    lambda: Upsampling(3, 2, 3, scale_factor=0),
    lambda: Upsampling(3, 2, 3, padding=-1),
    lambda: Upsampling(3, 2, 3, stride=0),
    lambda: NearestUpsampling(0),
    lambda: NearestUpsampling(1.5)])
def test_invalid_constructor_arguments(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize('kernel_size', [2.5, '3', None])
def test_non_integer_kernel_size(kernel_size):
    with pytest.raises((ValueError, TypeError)):
        Conv2d(3, 2, kernel_size)
