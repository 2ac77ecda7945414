"""The torch.nn twin trains like our Model: same initial weights, data order, augmentations
and loss (plain MSE or ClippedMSE), only the gradients come from autograd."""
import pytest
import torch

import strategies  # noqa: F401  (its import limits torch to one intra-op thread)
from Miniproject_2.model import Model, Recipe
from Miniproject_2.others.twin import TorchTwinModel

TINY = dict(widths=(8, 16))


def trained_weights(model_class, clipped_noise):
    torch.manual_seed(0)
    model = model_class(Recipe(batch_size=16, warmup_steps=1, clipped_noise=clipped_noise),
                        **TINY)
    generator = torch.Generator().manual_seed(1)
    clean = torch.randint(0, 256, (64, 3, 16, 16), generator=generator).float()
    noisy = [(clean + 30 * torch.randn(clean.shape, generator=generator)).round().clamp(0, 255)
             for _ in range(2)]
    model.train(noisy[0], noisy[1], 1, log=False)
    network = model.denoiser.network
    parameters = (network.parameters() if model_class is TorchTwinModel
                  else (p for p, _ in network.param()))
    return [p.detach().clone() for p in parameters]


def max_difference(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize('clipped_noise', [False, True])
def test_the_twin_trains_like_ours(clipped_noise):
    ours = trained_weights(Model, clipped_noise)
    twin = trained_weights(TorchTwinModel, clipped_noise)
    other_loss = trained_weights(Model, not clipped_noise)
    assert max_difference(ours, twin) < 1e-5  # measured: 2e-7 at most
    assert max_difference(ours, other_loss) > 1e-3, 'the loss choice did not matter'
