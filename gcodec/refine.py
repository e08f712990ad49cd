"""Encoder-side refinement: choose the symbols whose decode looks most like the image.

The encoder network maps an image to its latent in one pass, trained for the
average photo.  At encode time the photo itself is known, and so is the
decoder, so the encoder can do better for this one image: starting from the
encoder's latent ``y``, a few steps of gradient descent move ``y`` so that the
generator's output of its quantized value looks more like the photo
(iterative inference, as in Campos et al. 2019, "Content adaptive
optimization for neural image compression", and Yang et al. 2020,
"Improving inference for neural image compression").

Only the encoder changes: the decoder, the file format and every released
file stay as they are; a refined file is an ordinary ``.gcz`` file whose
symbols were chosen with more care.  The decoder's output at the file's
default realism (and, for a stochastic model, the default noise seed) is what
the refinement looks at.

The objective of each step is the generator's training objective without the
adversary, plus a low-pass colour term and a rate term that keeps the file
about as small::

    10 * MSE  +  0.3 * perceptual  +  6 * low-pass  +  4 * estimated bits per pixel

* MSE on images in [0, 1], over the image's own pixels (not the padding);
* perceptual: the L1 distance of EfficientNet-Lite0 feature pyramids (the
  training's perceptual loss, :mod:`gcodec.models.features`; the shipped
  ``lite0-features`` weights), over the window's core (padding, a mirror of
  the image, included: the network needs sides that are multiples of 16).
  Without it the refinement buys 2 dB of PSNR by trading texture for blur;
  with it, structure and texture come closer to the photo at about the same
  PSNR;
* low-pass: the mean absolute difference of the :data:`LOWPASS_BLOCK` x
  :data:`LOWPASS_BLOCK` block means, in [0, 1], over the image's own pixels:
  colour and brightness at the scale of the blotches and casts that raters
  hold against gcz (a red patch on an animal's back, an orange smear), which
  the perceptual features hardly see and the COLOUR grid, with its cells of
  32 px and more, cannot fix (gcz 0.7.1);
* rate: ``-log2`` of each symbol's frequency in the image's current symbols,
  weighted by the soft assignment of ``y`` to the quantizer's centres.  The
  frequency is that of the symbol's context, its left and upper neighbours in
  the same channel, as the context code (:mod:`gcodec.context`, gcz 0.8) will
  charge it, mixed with the channel's frequency as the code's models start
  (:data:`CONTEXT_PRIOR_SYMBOLS`); ``Objective(context_rate=False)`` charges
  the channel's frequency alone, as the static tables of a ``--no-context``
  file do.  A symbol is also the context of its right and lower neighbours,
  so the gradient charges a change of symbol with what it costs there too
  (:func:`local_bits`): an isolated flip is expensive in a context code.

Gradients flow through the quantizer as in training (straight-through around
the soft assignment, :meth:`gcodec.models.quantizer.Quantizer.straight_through`);
Adam, its step size decaying by a half cosine from 0.05 to a tenth of that
(:func:`step_size`).  Every step's forward pass decodes the window's current
symbols exactly, so its loss is what those symbols would cost; the symbols
kept are those of the best step, not of the last, so a refinement never ends
worse, by its own objective, than the encoder's symbols it started from.  At
a constant step size the straight-through iterates keep jumping between
symbols; the decaying step lets them settle (gcz 0.7.1; on the 26 validation
photos at C = 4, against 0.7.0's constant step: PSNR +0.32 dB, MS-SSIM
+0.018, bytes -1.4 %, at the same 30 steps).

Images of up to :data:`WINDOW_PIXELS` padded pixels are refined in one
piece; larger ones window by window (cores of :data:`WINDOW_CORE` latent
pixels with :data:`WINDOW_MARGIN` of context, which is optimised too but kept
only where a later window's core lies), so memory stays bounded; a model with
image-wide normalisation statistics is refined in one piece, as the coding
path encodes it.  The refinement runs on PyTorch (it needs gradients),
whatever backend decodes; on the CPU in channels-last layout
(:func:`fast_layout`).
"""
from __future__ import annotations

import copy
import math
import operator
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import noise, tiling
from .errors import GczInputError
from .imageio import to_unit

if TYPE_CHECKING:  # PyTorch is imported only when a refinement runs: the decode path must not pay for it
    import torch

