"""EGIC's output residual prediction (ORP): one small head that makes realism a decode-time knob.

The head reads the generator's last feature map and its image and predicts
the residual R between a low-distortion reconstruction and the GAN output
(docs/method.md section 3).  The decoder returns ``x' = G(w) + (1 - alpha) R``:
``alpha = 1`` is the GAN output exactly, ``alpha = 0`` the MSE-optimised
reconstruction, anything between walks the distortion-perception curve, all
in one pass.  The head is trained with ``MSE(x, G(w) + R)`` while E and G stay
frozen (:mod:`gcodec.train.realism`), so the GAN output itself never changes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .generator import Generator

#: Layers of a :class:`Generator`'s ``net`` after its last feature map: ``c7s1-3`` and tanh.
_IMAGE_LAYERS = 2


@dataclass(frozen=True)
class HeadConfig:
    """Shape of an ORP head: ``width`` channels, ``layers`` 3x3 convolutions (the last one to RGB)."""

    features: int
    width: int = 8
    layers: int = 2

    def __post_init__(self) -> None:
        if self.features < 1 or self.width < 1 or self.layers < 2:
            raise ValueError("an ORP head needs features >= 1, width >= 1 and layers >= 2")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (stored in the manifest)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HeadConfig":
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def generator_features(generator: Generator, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """G's last feature map (before ``c7s1-3``) and its image in [-1, 1], from one pass."""
    layers = list(generator.net)
    features = z
    for layer in layers[:-_IMAGE_LAYERS]:
        features = layer(features)
    image = features
    for layer in layers[-_IMAGE_LAYERS:]:
        image = layer(image)
    return features, image


class ResidualHead(nn.Module):
    """Predicts R from (G's features, G's image); its last layer starts at zero (R = 0)."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        in_ch = config.features + 3
        for _ in range(config.layers - 1):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, config.width, 3), nn.ReLU(inplace=True)]
            in_ch = config.width
        last = nn.Conv2d(in_ch, 3, 3)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        layers += [nn.ReflectionPad2d(1), last]
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([features, image], dim=1))


class RealismGenerator(nn.Module):
    """G with an ORP head: ``(z, alpha) -> G(z) + (1 - alpha) * R``, alpha a one-element tensor."""

    def __init__(self, generator: Generator, head: ResidualHead) -> None:
        super().__init__()
        self.generator = generator
        self.head = head

    def forward(self, z: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        features, image = generator_features(self.generator, z)
        return image + (1 - alpha.reshape(1, 1, 1, 1)) * self.head(features, image)


def head_config_for(generator: Generator, width: int = 8, layers: int = 2) -> HeadConfig:
    """The head configuration that fits ``generator``'s last feature map."""
    conv = [m for m in generator.net[-_IMAGE_LAYERS]] if isinstance(generator.net[-_IMAGE_LAYERS], nn.Sequential) \
        else [generator.net[-_IMAGE_LAYERS]]
    first = next(m for m in conv if isinstance(m, nn.Conv2d))
    return HeadConfig(features=first.in_channels, width=width, layers=layers)
