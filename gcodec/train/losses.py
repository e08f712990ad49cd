"""GAN objective of method.md section 1: LSGAN, feature matching, distortion."""
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
