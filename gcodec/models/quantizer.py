"""The L-level scalar quantizer q: hard nearest-center forward, soft gradients."""
from __future__ import annotations

import torch
from torch import nn


class Quantizer(nn.Module):
    """Nearest-center quantization to integer centers with a soft relaxation.

    Forward output is always the hard quantized value; gradients flow through
    the soft assignment ``sum_j c_j softmax(-sigma (w - c_j)^2)`` (Mentzer et al.
    2018), i.e. a straight-through estimator around the soft value.
    """

    def __init__(self, centers: list[int], sigma: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("centers", torch.tensor(centers, dtype=torch.float32))
        self.sigma = sigma
        # The lowest center as a Python number: reading it from the buffer in symbols() would make
        # every training step wait for the GPU (a host sync) and break torch.compile's graph.
        self._low = float(centers[0])
        self._levels = len(centers)

    @property
    def levels(self) -> int:
        """Number of centers L."""
        return self._levels

    def symbols(self, w: torch.Tensor) -> torch.Tensor:
        """Indices (0..L-1, int64) of the nearest center of every latent entry."""
        return torch.clamp(torch.round(w - self._low), 0, self._levels - 1).to(torch.int64)

    def dequantize(self, symbols: torch.Tensor) -> torch.Tensor:
        """Center values of symbol indices."""
        return self.centers[symbols]

    def assignment(self, w: torch.Tensor) -> torch.Tensor:
        """Soft assignment (..., L) of every entry to the centers: ``softmax(-sigma (w - c_j)^2)``."""
        return torch.softmax(-self.sigma * (w.unsqueeze(-1) - self.centers) ** 2, dim=-1)

    def straight_through(self, w: torch.Tensor) -> torch.Tensor:
        """The hard quantized value, with the gradient of the soft one (in any mode)."""
        hard = self.dequantize(self.symbols(w))
        soft = (self.assignment(w) * self.centers).sum(-1)
        return soft + (hard - soft).detach()

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.dequantize(self.symbols(w))
        return self.straight_through(w)
