"""The PyTorch backend: a :class:`gcodec.models.GCModel` behind numpy arrays (CPU or CUDA)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import GczModelError
from ..zoo import ModelEntry, load_head, load_model
from .graphs import float_latent


def can_tile(model: nn.Module) -> bool:
    """Whether tiles of ``model`` agree with the whole image: no per-image normalisation statistics."""
    from ..models.layers import SwitchableNorm

    return not any(isinstance(m, SwitchableNorm) and not m.fixed for m in model.modules())


class TorchNetwork:
    """Encoder and generator of a GC model run by PyTorch."""

    backend = "torch"

    def __init__(self, model: nn.Module, device: str, entry: ModelEntry | None = None) -> None:
        self.model = model
        self.device = device
        self.entry = entry
        self.tileable = can_tile(model)
        self._realism: nn.Module | None = None

    @classmethod
    def load(cls, entry: ModelEntry, device: str = "cpu") -> TorchNetwork:
        """Verify and load ``entry``'s weights (cached per process by :func:`gcodec.zoo.load_model`)."""
        return cls(load_model(entry, device), device, entry)

    def encode(self, image: np.ndarray) -> np.ndarray:
        """float32 image (1, 3, H, W) in [-1, 1] -> int64 symbols (1, C, H/16, W/16)."""
        x = torch.from_numpy(image).to(self.device)
        return self.model.encode_symbols(x).cpu().numpy()

    def generator_input(self, symbols: np.ndarray, seed: int | None = None) -> np.ndarray:
        """Dequantized symbols (1, C, h, w), plus noise channels drawn from ``seed`` for noise models
        (:func:`gcodec.backends.graphs.float_latent`, as :meth:`GCModel.decode_symbols` draws them)."""
        return float_latent(symbols, self.model.config, seed)

    @torch.no_grad()
    def generate(self, latent: np.ndarray) -> np.ndarray:
        """Generator input (1, C', h, w) -> float32 image (1, 3, 16h, 16w)."""
        return self.model.generator(torch.from_numpy(latent).to(self.device)).float().cpu().numpy()

    def realism_generator(self) -> nn.Module:
        """The generator with its realism head (:class:`gcodec.models.orp.RealismGenerator`), built once."""
        if self._realism is None:
            from ..models.orp import RealismGenerator
            if self.entry is None:
                raise GczModelError("this network was built without its model entry, so it has no realism head")
            self._realism = RealismGenerator(self.model.generator, load_head(self.entry, "realism", self.device))
        return self._realism

    @torch.no_grad()
    def generate_realism(self, latent: np.ndarray, alpha: float) -> np.ndarray:
        """As :meth:`generate`, plus ``(1 - alpha)`` times the realism head's residual (one pass)."""
        a = torch.tensor([alpha], dtype=torch.float32, device=self.device)
        return self.realism_generator()(torch.from_numpy(latent).to(self.device), a).float().cpu().numpy()
