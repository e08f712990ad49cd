"""A latent sampler: a WGAN-GP generator of GC codes, so that G becomes an image generator.

docs/method.md section 1 (Sampling): decoding uniformly random codes gives a
"soup" of domain patches; a WGAN-GP trained on real codes E(x) gives images.
The codes are discrete (L levels per channel): the sampler's generator emits
logits over the L levels per channel and latent pixel and draws one level
from them with the Gumbel-max trick, as a one-hot vector whose gradient is the
softmax's (straight-through Gumbel-softmax, Jang et al. 2017).  The critic
sees real codes one-hot encoded too, so it cannot tell fakes by their
softness (the weakness of feeding it softmax outputs) and must judge the
codes themselves.  Sampling draws levels the same way.

Both networks are fully convolutional: the generator maps a spatial noise map
of 1/4 the latent's size to any latent size, so ``gcz sample --size`` can ask
for any image size.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

#: The generator upsamples its noise map by this factor (two x2 stages).
NOISE_STRIDE = 4


@dataclass(frozen=True)
class SamplerConfig:
    """Shape of a latent sampler for codes of ``channels`` x ``levels``."""

    channels: int
    levels: int = 5
    noise_channels: int = 32
    width: int = 64
    critic_width: int = 32

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (stored in the manifest)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SamplerConfig":
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


class _Res(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect"), nn.LeakyReLU(0.2),
                                  nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.body(x), 0.2)


class CodeGenerator(nn.Module):
    """Noise (N, noise_channels, h/4, w/4) -> level logits (N, C, L, h, w)."""

    def __init__(self, config: SamplerConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.net = nn.Sequential(
            nn.Conv2d(config.noise_channels, w, 3, padding=1, padding_mode="reflect"), nn.LeakyReLU(0.2),
            _Res(w), nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(w, w, 3, padding=1, padding_mode="reflect"), nn.LeakyReLU(0.2),
            _Res(w), nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(w, w, 3, padding=1, padding_mode="reflect"), nn.LeakyReLU(0.2),
            _Res(w), nn.Conv2d(w, config.channels * config.levels, 3, padding=1, padding_mode="reflect"))

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        logits = self.net(noise)
        n, _, h, w = logits.shape
        return logits.view(n, self.config.channels, self.config.levels, h, w)


class CodeCritic(nn.Module):
    """Level probabilities (N, C, L, h, w) -> one Wasserstein score per sample (no normalisation: WGAN-GP)."""

    def __init__(self, config: SamplerConfig) -> None:
        super().__init__()
        w = config.critic_width
        self.net = nn.Sequential(
            nn.Conv2d(config.channels * config.levels, w, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, w, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 3, padding=1))

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        return self.net(probs.flatten(1, 2)).mean(dim=(1, 2, 3))


def draw_levels(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One-hot levels (N, C, L, h, w) drawn from ``logits`` (Gumbel-max), with softmax gradients."""
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-9, 1 - 1e-9)
    soft = torch.softmax(logits - torch.log(-torch.log(uniform)), dim=2)
    hard = F.one_hot(soft.argmax(dim=2), logits.shape[2]).permute(0, 1, 4, 2, 3).to(soft.dtype)
    return hard + soft - soft.detach()


def one_hot_codes(symbols: torch.Tensor, levels: int) -> torch.Tensor:
    """int symbols (N, C, h, w) -> float one-hot (N, C, L, h, w)."""
    return F.one_hot(symbols, levels).permute(0, 1, 4, 2, 3).float()


def noise_shape(latent_h: int, latent_w: int, config: SamplerConfig) -> tuple[int, int, int]:
    """(channels, h, w) of the noise map that yields at least a latent_h x latent_w code
    (at least 2 x 2: the reflection padding needs it)."""
    return (config.noise_channels, max(2, -(-latent_h // NOISE_STRIDE)), max(2, -(-latent_w // NOISE_STRIDE)))
