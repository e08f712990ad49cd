"""Encoder E: ``c7s1-60, d120, d240, d480, d960, c3s1-C`` (widths times the multiplier)."""
from __future__ import annotations

import torch
from torch import nn

from .config import ArchConfig
from .layers import conv3_block, conv7_block, down_block


#: Gain on the default initialisation of the last convolution (training start only).
INIT_LATENT_GAIN = 4.0


class Encoder(nn.Module):
    """Maps an image in [-1, 1] (N, 3, H, W) to the unquantized latent (N, C, H/16, W/16)."""

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        w = config.encoder_widths
        layers: list[nn.Module] = [conv7_block(3, w[0], config.norm)]
        for a, b in zip(w[:-1], w[1:]):
            layers.append(down_block(a, b, config.norm))
        last = conv3_block(w[-1], config.latent_channels, norm=None, act=False)
        # Start with latents spread over several quantizer levels (std ~1.5): with the
        # default init nearly all of w rounds to 0 and G sees no information at first.
        with torch.no_grad():
            last[-1].weight.mul_(INIT_LATENT_GAIN)
        layers.append(last)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
