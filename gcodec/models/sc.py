"""The SC model: selective generative compression (docs/method.md section 2).

* image encoder ``c7s1-60, d120, d240, d480, c3s1-C, q`` -> latent at 1/8 resolution;
* the latent is multiplied by the heatmap m (1 = preserve) and only preserved
  entries are coded; the decoder lifts it with ``c3s1-480, d960``;
* label-map encoder F ``c7s1-60, d120, d240, d480, d960`` over the one-hot
  label map (K classes);
* both 1/16-resolution feature maps, concatenated, feed G (as in GC).

Widths are the paper's times ``ArchConfig.width``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import ArchConfig
from .encoder import INIT_LATENT_GAIN
from .generator import Generator
from .layers import conv3_block, conv7_block, down_block
from .quantizer import Quantizer


class SCModel(nn.Module):
    """Selective compression: E (1/8), quantizer, latent lift, label encoder F and generator G.

    ``labels`` are class ids per pixel (N, H, W) int64 in 0..K-1; ``heat`` is the
    heatmap (N, 1, H/8, W/8) of 0/1 floats.
    """

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        if not config.selective:
            raise ValueError("SCModel needs an architecture with selective_classes > 0")
        self.config = config
        w = config.encoder_widths
        norm = config.norm
        layers: list[nn.Module] = [conv7_block(3, w[0], norm)]
        layers += [down_block(a, b, norm) for a, b in zip(w[:3], w[1:4])]
        last = conv3_block(w[3], config.latent_channels, norm=None, act=False)
        with torch.no_grad():
            last[-1].weight.mul_(INIT_LATENT_GAIN)
        layers.append(last)
        self.encoder = nn.Sequential(*layers)
        self.quantizer = Quantizer(config.centers)
        self.lift = nn.Sequential(conv3_block(config.latent_channels, w[3], norm), down_block(w[3], w[4], norm))
        f_layers: list[nn.Module] = [conv7_block(config.selective_classes, w[0], norm)]
        f_layers += [down_block(a, b, norm) for a, b in zip(w[:-1], w[1:])]
        self.label_encoder = nn.Sequential(*f_layers)
        self.generator = Generator(config, in_channels=2 * w[4])

    @property
    def classes(self) -> int:
        """Number of label classes K."""
        return self.config.selective_classes

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        """(N, H, W) class ids -> (N, K, H, W) float one-hot."""
        return F.one_hot(labels.clamp(0, self.classes - 1), self.classes).permute(0, 3, 1, 2).float()

    def synthesize(self, latent: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """G on masked latent values (N, C, H/8, W/8) and the label map (N, H, W)."""
        onehot = self.one_hot(labels).to(latent.dtype)
        return self.generator(torch.cat([self.lift(latent), self.label_encoder(onehot)], dim=1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor, heat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training path: returns (reconstruction, masked quantized latent)."""
        w_hat = self.quantizer(self.encoder(x)) * heat
        return self.synthesize(w_hat, labels), w_hat

    @torch.no_grad()
    def encode_symbols(self, x: torch.Tensor) -> torch.Tensor:
        """Image (N, 3, H, W) in [-1, 1], sides multiples of 16 -> symbols (N, C, H/8, W/8), unmasked."""
        if x.shape[-1] % 16 or x.shape[-2] % 16:
            raise ValueError("image height and width must be multiples of 16")
        return self.quantizer.symbols(self.encoder(x))

    @torch.no_grad()
    def decode_symbols(self, symbols: torch.Tensor, heat: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Symbols (N, C, h, w), heatmap (N, h, w) of 0/1 and labels (N, 8h, 8w) -> image in [-1, 1]."""
        latent = self.quantizer.dequantize(symbols) * heat[:, None].to(torch.float32)
        return self.synthesize(latent, labels)


def warm_start_from_gc(model: SCModel, gc_state: dict[str, torch.Tensor]) -> list[str]:
    """Copy the layers an SC model shares with a GC model of the same width; return the copied keys.

    Shared: the encoder's first four blocks (``c7s1, d, d, d``) and G after its
    first convolution (residual blocks and upsampling), whose input differs.
    """
    own = model.state_dict()
    copied = []
    for key, value in gc_state.items():
        parts = key.split(".")
        if key.startswith("encoder.net.") and int(parts[2]) <= 3:
            target = "encoder." + ".".join(parts[2:])
        elif key.startswith("generator.net.") and int(parts[2]) >= 1:
            target = key
        else:
            continue
        if target in own and own[target].shape == value.shape:
            own[target].copy_(value)
            copied.append(target)
    return copied
