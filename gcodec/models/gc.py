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
        """Noise v of shape (N, noise_channels, h, w) from a standard normal prior."""
        n, _, h, w = latent.shape
        return torch.randn((n, self.config.noise_channels, h, w), generator=generator,
                           device=latent.device, dtype=latent.dtype)

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
        """Symbols (N, C, h, w) -> image (N, 3, 16h, 16w) in [-1, 1]."""
        gen = None
        if seed is not None:
            gen = torch.Generator(device=symbols.device).manual_seed(seed)
        return self.synthesize(self.quantizer.dequantize(symbols), gen)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of a module."""
    return sum(p.numel() for p in module.parameters())
