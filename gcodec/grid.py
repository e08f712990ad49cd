"""The grid measure: how much periodic pattern an image has at periods of 2, 4, 8 and 16 px.

A generator that upsamples with stride-2 transposed convolutions draws a
fine regular grid (Odena et al. 2016); people see it in flat areas.  The
measure splits the luminance into tiles of :data:`TILE` px and, per tile and
period p, averages the p x p blocks into one "phase mean" pattern; the
pattern's variance is the tile's energy at the spatial frequencies k/p
(k = 0..p-1 along each axis, not both 0), by Parseval.  Each tile is first
multiplied by a Hann window, so that smooth gradients do not leak into those
frequencies.  The energy *new* at period p (not already on the lattice of p/2)
is that variance minus the one at p/2.  A reconstruction's grid ratio at p is its energy there over
the original's: about 1 for faithful output, below 1 for blur, far above 1
for a drawn grid.

Used by ``gcz eval`` (median ratio over photos) and as a training penalty
(:func:`grid_excess`); plain PyTorch, differentiable, no weights.
"""
from __future__ import annotations

import torch

#: Periods (px) the measure reports.
PERIODS = (2, 4, 8, 16)
#: Tile side (px): the frequency resolution is 1 / TILE around each lattice frequency.
TILE = 64
#: Added to energies before a ratio or logarithm (luminance in [0, 1]; photos have 1e-6..4e-6 at 2 px).
EPS = 1e-8
_LUMA = (0.299, 0.587, 0.114)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, H, W) luma with BT.601 weights (same scale as the input)."""
    weights = torch.tensor(_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(1)


def _window(side: int, like: torch.Tensor) -> torch.Tensor:
    """A periodic Hann window over one tile, scaled to mean 1 (a tone at a lattice frequency keeps its energy).

    Without it a tile's smooth gradient leaks into every lattice frequency
    (a ramp's even and odd columns differ by its slope); the Hann window's
    spectrum is zero beyond one bin from a tone, and small for anything smooth.
    """
    n = torch.arange(side, dtype=like.dtype, device=like.device)
    hann = 0.5 - 0.5 * torch.cos(2 * torch.pi * n / side)
    return (hann[:, None] * hann[None, :]) / 0.25


def grid_energy(luma: torch.Tensor, periods: tuple[int, ...] = PERIODS, tile: int = TILE) -> torch.Tensor:
    """(N, H, W) luma -> (N, len(periods)) energy new at each period, averaged over whole tiles.

    Images smaller than one tile are measured on one tile of their largest
    multiple of 16 px (at least 16); each period must divide the tile.
    """
    n, h, w = luma.shape
    side = tile if min(h, w) >= tile else max(16, min(h, w) // 16 * 16)
    if min(h, w) < side or any(side % p for p in periods):
        raise ValueError(f"grid energy needs images of at least {side} px and periods dividing it")
    th, tw = h // side, w // side
    tiles = luma[:, : th * side, : tw * side].reshape(n, th, side, tw, side).permute(0, 1, 3, 2, 4)
    tiles = tiles.reshape(n, th * tw, side, side)
    tiles = (tiles - tiles.mean(dim=(2, 3), keepdim=True)) * _window(side, luma)

    def energy(p: int) -> torch.Tensor:
        if p == 1:
            return tiles.new_zeros(n)
        phase = tiles.reshape(n, th * tw, side // p, p, side // p, p).mean(dim=(2, 4))
        return phase.var(dim=(2, 3), unbiased=False).mean(dim=1)  # the windowed tile's mean is not zero

    coarser = {p: p // 2 if p % 2 == 0 else 1 for p in periods}  # the lattice each period's energy extends
    energies = {p: energy(p) for p in set(periods) | set(coarser.values())}
    return torch.stack([energies[p] - energies[coarser[p]] for p in periods], dim=1)


def grid_ratios(reconstruction: torch.Tensor, original: torch.Tensor,
                periods: tuple[int, ...] = PERIODS) -> torch.Tensor:
    """(N, len(periods)) ratio of the reconstruction's grid energy to the original's (RGB in [0, 1])."""
    rec = grid_energy(luminance(reconstruction), periods)
    ref = grid_energy(luminance(original), periods)
    return (rec + EPS) / (ref + EPS)


def grid_excess(reconstruction: torch.Tensor, original: torch.Tensor, periods: tuple[int, ...] = PERIODS) -> torch.Tensor:
    """Training penalty: mean over images and periods of max(0, log(grid ratio)); images in [-1, 1].

    Zero while the reconstruction has no more periodic energy than the
    original at any period; blur is not rewarded.
    """
    ratio = grid_ratios((reconstruction + 1) / 2, (original + 1) / 2, periods)
    return torch.log(ratio).clamp(min=0).mean()
