"""G's 2x upsampling: transposed convolution (the paper's) or resize-convolution.

A stride-2, kernel-3 transposed convolution gives each of the four output
phases a different subset of its taps, so even a constant input comes out as a
period-2 pattern, and four such layers stack into the fine 2-16 px grid
(Odena et al. 2016, "Deconvolution and Checkerboard Artifacts").  The
``resize`` upsampling repeats each pixel 2x2 (nearest neighbour) and then
applies one 3x3 convolution at the output resolution: every output pixel uses
the same taps, and nearest-neighbour repetition has no response at the output's
Nyquist frequency, so a smooth feature map cannot come out as a grid.

:func:`resize_kernel_from_transposed` carries a trained transposed kernel over:
it picks the 3x3 kernel whose output is closest in the mean-square sense to the
transposed convolution's for white-noise input, with the mean response to a
constant input matched exactly.  Training starts from there and then fits each
layer to G's real feature maps (:mod:`gcodec.train.upsample_fit`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import UPSAMPLINGS


class ResizeConv2d(nn.Conv2d):
    """Nearest-neighbour 2x upsampling followed by a 3x3 convolution (reflection padding).

    A subclass of :class:`torch.nn.Conv2d` (weight ``(out, in, 3, 3)``), so the
    export's folding of affine layers into the preceding convolution applies.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(in_ch, out_ch, 3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def upsampling_conv(in_ch: int, out_ch: int, kind: str) -> nn.Module:
    """The convolution of one ``uk`` block: ``transposed`` (stride 1/2) or ``resize``."""
    if kind == "transposed":
        return nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1)
    if kind == "resize":
        return ResizeConv2d(in_ch, out_ch)
    raise ValueError(f"unknown upsampling {kind!r}; known: {', '.join(UPSAMPLINGS)}")


def _impulse_responses(kind: str) -> torch.Tensor:
    """(9, 36) matrix: row k is the 6x6 output around one input impulse for the k-th unit kernel."""
    impulse = torch.zeros(9, 1, 5, 5)
    impulse[:, :, 2, 2] = 1.0
    rows = []
    for k in range(9):
        conv = upsampling_conv(1, 1, kind)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight.view(-1)[k] = 1.0
            conv.bias.zero_()
            out = conv(impulse[k:k + 1])
        rows.append(out[0, 0, 2:8, 2:8].reshape(-1))  # covers every output the centre input reaches
    return torch.stack(rows)


def resize_kernel_from_transposed(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert a transposed kernel ``(in, out, 3, 3)`` to the closest resize kernel ``(out, in, 3, 3)``.

    Least squares on the impulse responses (equivalently: the output for
    white-noise input), with the mean response to a constant input (the sum of
    the taps over 4) as an exact constraint; the bias carries over unchanged.
    """
    if weight.dim() != 4 or weight.shape[2:] != (3, 3):
        raise ValueError(f"expected a (in, out, 3, 3) transposed kernel, got {tuple(weight.shape)}")
    t = _impulse_responses("transposed").double()   # (9, 36)
    r = _impulse_responses("resize").double()       # (9, 36)
    # minimise |k r - w t|^2 subject to sum(k) = sum(w) / 4 (Lagrange multiplier, one row)
    gram = r @ r.T
    ones = torch.ones(9, 1, dtype=torch.float64)
    system = torch.cat([torch.cat([2 * gram, ones], 1), torch.cat([ones.T, torch.zeros(1, 1, dtype=torch.float64)], 1)])
    w = weight.detach().double().reshape(-1, 9)       # (in*out, 9)
    rhs = torch.cat([2 * (w @ t @ r.T), w.sum(1, keepdim=True) / 4], 1)  # (in*out, 10)
    solution = torch.linalg.solve(system, rhs.T).T[:, :9]
    c_in, c_out = weight.shape[:2]
    kernel = solution.reshape(c_in, c_out, 3, 3).transpose(0, 1).contiguous()
    return kernel.to(weight.dtype), bias.detach().clone()


def convert_generator_state(state: dict[str, torch.Tensor], transposed_keys: set[str]) -> dict[str, torch.Tensor]:
    """A copy of ``state`` with the transposed kernels named in ``transposed_keys`` converted.

    ``transposed_keys`` are weight keys (``....0.weight``); their biases carry
    over.  Keys stay the same: the convolution is the first module of its
    ``uk`` block in both layouts.  See :func:`transposed_weight_keys`.
    """
    out = dict(state)
    for key in transposed_keys:
        bias_key = key[: -len("weight")] + "bias"
        out[key], out[bias_key] = resize_kernel_from_transposed(state[key], state[bias_key])
    return out


def transposed_weight_keys(module: nn.Module, prefix: str = "") -> set[str]:
    """State keys of every transposed convolution's weight in ``module`` (keys prefixed by ``prefix``)."""
    return {f"{prefix}{name}.weight" for name, m in module.named_modules() if isinstance(m, nn.ConvTranspose2d)}
