"""pix2pixHD multi-scale PatchGAN discriminator (training only)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import ArchConfig


class PatchDiscriminator(nn.Module):
    """``C64-C128-C256-C512`` 4x4 convs, LeakyReLU(0.2), instance norm from the 2nd layer.

    ``forward`` returns every intermediate feature map (for feature matching)
    with the 1-channel patch prediction last.
    """

    def __init__(self, in_channels: int, width: float) -> None:
        super().__init__()
        widths = [max(4, round(c * width)) for c in (64, 128, 256, 512)]
        strides = [2, 2, 2, 1]
        blocks: list[nn.Module] = []
        prev = in_channels
        for i, (ch, stride) in enumerate(zip(widths, strides)):
            layers: list[nn.Module] = [nn.Conv2d(prev, ch, 4, stride=stride, padding=2)]
            if i > 0:
                layers.append(nn.InstanceNorm2d(ch, affine=True))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            blocks.append(nn.Sequential(*layers))
            prev = ch
        blocks.append(nn.Conv2d(prev, 1, 4, stride=1, padding=2))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(nn.Module):
    """Several :class:`PatchDiscriminator` on the image at 1x, 1/2x, 1/4x ... scale.

    ``extra_channels`` allows conditioning (GC D+: one-hot semantic label maps
    concatenated to the image).
    """

    def __init__(self, config: ArchConfig, extra_channels: int = 0) -> None:
        super().__init__()
        self.discs = nn.ModuleList(PatchDiscriminator(3 + extra_channels, config.disc_width)
                                   for _ in range(config.disc_scales))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for i, disc in enumerate(self.discs):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(disc(x))
        return outputs