#: Refinement steps of an encode unless ``--refine N`` or ``$GCZ_REFINE_STEPS`` says otherwise.
DEFAULT_STEPS = 30
#: The most steps a caller may ask for.
MAX_STEPS = 1000
#: Environment variable setting the default number of steps (``0`` for fast encodes, e.g. services).
ENV_VAR = "GCZ_REFINE_STEPS"
#: Padded images of up to this many pixels are refined in one window.
WINDOW_PIXELS = 1024 * 1024
#: Core and context of a window for larger images, in latent pixels (x16 image pixels).
WINDOW_CORE = 48
WINDOW_MARGIN = 8
#: Side in pixels of the blocks whose mean colour the low-pass term compares.
LOWPASS_BLOCK = 8
#: Weight, in symbols, of the channel's frequencies in the context rate estimate: about the
#: context code's start (prior 100 counts at 24 per coded symbol, gcodec.context).
CONTEXT_PRIOR_SYMBOLS = 4.0


@dataclass(frozen=True)
class Objective:
    """Weights of the refinement's loss terms and its step size (module docstring)."""

    mse: float = 10.0
    perceptual: float = 0.3
    lowpass: float = 6.0
    rate: float = 4.0
    #: Estimate the rate per (channel, left, upper neighbour) context, as the context code charges it.
    context_rate: bool = True
    learning_rate: float = 0.05
    #: The step size of the last step, as a fraction of ``learning_rate`` (:func:`step_size`).
    final_fraction: float = 0.1


#: The objective of files without the context code (``--no-context``): gcz 0.7.1's, the rate estimated
#: from the channel's frequencies, so such files come out as 0.7.1 wrote them.
STATIC_OBJECTIVE = Objective(context_rate=False)


def objective_for(context: bool) -> Objective:
    """The default objective of an encode whose file will (``context``) or will not be context coded.

    Both weigh the rate by 4.  With the context estimate at weight 8 the files were 2.4 % smaller on the
    26 validation photos at C = 4, but blind raters preferred weight 4 on 58 % of sheets and weight 8
    lost to 0.7.1 (44 % at C = 4, 36.5 % at C = 8), while weight 4 is level with it (52 %) at 18 % fewer
    bytes (bench/preference/2026-12-03-context/)."""
    return Objective() if context else STATIC_OBJECTIVE


def step_size(objective: Objective, step: int, steps: int) -> float:
    """Adam's step size at ``step`` (0-based) of ``steps``: a half cosine from ``objective.learning_rate``
    at the first step down to ``learning_rate * final_fraction`` at the last."""
    progress = step / (steps - 1) if steps > 1 else 0.0
    floor = objective.final_fraction
    return objective.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


#: The callback of the innermost :func:`reporting` block, if any.
_REPORT: ContextVar[Callable[[int, int], None] | None] = ContextVar("gcz_refine_report", default=None)


@contextmanager
def reporting(callback: Callable[[int, int], None]) -> Iterator[None]:
    """Within this block every refinement step calls ``callback(done, total)``: steps taken and to take
    over all windows of the image (``gcz compress`` draws its progress bar from it)."""
    token = _REPORT.set(callback)
    try:
        yield
    finally:
        _REPORT.reset(token)


def steps_in_force(override: int | None = None) -> int:
    """The refinement steps of an encode: ``override``, else ``$GCZ_REFINE_STEPS``, else :data:`DEFAULT_STEPS`."""
    if override is not None:
        return check_steps(override)
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_STEPS
    if not raw.isdigit() or int(raw) > MAX_STEPS:
        raise GczInputError(f"{ENV_VAR} must be an integer from 0 to {MAX_STEPS}, not {raw!r}")
    return int(raw)


def check_steps(steps: int) -> int:
    """``steps`` as an int in 0..:data:`MAX_STEPS`; GczInputError otherwise."""
    try:
        value = operator.index(steps)
    except TypeError:
        value = -1
    if isinstance(steps, bool) or not 0 <= value <= MAX_STEPS:
        raise GczInputError(f"refinement steps must be an integer from 0 to {MAX_STEPS}, not {steps!r}")
    return value


