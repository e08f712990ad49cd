"""The GC model: encoder, quantizer and generator with symbol-level compress/decompress."""
from __future__ import annotations

import torch
from torch import nn

from .config import DOWNSAMPLING, ArchConfig
from .encoder import Encoder
from .generator import Generator
from .quantizer import Quantizer


class GCModel(nn.Module):
    """Generative compression model of Agustsson et al.

    ``forward`` is the training path (image -> reconstruction through the
    straight-through quantizer).  ``encode_symbols`` / ``decode_symbols`` are
    the coding path used by :mod:`gcodec.codec`: integer symbols in, integer
    symbols out, so the entropy coder never sees floats.
    """

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quantizer = Quantizer(config.centers)
        self.generator = Generator(config)

    def noise(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training noise v of shape (N, noise_channels, h, w) from the uniform prior on [-1, 1).

        Decoding draws v from a seed instead (:func:`gcodec.noise.latent_noise`).
        """
        from ..noise import uniform_like

        return uniform_like(latent, self.config.noise_channels, generator)

    def synthesize(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Run G on quantized latent values, concatenating noise if configured."""
        if self.config.noise_channels:
            latent = torch.cat([latent, self.noise(latent, generator)], dim=1)
        return self.generator(latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training path: returns (reconstruction, quantized latent)."""
        w_hat = self.quantizer(self.encoder(x))
        return self.synthesize(w_hat), w_hat

    @torch.no_grad()
    def encode_symbols(self, x: torch.Tensor) -> torch.Tensor:
        """Image (N, 3, H, W) in [-1, 1], H and W multiples of 16 -> symbols (N, C, H/16, W/16)."""
        if x.shape[-1] % DOWNSAMPLING or x.shape[-2] % DOWNSAMPLING:
            raise ValueError("image height and width must be multiples of 16")
        return self.quantizer.symbols(self.encoder(x))

    @torch.no_grad()
    def decode_symbols(self, symbols: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Symbols (N, C, h, w) -> image (N, 3, 16h, 16w) in [-1, 1]; noise (if any) from ``seed``."""
        latent = self.quantizer.dequantize(symbols)
        if self.config.noise_channels:
            from ..noise import latent_noise

            n, _, h, w = latent.shape
            noise = [torch.from_numpy(latent_noise(seed, self.config.noise_channels, h, w)) for _ in range(n)]
            latent = torch.cat([latent, torch.cat(noise).to(latent)], dim=1)
        return self.generator(latent)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of a module."""
    return sum(p.numel() for p in module.parameters())
