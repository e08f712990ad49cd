"""Building blocks in pix2pixHD notation (c7s1-k, dk, Rk, uk) shared by E and G."""
from __future__ import annotations

import torch
from torch import nn

from .upsampling import upsampling_conv


class SwitchableNorm(nn.Module):
    """Instance normalisation that can switch to fixed, running statistics.

    docs/method.md: in the second half of training the generator uses fixed
    statistics (batch-norm eval mode), which reduced artifacts and colour shift.
    While ``fixed`` is False it behaves like affine instance norm and, in
    training mode, tracks the batch mean of the instance statistics.
    """

    def __init__(self, channels: int, momentum: float = 0.01, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.momentum = momentum
        self.eps = eps
        self.fixed = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fixed:
            mean = self.running_mean.view(1, -1, 1, 1)
            var = self.running_var.view(1, -1, 1, 1)
        else:
            mean = x.mean(dim=(2, 3), keepdim=True)
            var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
            if self.training:
                with torch.no_grad():  # statistics stay float32 when the activations are bf16 (autocast)
                    self.running_mean.lerp_(mean.mean(dim=0).flatten().to(self.running_mean.dtype), self.momentum)
                    self.running_var.lerp_(var.mean(dim=0).flatten().to(self.running_var.dtype), self.momentum)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class Affine(nn.Module):
    """Per-channel scale and bias: the "normalisation" of ``norm="none"`` networks.

    Instance norm removes every feature map's mean, so global colour and
    brightness have no direct path through E and G; on short CPU training runs
    this kept the model below a mean-colour predictor.  ``norm="none"`` with
    zero-initialised residual branches (SkipInit) trains stably instead.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


NORMS = ("instance", "none")


def make_norm(channels: int, kind: str) -> nn.Module:
    """The normalisation layer of an architecture: ``instance`` (switchable) or ``none`` (affine)."""
    if kind == "instance":
        return SwitchableNorm(channels)
    if kind == "none":
        return Affine(channels)
    raise ValueError(f"unknown norm {kind!r}; known: {', '.join(NORMS)}")


def conv7_block(in_ch: int, out_ch: int, norm: str | None = "instance", act: bool = True) -> nn.Sequential:
    """``c7s1-k``: reflection pad 3, 7x7 conv, [norm], [ReLU]."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, out_ch, 7)]
    if norm:
        layers.append(make_norm(out_ch, norm))
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def conv3_block(in_ch: int, out_ch: int, norm: str | None = "instance", act: bool = True) -> nn.Sequential:
    """``c3s1-k``: reflection pad 1, 3x3 conv, [norm], [ReLU]."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3)]
    if norm:
        layers.append(make_norm(out_ch, norm))
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def down_block(in_ch: int, out_ch: int, norm: str = "instance") -> nn.Sequential:
    """``dk``: 3x3 conv with stride 2, norm, ReLU (halves height and width)."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1),
                         make_norm(out_ch, norm), nn.ReLU(inplace=True))


def up_block(in_ch: int, out_ch: int, norm: str = "instance", upsample: str = "transposed") -> nn.Sequential:
    """``uk``: 2x upsampling convolution (:mod:`.upsampling`), norm, ReLU (doubles height and width).

    ``upsample`` is ``transposed`` (the paper's 3x3 transposed conv with stride
    1/2) or ``resize`` (nearest 2x, then a 3x3 conv: no checkerboard).
    """
    return nn.Sequential(upsampling_conv(in_ch, out_ch, upsample), make_norm(out_ch, norm), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """``Rk``: two 3x3 convolutions with k filters and a skip connection.

    Without normalisation the residual branch starts at zero (SkipInit), so
    the nine blocks begin as the identity and training stays stable.
    """

    def __init__(self, channels: int, norm: str = "instance") -> None:
        super().__init__()
        self.body = nn.Sequential(conv3_block(channels, channels, norm),
                                  conv3_block(channels, channels, norm, act=False))
        if norm == "none":
            nn.init.zeros_(self.body[1][-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def set_fixed_norm(module: nn.Module, fixed: bool) -> None:
    """Switch every :class:`SwitchableNorm` inside ``module`` to fixed statistics or back."""
    for m in module.modules():
        if isinstance(m, SwitchableNorm):
            m.fixed = fixed
