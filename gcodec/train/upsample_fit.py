"""Carry a trained generator's transposed upsampling over to resize-convolutions.

:func:`gcodec.models.upsampling.resize_kernel_from_transposed` matches the
layers for white-noise input, which is far from what G's feature maps look
like; here each new layer is fitted, by ridge regression, to reproduce the old
layer's output on the feature maps G actually computes for real photos.  The
layers are fitted in order, each on the inputs the already-fitted new layers
produce, so the second fit corrects what the first could not match.  Every
other weight is copied unchanged: E, and so every symbol, stays the same.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from ..models.upsampling import ResizeConv2d

#: Training crops whose latents the fit runs G on.
FIT_CROPS = 64
#: Output positions sampled per layer for the regression.
FIT_POSITIONS = 120_000
#: Ridge term, relative to the mean diagonal of the Gram matrix.
RIDGE = 1e-4


def _up_blocks(generator: nn.Module) -> list[int]:
    """Indices of the ``uk`` blocks in ``generator.net``."""
    return [i for i, block in enumerate(generator.net)
            if isinstance(block, nn.Sequential) and isinstance(block[0], (nn.ConvTranspose2d, ResizeConv2d))]


def _patches(x: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) -> (N * 4hw, C * 9): the 3x3 neighbourhoods a ResizeConv2d sees, one row per output."""
    up = F.interpolate(x, scale_factor=2.0, mode="nearest")
    cols = F.unfold(F.pad(up, (1, 1, 1, 1), mode="reflect"), 3)  # (N, C*9, 4hw)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _sampled_rows(inputs: list[torch.Tensor], targets: list[torch.Tensor],
                  gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The regression's rows: (patches with a constant column, targets) at up to FIT_POSITIONS outputs.

    The rows are drawn over all crops' outputs together (a random subset when
    there are more than FIT_POSITIONS) but each crop's patches are built on
    their own, so memory stays that of one crop's patches plus the sample.
    """
    counts = [4 * x.shape[0] * x.shape[2] * x.shape[3] for x in inputs]
    total = sum(counts)
    rows = torch.randperm(total, generator=gen)[:FIT_POSITIONS] if total > FIT_POSITIONS else torch.arange(total)
    rows = rows.to(inputs[0].device)
    design = inputs[0].new_ones(len(rows), inputs[0].shape[1] * 9 + 1)
    target = targets[0].new_empty(len(rows), targets[0].shape[1])
    start = 0
    for x, t, count in zip(inputs, targets, counts):
        take = (rows >= start) & (rows < start + count)
        local = rows[take] - start
        design[take, :-1] = _patches(x)[local]
        target[take] = t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])[local]
        start += count
    return design, target


def _set_identity(norm: nn.Module) -> None:
    """Make an affine layer (or a switchable norm's affine part) the identity."""
    norm.weight.fill_(1.0)
    norm.bias.zero_()


@torch.no_grad()
def fit_resize_upsampling(old: nn.Module, new: nn.Module, latents: Iterable[torch.Tensor], seed: int = 0) -> list[float]:
    """Set ``new``'s resize kernels so that it reproduces ``old`` (a transposed-upsampling G) on ``latents``.

    ``old`` and ``new`` are Generators of the same widths; ``new``'s other
    layers must already hold ``old``'s weights.  Returns, per layer, the
    fit's residual relative to the target's spread (0: exact, 1: no better
    than the target's mean).
    """
    latents = list(latents)
    old_ups, new_ups = _up_blocks(old), _up_blocks(new)
    if len(old_ups) != len(new_ups) or not all(isinstance(new.net[i][0], ResizeConv2d) for i in new_ups):
        raise ValueError("new must be the resize-upsampling version of old")
    gen = torch.Generator().manual_seed(seed)
    old_in = [old.net[: old_ups[0]](z) for z in latents]
    new_in = [t.clone() for t in old_in]
    residuals = []
    for o, n in zip(old_ups, new_ups):
        old_block, new_block = old.net[o], new.net[n]
        # the target is the old block before its ReLU (convolution and affine); the new block's
        # convolution takes both over (its bias fitted too) and its affine becomes the identity
        targets = [old_block[1](old_block[0](x)) for x in old_in]
        design, target = _sampled_rows(new_in, targets, gen)
        a, b = design.double(), target.double()
        gram = a.T @ a
        gram += torch.eye(gram.shape[0], dtype=gram.dtype) * RIDGE * gram.diagonal().mean()
        solution = torch.linalg.solve(gram, a.T @ b)  # (C_in * 9 + 1, C_out)
        residuals.append(float((a @ solution - b).norm() / (b - b.mean(0)).norm()))
        conv = new_block[0]
        conv.weight.copy_(solution[:-1].T.reshape(conv.weight.shape).to(conv.weight.dtype))
        conv.bias.copy_(solution[-1].to(conv.bias.dtype))
        _set_identity(new_block[1])
        old_in = [old_block[2](t) for t in targets]  # the old block's output: its ReLU of the target
        new_in = [new_block(x) for x in new_in]
    return residuals
