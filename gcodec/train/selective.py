"""Training data for selective compression (``gcz train --mode sc``).

Label maps: datasets that carry them (Cityscapes) use their own; others get
automatic label maps from the shipped codebook (:mod:`gcodec.selective.autolabel`).
Heatmaps are drawn per crop in the paper's two modes, plus full preservation:

* **RI** (random instance): each connected region of the label map is kept with
  probability ``instance_fraction`` (paper: 25 %);
* **RB** (random box): one box at a uniformly random position, with sides
  uniform in [1, whole crop] latent cells;
* **all**: everything kept (the top of the bytes-versus-area curve).
"""
from __future__ import annotations

import random

import numpy as np
import torch

from ..models.config import SC_DOWNSAMPLING
from ..selective import autolabel, regions
from .data import Sample

#: Probabilities of the heatmap modes RI, RB and all.
MODE_WEIGHTS = {"instance": 0.45, "box": 0.45, "all": 0.10}


def attach_auto_labels(samples: list[Sample], codebook: autolabel.Codebook) -> None:
    """Give every sample without labels its automatic label map at pixel resolution (in place).

    Images are cropped to a multiple of the codebook's cell first.
    """
    cell = codebook.cell
    for s in samples:
        if s.labels is not None:
            continue
        h, w = (s.pixels.shape[0] // cell) * cell, (s.pixels.shape[1] // cell) * cell
        s.pixels = np.ascontiguousarray(s.pixels[:h, :w])
        grid = autolabel.label_cells(s.pixels, codebook)
        s.labels = np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)


def draw_heatmap(labels: np.ndarray, rng: random.Random, instance_fraction: float = 0.25) -> np.ndarray:
    """One heatmap (h, w) float32 of 0/1 for a crop's pixel label map (8h, 8w)."""
    d = SC_DOWNSAMPLING
    grid = labels[d // 2::d, d // 2::d]
    h, w = grid.shape
    mode = rng.choices(list(MODE_WEIGHTS), weights=list(MODE_WEIGHTS.values()))[0]
    if mode == "all":
        return np.ones((h, w), np.float32)
    if mode == "box":
        bh, bw = rng.randint(1, h), rng.randint(1, w)
        y, x = rng.randint(0, h - bh), rng.randint(0, w - bw)
        heat = np.zeros((h, w), np.float32)
        heat[y:y + bh, x:x + bw] = 1
        return heat
    ids, count = regions.components(grid)
    keep = np.array([rng.random() < instance_fraction for _ in range(count)])
    return keep[ids].astype(np.float32)


def heatmaps(labels: torch.Tensor, rng: random.Random, instance_fraction: float = 0.25) -> torch.Tensor:
    """Heatmaps (N, 1, H/8, W/8) for a batch of pixel label maps (N, H, W)."""
    maps = [draw_heatmap(lab.numpy(), rng, instance_fraction) for lab in labels.cpu()]
    return torch.from_numpy(np.stack(maps))[:, None]


def pixel_mask(heat: torch.Tensor) -> torch.Tensor:
    """Heatmap (N, 1, h, w) -> preserved-pixel mask (N, 1, 8h, 8w)."""
    return heat.repeat_interleave(SC_DOWNSAMPLING, dim=2).repeat_interleave(SC_DOWNSAMPLING, dim=3)
