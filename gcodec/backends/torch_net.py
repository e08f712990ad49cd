"""The PyTorch backend: a :class:`gcodec.models.GCModel` behind numpy arrays (CPU or CUDA)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..zoo import ModelEntry, load_model


def can_tile(model: nn.Module) -> bool:
    """Whether tiles of ``model`` agree with the whole image: no per-image normalisation statistics."""
    from ..models.layers import SwitchableNorm

    return not any(isinstance(m, SwitchableNorm) and not m.fixed for m in model.modules())


class TorchNetwork:
    """Encoder and generator of a GC model run by PyTorch."""

    backend = "torch"

    def __init__(self, model: nn.Module, device: str) -> None:
        self.model = model
        self.device = device
        self.tileable = can_tile(model)

    @classmethod
    def load(cls, entry: ModelEntry, device: str = "cpu") -> TorchNetwork:
        """Verify and load ``entry``'s weights (cached per process by :func:`gcodec.zoo.load_model`)."""
        return cls(load_model(entry, device), device)

    def encode(self, image: np.ndarray) -> np.ndarray:
        """float32 image (1, 3, H, W) in [-1, 1] -> int64 symbols (1, C, H/16, W/16)."""
        x = torch.from_numpy(image).to(self.device)
        return self.model.encode_symbols(x).cpu().numpy()

    @torch.no_grad()
    def generator_input(self, symbols: np.ndarray, seed: int | None = None) -> np.ndarray:
        """Dequantized symbols (1, C, h, w), plus noise channels drawn from ``seed`` for noise models.

        Noise is drawn once for the whole latent, exactly as
        :meth:`GCModel.decode_symbols` draws it, so tiles cut the same noise.
        """
        s = torch.from_numpy(np.ascontiguousarray(symbols)).to(self.device).unsqueeze(0)
        latent = self.model.quantizer.dequantize(s)
        if self.model.config.noise_channels:
            gen = None if seed is None else torch.Generator(device=self.device).manual_seed(seed)
            latent = torch.cat([latent, self.model.noise(latent, gen)], dim=1)
        return latent.cpu().numpy()

    @torch.no_grad()
    def generate(self, latent: np.ndarray) -> np.ndarray:
        """Generator input (1, C', h, w) -> float32 image (1, 3, 16h, 16w)."""
        return self.model.generator(torch.from_numpy(latent).to(self.device)).float().cpu().numpy()
