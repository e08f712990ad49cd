"""Generator G: ``c3s1-960, R960 x9, u480, u240, u120, u60, c7s1-3`` with tanh output."""
from __future__ import annotations

import torch
from torch import nn

from .config import ArchConfig
from .layers import ResidualBlock, conv3_block, conv7_block, up_block


class Generator(nn.Module):
    """Maps a quantized latent (N, C [+ noise], h, w) to an image in [-1, 1] (N, 3, 16h, 16w)."""

    def __init__(self, config: ArchConfig, in_channels: int | None = None) -> None:
        super().__init__()
        w = config.encoder_widths
        in_ch = config.latent_channels + config.noise_channels if in_channels is None else in_channels
        layers: list[nn.Module] = [conv3_block(in_ch, w[-1], config.norm)]
        layers += [ResidualBlock(w[-1], config.norm) for _ in range(config.res_blocks)]
        for a, b in zip(w[::-1][:-1], w[::-1][1:]):
            layers.append(up_block(a, b, config.norm, config.upsample))
        layers += [conv7_block(w[0], 3, norm=None, act=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.noise_channels = config.noise_channels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
