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

from Miniproject_2 import model as model_module
from Miniproject_2.model import MSE, Adam, Model, chunk_bytes, pixel_pairs, zeroes_whole_padding

META = torch.device('meta')


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
def test_training_step_on_the_meta_device(architecture, chunks, monkeypatch):
    if chunks == 'small':  # the CPU's chunk loops, a few pixel rows at a time, and pairs
        monkeypatch.setattr(model_module, 'chunk_bytes', lambda device: 4096)
        monkeypatch.setattr(model_module, 'pixel_pairs', lambda device: True)
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
def test_predict_on_the_meta_device(architecture, monkeypatch):
    monkeypatch.setattr(model_module, 'pixel_pairs', lambda device: True)  # as on a CPU
    model = meta_model(architecture)
    images = torch.empty(2, 3, 100, 90, dtype=torch.uint8, device=META)
    with OnlyOn(META):  # tiles of 16 so that predict pads and tiles a 100x90 image
        output = model.predict(images, tile=16, symmetries=2)
    assert output.device == META and output.shape == images.shape


def test_chunks_fit_a_cpu_cache_and_span_the_batch_elsewhere():
    assert chunk_bytes(torch.device('cpu')) == 2 << 20
    assert chunk_bytes(torch.device('cuda')) is None
    assert chunk_bytes(META) is None


def test_pixel_pairs_only_where_measured():
    assert pixel_pairs(torch.device('cpu'))
    assert not pixel_pairs(torch.device('cuda')) and not pixel_pairs(META)


def test_padding_zeroed_at_its_borders_only_where_measured():
    cpu = torch.device('cpu')
    assert zeroes_whole_padding(1 << 20, cpu) and not zeroes_whole_padding((1 << 20) + 1, cpu)
    assert zeroes_whole_padding(1 << 30, torch.device('cuda'))
    assert zeroes_whole_padding(1 << 30, META)
