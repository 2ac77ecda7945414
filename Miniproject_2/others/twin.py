"""The torch.nn twin of a network built with our framework: same layers, same weights.

The benchmark times the two against each other and the comparison trains the twin with
autograd; both need the twin to compute exactly what our network computes.
"""
import torch
from torch import nn

from Miniproject_2 import model as ours


class _Concat(nn.Sequential):
    def forward(self, x):
        return torch.cat([x, super().forward(x)], dim=-3)


class _Residual(nn.Sequential):
    def forward(self, x):
        return x + super().forward(x)


def _conv_args(layer):
    return dict(in_channels=layer.in_channels, out_channels=layer.out_channels,
                kernel_size=layer.kernel_size, stride=layer.stride, padding=layer.padding,
                dilation=layer.dilation, bias=layer.bias is not None)


def torch_twin(module):
    """Build the torch.nn module that computes what ``module`` computes, with its weights."""
    if isinstance(module, ours.Conv2d):
        twin = nn.Conv2d(**_conv_args(module))
    elif isinstance(module, ours.Upsampling):  # the upsampling, then its convolution
        convolution = nn.Conv2d(**_conv_args(module))
        _copy_parameters(module, convolution)
        return nn.Sequential(nn.Upsample(scale_factor=module.upsample.scale_factor,
                                         mode='nearest'), convolution)
    elif isinstance(module, ours.TransposeConv2d):
        twin = nn.ConvTranspose2d(output_padding=module.output_padding, **_conv_args(module))
    elif isinstance(module, (ours.Concat, ours.Residual, ours.Sequential)):
        container = {ours.Concat: _Concat, ours.Residual: _Residual}.get(type(module),
                                                                          nn.Sequential)
        return container(*(torch_twin(child) for child in module))
    else:
        return _activation_twin(module)
    _copy_parameters(module, twin)
    return twin


def _activation_twin(module):
    if isinstance(module, ours.ReLU):
        return nn.ReLU(inplace=module.inplace)
    if isinstance(module, ours.LeakyReLU):
        return nn.LeakyReLU(module.negative_slope, inplace=module.inplace)
    if isinstance(module, ours.ELU):
        return nn.ELU(module.alpha, inplace=module.inplace)
    if isinstance(module, ours.Sigmoid):
        return nn.Sigmoid()
    raise TypeError(f'no torch.nn twin for {type(module).__name__}')


def _copy_parameters(source, target):
    with torch.no_grad():
        target.weight.copy_(source.weight)
        if source.bias is not None:
            target.bias.copy_(source.bias)


class _TorchAdam:
    """torch.optim.Adam behind the interface Model's training loop drives (``lr``, ...)."""

    def __init__(self, parameters, lr, betas):
        self.optimizer = torch.optim.Adam(parameters, lr=lr, betas=betas)

    @property
    def lr(self):
        return self.optimizer.param_groups[0]['lr']

    @lr.setter
    def lr(self, value):
        for group in self.optimizer.param_groups:
            group['lr'] = value

    def zero_grad(self):
        self.optimizer.zero_grad()

    def step(self):
        self.optimizer.step()

    def state_dict(self):
        return self.optimizer.state_dict()

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state)


class TwinDenoiser(ours.Denoiser):
    """``Denoiser`` with the torch.nn twin of its network."""

    def __init__(self, architecture=None, device=None):
        super().__init__(architecture, device)
        self.network = torch_twin(self.network).to(self.device)

    def forward_only(self):
        return torch.no_grad()


class TwinTrainer(ours.Trainer):
    """``Trainer`` whose steps are autograd's and torch.optim.Adam's: the loss's forward is
    ours (tensor operations only), its gradient and the network's come from autograd."""

    def make_optimizer(self):
        return _TorchAdam(self.denoiser.network.parameters(), self.peak_lr, self.recipe.betas)

    def step(self, x, y, **per_pair):
        optimizer = self.optimizer
        optimizer.zero_grad()
        loss = self.loss.forward(self.denoiser.network(x), y, **per_pair)
        loss.backward()
        optimizer.step()
        return loss.item()


class TorchTwinModel(ours.Model):
    """``Model`` with its network replaced by the torch.nn twin, trained by autograd:
    the same recipe, data order and augmentations, only the framework differs."""

    DENOISER, TRAINER = TwinDenoiser, TwinTrainer
