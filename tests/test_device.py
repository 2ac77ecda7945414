"""Device-clean: the framework creates every tensor on its input's device.

The course wants code that runs on a CPU and on a GPU without change, and a tensor made on
the default device (or copied to the CPU) is a bug only a GPU would show. The meta device
shows it on any machine: its tensors have shapes and no data, so a copy to the CPU fails,
and every operation the framework runs is watched for a tensor on another device.
"""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from Miniproject_2.model import MSE, Adam, Model, Upsampling, tuning

META = torch.device('meta')
CPU = tuning(torch.device('cpu'))


class OnlyOn(TorchDispatchMode):
    """Fails any operation that reads or makes a tensor on a device other than ``device``."""

    def __init__(self, device):
        super().__init__()
        self.device = device

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        devices = {t.device for t in tree_flatten((args, kwargs, output))[0]
                   if isinstance(t, torch.Tensor)}
        assert devices <= {self.device}, f'{func} ran on {sorted(map(str, devices))}'
        return output


def test_the_watch_catches_a_tensor_on_the_default_device():
    x = torch.empty(3, 4, device=META)
    with pytest.raises(AssertionError, match='cpu'):
        with OnlyOn(META):
            x.t().mm(torch.ones(3, 4))  # meta's mm alone would not complain


ARCHITECTURES = [dict(widths=(12, 8, 8)),  # 12 channels: pixel pairs where they are on
                 dict(widths=(8, 8), upsampling='transpose', skip='add', residual=False,
                      activation='elu'),
                 dict(network='baseline', widths=(8,))]


def meta_model(architecture):
    model = Model(**architecture)
    model.denoiser.device = META
    model.denoiser.network.to(META)
    return model


@pytest.mark.parametrize('architecture', ARCHITECTURES, ids=['unet', 'variant', 'baseline'])
@pytest.mark.parametrize('chunks', ['device', 'small'])
def test_training_step_on_the_meta_device(architecture, chunks, tune):
    if chunks == 'small':  # the CPU's chunk loops, a few pixel rows at a time, and pairs
        tune(chunk_bytes=4096, paired_channels=CPU.paired_channels)
    network = meta_model(architecture).denoiser.network
    x, y = torch.empty(4, 3, 16, 16, device=META), torch.empty(4, 3, 16, 16, device=META)
    with OnlyOn(META):
        loss, optimizer = MSE(), Adam(network.param())
        optimizer.zero_grad()
        loss(network(x), y)
        network.backward(loss.backward())
        optimizer.step()
    tensors = [t for pair in network.param() for t in pair]
    tensors += [t for state in optimizer.state for t in state.values()]
    assert tensors and all(t.device == META for t in tensors)


@pytest.mark.parametrize('architecture', ARCHITECTURES, ids=['unet', 'variant', 'baseline'])
def test_predict_on_the_meta_device(architecture, tune):
    tune(paired_channels=CPU.paired_channels)  # as on a CPU
    model = meta_model(architecture)
    images = torch.empty(2, 3, 100, 90, dtype=torch.uint8, device=META)
    with OnlyOn(META):  # tiles of 16 so that predict pads and tiles a 100x90 image
        output = model.predict(images, tile=16, symmetries=2)
    assert output.device == META and output.shape == images.shape


def test_upsampling_phase_kernels_move_with_the_weight():
    """The phase kernels are kept between passes, on the weight's device: after ``to``, the
    next pass makes them anew there."""
    module = Upsampling(2, 3, 3, padding=1)
    module(torch.randn(2, 2, 5, 6))  # kernels made on the CPU
    module.to(META)
    with OnlyOn(META):
        y = module(torch.empty(2, 2, 5, 6, device=META))
        module.backward(torch.empty_like(y))


def test_one_tuning_record_per_kind_of_device():
    """A CPU's record: chunks that fit its cache, pairs and border-only padding where they
    were measured; elsewhere, where none of that was measured: the whole batch at once,
    no pairs, padding zeroed whole."""
    assert CPU.chunk_bytes == 2 << 20 and CPU.paired_channels == (9, 24)
    assert CPU.whole_padding_values == 1 << 20
    for device in (torch.device('cuda'), META):
        other = tuning(device)
        assert other.chunk_bytes is None and other.paired_channels is None
        assert other.whole_padding_values == float('inf')
        assert other.activation_part_values is None
        assert other.torch_bits_values == CPU.torch_bits_values
