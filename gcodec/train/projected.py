"""Projected discriminator (Sauer et al. 2021, "Projected GANs Converge Faster"), training only.

D judges an image through a *frozen* pretrained feature network instead of
raw pixels.  Here that network is the one the perceptual loss already runs
(EfficientNet-Lite0 by default), so the features of ``x`` and ``x_hat`` that
the perceptual term computes anyway are reused and D adds only small heads:

* **CCM** (cross-channel mixing): a fixed random 1x1 convolution per feature
  level, widening it to :func:`projection_widths` channels, so that D cannot
  latch onto a few feature channels;
* **CSM** (cross-scale mixing): top-down, each level adds the upsampled mix of
  the coarser one (through a fixed random 1x1 convolution to its width) and
  passes a fixed random 3x3 convolution, so coarse semantics reach the fine heads;
* one trainable patch head per level (3x3 conv, stride-2 4x4 conv, 3x3 conv to
  one logit per patch; LeakyReLU 0.2, spectral normalisation as in the paper).

The random projections are not parameters and not saved: they are drawn from
``seed`` on the CPU at construction, so a run resumed on another machine (or
from a half-precision compact checkpoint) gets exactly the same projections.

``forward`` returns, per level, the head's intermediate activations followed by
its logits -- the layout of :class:`gcodec.models.discriminator.MultiScaleDiscriminator`,
so :mod:`.losses` (LSGAN, feature matching) apply unchanged.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

#: Widest projection of one feature level (keeps the heads small).
MAX_PROJECTION = 256


def projection_widths(feature_channels: Sequence[int]) -> list[int]:
    """CCM output channels per level: twice the feature channels, at most :data:`MAX_PROJECTION`."""
    return [min(MAX_PROJECTION, 2 * c) for c in feature_channels]


def _random_conv(generator: torch.Generator, c_in: int, c_out: int, k: int) -> torch.Tensor:
    """Uniform weights of variance 1 / fan-in (the projection keeps the features' scale), from ``generator``."""
    bound = (3.0 / (c_in * k * k)) ** 0.5
    return (torch.rand(c_out, c_in, k, k, generator=generator) * 2 - 1) * bound


class _PatchHead(nn.Module):
    """Trainable head of one level: returns ``[act1, act2, logits]``."""

    def __init__(self, c_in: int, width: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([
            nn.Sequential(spectral_norm(nn.Conv2d(c_in, width, 3, padding=1)), nn.LeakyReLU(0.2)),
            nn.Sequential(spectral_norm(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)),
            spectral_norm(nn.Conv2d(2 * width, 1, 3, padding=1)),
        ])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return outs


class ProjectedDiscriminator(nn.Module):
    """Patch heads on randomly projected features of a frozen network (one head per feature level).

    Args:
        feature_channels: channels of each level the feature network returns, finest first.
        width: channels of each head's first layer (the second has twice as many).
        seed: seed of the fixed random projections.
    """

    def __init__(self, feature_channels: Sequence[int], width: int = 32, seed: int = 0) -> None:
        super().__init__()
        self.feature_channels = list(feature_channels)
        widths = projection_widths(self.feature_channels)
        gen = torch.Generator().manual_seed(seed)
        for i, (c_in, c_out) in enumerate(zip(self.feature_channels, widths)):
            self.register_buffer(f"ccm{i}", _random_conv(gen, c_in, c_out, 1), persistent=False)
        for i in range(len(widths) - 1):
            self.register_buffer(f"lift{i}", _random_conv(gen, widths[i + 1], widths[i], 1), persistent=False)
            self.register_buffer(f"csm{i}", _random_conv(gen, widths[i], widths[i], 3), persistent=False)
        self.heads = nn.ModuleList(_PatchHead(c, width) for c in widths)

    def project(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """CCM then CSM (coarse to fine) of a feature pyramid, finest first."""
        if len(features) != len(self.feature_channels):
            raise ValueError(f"expected {len(self.feature_channels)} feature levels, got {len(features)}")
        mixed = [F.conv2d(f, getattr(self, f"ccm{i}").to(f.dtype)) for i, f in enumerate(features)]
        out = [mixed[-1]]
        for i in range(len(mixed) - 2, -1, -1):
            coarse = F.interpolate(out[0], size=mixed[i].shape[-2:], mode="bilinear", align_corners=False)
            coarse = F.conv2d(coarse, getattr(self, f"lift{i}").to(coarse.dtype))
            weight = getattr(self, f"csm{i}").to(mixed[i].dtype)
            out.insert(0, F.conv2d(mixed[i] + coarse, weight, padding=1))
        return out

    def forward(self, features: Sequence[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Per level: the head's activations, then its patch logits (for LSGAN and feature matching)."""
        return [head(p) for head, p in zip(self.heads, self.project(features))]
