"""Architectures as data: one description for encoder, generator and discriminator.

The description is stored verbatim in the weights manifest, so a weight file
always travels with the exact configuration that built it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: Channel widths of the published GC networks (docs/method.md section 1), before the width multiplier.
PAPER_ENCODER_WIDTHS = (60, 120, 240, 480, 960)
#: Encoder downsampling factor: four stride-2 convolutions.
DOWNSAMPLING = 16
#: Encoder downsampling of selective-compression models (docs/method.md section 2).
SC_DOWNSAMPLING = 8
#: G's upsamplings (:mod:`gcodec.models.upsampling`): the paper's transposed convolutions, or resize-convolutions.
UPSAMPLINGS = ("transposed", "resize")
#: Quantizer centers of the 5-level quantizer.
DEFAULT_LEVELS = 5


@dataclass(frozen=True)
class ArchConfig:
    """Architecture of a GC model (encoder E, generator G, discriminator D).

    Attributes:
        latent_channels: C, the number of channels of the quantized latent.
        width: multiplier on the paper's channel widths (1.0 = 60..960).
        res_blocks: number of residual blocks in G (paper: 9).
        levels: number of quantizer centers L (symmetric integers around 0).
        noise_channels: channels of noise v concatenated to the latent (0 = none).
        disc_width: multiplier on the discriminator's 64..512 widths.
        disc_scales: number of discriminator scales (paper: 3).
        norm: normalisation in E and G: ``instance`` (paper; switchable to fixed
            statistics) or ``none`` (per-channel affine, zero-initialised
            residual branches), which trains much faster from scratch.
        selective_classes: 0 for a GC model; K > 0 makes it a selective (SC) model
            (:mod:`gcodec.models.sc`): latents at 1/8 resolution, and a label-map
            encoder F over K classes.
        upsample: G's 2x upsampling: ``transposed`` (paper: 3x3 transposed
            convolutions, which draw a period-2/4 grid) or ``resize`` (nearest
            2x then a 3x3 convolution; :mod:`gcodec.models.upsampling`).
    """

    latent_channels: int = 4
    width: float = 1.0
    res_blocks: int = 9
    levels: int = DEFAULT_LEVELS
    noise_channels: int = 0
    disc_width: float = 1.0
    disc_scales: int = 3
    norm: str = "instance"
    selective_classes: int = 0
    upsample: str = "transposed"

    def __post_init__(self) -> None:
        if self.latent_channels < 1:
            raise ValueError("latent_channels must be >= 1")
        if self.levels < 2 or self.levels > 255:
            raise ValueError("levels must be in 2..255")
        if self.width <= 0 or self.disc_width <= 0:
            raise ValueError("width multipliers must be positive")
        if self.norm not in ("instance", "none"):
            raise ValueError("norm must be 'instance' or 'none'")
        if not 0 <= self.selective_classes <= 255:
            raise ValueError("selective_classes must be in 0..255")
        if self.upsample not in UPSAMPLINGS:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLINGS)}")
        if self.res_blocks < 0 or self.noise_channels < 0 or self.disc_scales < 1:
            raise ValueError("res_blocks, noise_channels must be >= 0 and disc_scales >= 1")

    @property
    def encoder_widths(self) -> tuple[int, ...]:
        """Widths of ``c7s1, d, d, d, d`` in the encoder (and mirrored in G)."""
        return tuple(max(1, round(w * self.width)) for w in PAPER_ENCODER_WIDTHS)

    @property
    def centers(self) -> list[int]:
        """Integer quantizer centers, e.g. ``[-2, -1, 0, 1, 2]`` for L = 5."""
        return [i - self.levels // 2 for i in range(self.levels)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (stored in manifests and checkpoints).

        ``selective_classes`` appears only for SC models and ``upsample`` only
        when it is not ``transposed``, so earlier descriptions stay as they were
        written.
        """
        data = dataclasses.asdict(self)
        if not self.selective_classes:
            del data["selective_classes"]
        if self.upsample == "transposed":
            del data["upsample"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ArchConfig":
        """Inverse of :meth:`to_dict`; unknown keys are rejected."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown architecture keys: {sorted(unknown)}")
        return cls(**data)

    @property
    def selective(self) -> bool:
        """Whether this is a selective-compression (SC) model."""
        return self.selective_classes > 0

    @property
    def downsampling(self) -> int:
        """Image pixels per latent position along each side: 16 (GC) or 8 (SC)."""
        return SC_DOWNSAMPLING if self.selective else DOWNSAMPLING

    def with_channels(self, channels: int) -> "ArchConfig":
        """The same architecture with another latent channel count."""
        return dataclasses.replace(self, latent_channels=channels)


#: Registered named configurations.  ``paper`` is exactly as published; ``cpu``
#: is the configuration gcz ships (width 1/4: G of about 9.7 M parameters,
#: without instance norm: see :class:`gcodec.models.layers.Affine`).
CONFIGS: dict[str, ArchConfig] = {
    "paper": ArchConfig(width=1.0, res_blocks=9, disc_width=1.0),
    "cpu": ArchConfig(width=0.25, res_blocks=9, disc_width=0.5, norm="none"),
    "tiny": ArchConfig(width=0.0625, res_blocks=1, disc_width=0.125, disc_scales=2, norm="none"),
}


def named_config(name: str, channels: int) -> ArchConfig:
    """Look up a registered configuration and set its latent channel count."""
    try:
        return CONFIGS[name].with_channels(channels)
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(CONFIGS)}") from None