def refine_symbols(model: torch.nn.Module, padded: np.ndarray, height: int, width: int, steps: int,
                   generate: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int | None = None,
                   features: torch.nn.Module | None = None, objective: Objective = Objective(),
                   encoder: torch.nn.Module | None = None, bf16: bool = False) -> np.ndarray:
    """Symbols (C, H/16, W/16) for a padded 8-bit image (H, W, 3), refined for ``steps`` steps.

    Args:
        model: a :class:`gcodec.models.GCModel` (its encoder, quantizer and generator; left unchanged).
        padded: the image padded to multiples of 16 (:func:`gcodec.imageio.pad_image`).
        height, width: the image's own size inside ``padded`` (the rest is padding, not scored).
        steps: gradient steps per window; 0 returns the encoder's symbols.
        generate: generator input (1, C', h, w) -> image (1, 3, 16h, 16w) in [-1, 1], differentiable;
            default ``model.generator`` (pass the realism generator to refine at a stored realism).
        seed: the decoder's noise seed for a model with noise channels (:func:`gcodec.noise.latent_noise`).
        features: the perceptual feature network (default: the shipped one, :func:`gcodec.zoo.load_features`).
        objective: loss weights and step size.
        encoder: the network whose latent the refinement starts from (default ``model.encoder``; e.g. the
            model's amortised encoder, :mod:`gcodec.train.encoder`), of the same architecture.
        bf16: run the generator and the feature network in bfloat16 autocast where the device computes it
            natively (:func:`bf16_native`; about 1.7x faster steps on such CPUs), float32 elsewhere.
    """
    import torch

    from .backends.torch_net import can_tile

    steps = check_steps(steps)
    device = next(model.parameters()).device
    tileable = can_tile(model)  # no image-wide normalisation statistics: pieces agree with the whole
    latent = _encoder_latent(model.encoder if encoder is None else encoder, padded, device, tileable)
    quantizer = model.quantizer
    if steps == 0:
        return quantizer.symbols(latent)[0].cpu().numpy()
    if objective.perceptual and features is None:
        from .zoo import load_features
        features = load_features(str(device))
    if features is not None:
        features = fast_layout(features)
    generate = generate or fast_layout(model.generator)
    extra = None
    if model.config.noise_channels:
        extra = torch.from_numpy(noise.latent_noise(seed, model.config.noise_channels, *latent.shape[-2:])).to(device)
    h, w = latent.shape[-2:]
    single = padded.shape[0] * padded.shape[1] <= WINDOW_PIXELS or not tileable
    rows = [(0, h)] if single else tiling.spans(h, WINDOW_CORE, 0)
    cols = [(0, w)] if single else tiling.spans(w, WINDOW_CORE, 0)
    report, total = _REPORT.get(), steps * len(rows) * len(cols)
    for i, (y0, y1) in enumerate(rows):
        for j, (x0, x1) in enumerate(cols):
            done = (i * len(cols) + j) * steps
            step_done = None if report is None else (lambda k, done=done: report(done + k, total))
            _refine_window(quantizer, generate, features, latent, extra, padded, (y0, y1, x0, x1),
                           (height, width), steps, objective, 0 if single else WINDOW_MARGIN, step_done,
                           bf16 and bf16_native(device))
    return quantizer.symbols(latent)[0].cpu().numpy()


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 convolutions natively: a CPU with AVX-512 BF16 or AMX, or a
    CUDA device that supports bfloat16."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    cpu = torch.cpu
    return any(getattr(cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def fast_layout(network: torch.nn.Module) -> torch.nn.Module:
    """``network`` for the refinement's many passes: on the CPU a copy with its weights in channels-last
    layout (the original is untouched), elsewhere ``network`` itself.

    On the CPU, oneDNN's convolutions run a refinement step (generator and feature network, forward and
    backward) about 1.4x faster in this layout; the outputs agree with the original's to float rounding.
    """
    import torch

    if next(network.parameters()).device.type != "cpu":
        return network
    return copy.deepcopy(network).to(memory_format=torch.channels_last)


def _encoder_latent(encoder: torch.nn.Module, padded: np.ndarray, device: torch.device,
                    tileable: bool) -> torch.Tensor:
    """The encoder's continuous latent (1, C, h, w), tiled like the coding path's encoder (if ``tileable``)."""
    import torch

    @torch.no_grad()
    def encode(unit: np.ndarray) -> np.ndarray:
        return encoder(torch.from_numpy(unit).to(device)).float().cpu().numpy()

    found = tiling.encode(encode, padded, None if tileable else math.inf)
    return torch.from_numpy(np.ascontiguousarray(found))[None].to(device)


def _refine_window(quantizer: torch.nn.Module, generate: Callable[[torch.Tensor], torch.Tensor],
                   features: torch.nn.Module | None, latent: torch.Tensor, extra: torch.Tensor | None,
                   padded: np.ndarray, core: tuple[int, int, int, int], size: tuple[int, int], steps: int,
                   objective: Objective, margin: int, step_done: Callable[[int], None] | None = None,
                   bf16: bool = False) -> None:
    """Optimise one window of ``latent`` in place against the 8-bit ``padded`` image; only its core is kept.
    ``step_done(k)`` is called after the window's k-th step."""
    import torch

    s = tiling.SCALE
    y0, y1, x0, x1 = core
    h, w = latent.shape[-2:]
    cy0, cy1, cx0, cx1 = max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin), min(w, x1 + margin)
    iy0, iy1, ix0, ix1 = y0 - cy0, y1 - cy0, x0 - cx0, x1 - cx0  # the core inside the window
    # only the core is converted to float: memory stays that of one window at any image size
    target = torch.from_numpy(to_unit(padded[y0 * s:y1 * s, x0 * s:x1 * s])).to(latent.device)
    mask = torch.zeros_like(target[:, :1])
    mask[..., :max(0, size[0] - y0 * s), :max(0, size[1] - x0 * s)] = 1.0  # the image's own pixels
    scored = mask.sum().clamp_min(1.0)
    target_features = None
    autocast = torch.autocast(latent.device.type, dtype=torch.bfloat16, enabled=bf16)
    if features is not None and objective.perceptual:
        with torch.no_grad(), autocast:
            target_features = features(target)
    bits = context_bits(quantizer.symbols(latent), quantizer.levels) if objective.context_rate else _symbol_bits(quantizer, latent)
    window = latent[:, :, cy0:cy1, cx0:cx1].clone().requires_grad_(True)
    noise_crop = None if extra is None else extra[:, :, cy0:cy1, cx0:cx1]

    def loss_of(current: torch.Tensor) -> torch.Tensor:
        """The objective of the window's current symbols (exact but for the rate's soft estimate)."""
        quantized = quantizer.straight_through(current)
        inputs = quantized if noise_crop is None else torch.cat([quantized, noise_crop], dim=1)
        with autocast:
            out = generate(inputs)[:, :, iy0 * s:iy1 * s, ix0 * s:ix1 * s].float()
            loss = distortion(out, target, mask, scored, objective, features, target_features)
        if objective.rate:
            soft = quantizer.assignment(current[:, :, iy0:iy1, ix0:ix1])  # (1, C, h', w', L)
            if objective.context_rate:  # the core's neighbours lie in the window (or outside the latent)
                own, local = local_bits(bits, quantizer.symbols(current.detach())[0], quantizer.levels)
                own, local = own[None, :, iy0:iy1, ix0:ix1], local[None, :, iy0:iy1, ix0:ix1]
                loss = loss + objective.rate * soft_context_bits(soft, own, local) / scored
            else:
                loss = loss + objective.rate * (soft * bits[None, :, None, None, :]).sum() / scored
        return loss

    best, best_loss = window.detach().clone(), math.inf
    optimizer = torch.optim.Adam([window], lr=objective.learning_rate)
    for step in range(steps):
        loss = loss_of(window)
        value = float(loss.detach())
        if value < best_loss:
            best, best_loss = window.detach().clone(), value
        (grad,) = torch.autograd.grad(loss, [window])
        window.grad = grad
        for group in optimizer.param_groups:
            group["lr"] = step_size(objective, step, steps)
        optimizer.step()
        if step_done is not None:
            step_done(step + 1)
    with torch.no_grad():  # the last step's result, scored like the others
        if float(loss_of(window)) < best_loss:
            best = window.detach()
    latent[:, :, y0:y1, x0:x1] = best[:, :, iy0:iy1, ix0:ix1]


def distortion(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, scored: torch.Tensor,
               objective: Objective, features: torch.nn.Module | None,
               target_features: list[torch.Tensor] | None) -> torch.Tensor:
    """The objective's image terms for decoded ``out`` against ``target`` (N, 3, H, W) in [-1, 1]:
    MSE and low-pass over the pixels where ``mask`` (N, 1, H, W) is 1 (``scored`` of them), and the
    perceptual distance of ``features(out)`` to ``target_features`` when those are given."""
    import torch.nn.functional as F

    from .models.features import pyramid_l1

    error = (out - target) / 2 * mask  # in [0, 1] units, 0 outside the image
    loss = objective.mse * (error ** 2).sum() / (3 * scored)
    if objective.lowpass:  # colour and brightness over 8 x 8 blocks: blotches, casts
        blocks = F.avg_pool2d(error, LOWPASS_BLOCK)
        loss = loss + objective.lowpass * blocks.abs().sum() * LOWPASS_BLOCK ** 2 / (3 * scored)
    if target_features is not None:
        loss = loss + objective.perceptual * pyramid_l1(features(out), target_features)
    return loss


def soft_context_bits(soft: torch.Tensor, own: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """The context code's estimated bits of the current symbols, as a differentiable function of the soft
    assignment ``soft`` (..., L): its value is each entry's bits in its context (``own``,
    :func:`local_bits`) expected under ``soft``, its gradient what changing a symbol costs there and next
    to it (``local``)."""
    moved = (soft * local).sum()
    return moved - moved.detach() + (soft * own).sum().detach()


def _symbol_bits(quantizer: torch.nn.Module, latent: torch.Tensor) -> torch.Tensor:
    """(C, L) estimated bits of each symbol per channel: ``-log2`` of its frequency in ``latent``'s
    current symbols, counted with one extra of every symbol (so an unused one is not free of cost)."""
    import torch

    symbols = quantizer.symbols(latent)[0]
    counts = torch.stack([torch.bincount(ch.flatten(), minlength=quantizer.levels) for ch in symbols]).float() + 1
    return -torch.log2(counts / counts.sum(dim=1, keepdim=True))


def _contexts(symbols: torch.Tensor, levels: int) -> torch.Tensor:
    """Context index ``W * L + N`` of every symbol of (..., h, w): its left and upper neighbours, the
    centre symbol outside the grid (format_spec.md 5.2)."""
    import torch.nn.functional as F

    centre = levels // 2
    west = F.pad(symbols, (1, 0, 0, 0), value=centre)[..., :, :-1]
    north = F.pad(symbols, (0, 0, 1, 0), value=centre)[..., :-1, :]
    return west * levels + north


def context_bits(symbols: torch.Tensor, levels: int) -> torch.Tensor:
    """(C, L * L, L) estimated bits of each symbol per channel and context: ``-log2`` of its frequency
    among the symbols (N, C, h, w) of that context (over all N images), mixed with the channel's
    frequency (counted with one extra of every symbol) as :data:`CONTEXT_PRIOR_SYMBOLS` symbols."""
    import torch

    channels = symbols.shape[1]
    index = (_contexts(symbols, levels) * levels + symbols).transpose(0, 1).reshape(channels, -1)
    counts = torch.zeros(channels, levels * levels * levels, device=symbols.device)
    counts.scatter_add_(1, index, torch.ones_like(index, dtype=counts.dtype))
    counts = counts.reshape(channels, levels * levels, levels)
    channel = counts.sum(dim=1) + 1
    channel = channel / channel.sum(dim=1, keepdim=True)
    mixed = counts + CONTEXT_PRIOR_SYMBOLS * channel[:, None, :]
    return -torch.log2(mixed / mixed.sum(dim=2, keepdim=True))


def local_bits(bits: torch.Tensor, symbols: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For every position of ``symbols`` (C, h, w) and every candidate symbol s: (own, local), each
    (C, h, w, L).  ``own``: the bits of s in its context (``bits`` from :func:`context_bits`); ``local``:
    those plus the bits of its right and lower neighbours' current symbols when s is their left / upper
    neighbour: the change in the file's bits if this one symbol became s, the others kept."""
    import torch
    import torch.nn.functional as F

    channels = symbols.shape[0]
    flat = bits.reshape(channels, -1)  # index: context * L + symbol
    candidates = torch.arange(levels, device=symbols.device)

    def lookup(context: torch.Tensor, symbol: torch.Tensor) -> torch.Tensor:
        index = context * levels + symbol  # (C, h, w, L)
        return torch.gather(flat, 1, index.reshape(channels, -1)).reshape(index.shape)

    own = lookup(_contexts(symbols, levels)[..., None], candidates)
    centre = levels // 2
    # the right neighbour e = S[y][x+1] has context s * L + S[y-1][x+1]
    east = F.pad(symbols, (0, 1, 0, 0), value=centre)[:, :, 1:]
    east_north = F.pad(symbols, (0, 1, 1, 0), value=centre)[:, :-1, 1:]
    east_bits = lookup(candidates * levels + east_north[..., None], east[..., None])
    east_bits[:, :, -1] = 0  # no right neighbour
    # the lower neighbour t = S[y+1][x] has context S[y+1][x-1] * L + s
    south = F.pad(symbols, (0, 0, 0, 1), value=centre)[:, 1:, :]
    south_west = F.pad(symbols, (1, 0, 0, 1), value=centre)[:, 1:, :-1]
    south_bits = lookup(south_west[..., None] * levels + candidates, south[..., None])
    south_bits[:, -1, :] = 0  # no lower neighbour
    return own, own + east_bits + south_bits
