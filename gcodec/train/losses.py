"""GAN objective of docs/method.md section 1: LSGAN, feature matching, distortion."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def lsgan_d_loss(real_out: list[list[torch.Tensor]], fake_out: list[list[torch.Tensor]]) -> torch.Tensor:
    """Discriminator: E[(D(x) - 1)^2] + E[D(G(z))^2], summed over scales."""
    return sum(F.mse_loss(r[-1], torch.ones_like(r[-1])) + F.mse_loss(f[-1], torch.zeros_like(f[-1]))
               for r, f in zip(real_out, fake_out)) / len(real_out)


def lsgan_g_loss(fake_out: list[list[torch.Tensor]]) -> torch.Tensor:
    """Generator's LSGAN term E[(D(G(z)) - 1)^2], averaged over scales."""
    return sum(F.mse_loss(f[-1], torch.ones_like(f[-1])) for f in fake_out) / len(fake_out)


def feature_matching_loss(real_out: list[list[torch.Tensor]], fake_out: list[list[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD feature matching: L1 between D's intermediate features on x and x_hat."""
    total = 0.0
    for r, f in zip(real_out, fake_out):
        for rf, ff in zip(r[:-1], f[:-1]):
            total = total + F.l1_loss(ff, rf.detach())
    return total / len(real_out)


def masked_mse(x_hat: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """MSE on images in [0, 1] scale, optionally restricted to a (N, 1, H, W) mask (SC)."""
    err = ((x_hat - x) / 2) ** 2
    if mask is None:
        return err.mean()
    mask = mask.expand_as(err)
    return (err * mask).sum() / mask.sum().clamp_min(1.0)


def block_mse(x_hat: torch.Tensor, x: torch.Tensor, block: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`masked_mse` between the ``block`` x ``block`` means of ``x_hat`` and ``x`` (the mask pooled alike):
    blind to texture inside a block, sensitive to layout and colour."""
    pooled_mask = None if mask is None else F.avg_pool2d(mask, block)
    return masked_mse(F.avg_pool2d(x_hat, block), F.avg_pool2d(x, block), pooled_mask)


def band_pass(x: torch.Tensor, fine: int, coarse: int) -> torch.Tensor:
    """``x`` averaged over ``fine`` x ``fine`` blocks minus its ``coarse`` x ``coarse`` block means.

    The detail between the two scales: what a distortion on ``coarse``-pooled
    images leaves free, without the pixel-level noise below ``fine``.
    ``coarse <= 1`` keeps everything (no distortion pooling); ``fine`` must divide ``coarse``.
    """
    low = F.avg_pool2d(x, fine) if fine > 1 else x
    if coarse <= 1:
        return low
    ratio = coarse // max(1, fine)
    return low - F.interpolate(F.avg_pool2d(low, ratio), scale_factor=ratio, mode="nearest")


def diversity_hinge(first: torch.Tensor, second: torch.Tensor, margin: float, coarse: int = 1,
                    fine: int = 1) -> torch.Tensor:
    """Mode-seeking term for stochastic decoders: ``relu(margin - mean|bp(x1) - bp(x2)|)`` per sample.

    ``first`` and ``second`` decode the same latent with two noise draws; the
    distortion terms alone make G ignore its noise (DPLC), this rewards two
    draws for differing by up to ``margin`` (mean absolute difference in [-1, 1]
    units) in their detail between ``fine`` and ``coarse`` pixels (:func:`band_pass`):
    above what a ``coarse``-pooled distortion pins (layout and colour), below
    which differences would be mere pixel noise.
    """
    spread = (band_pass(first, fine, coarse) - band_pass(second, fine, coarse)).abs().flatten(1).mean(dim=1)
    return F.relu(margin - spread).mean()
