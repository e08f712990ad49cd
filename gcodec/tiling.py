"""Tiled encoder and generator passes, so that large images fit in about 2 GB.

Both networks are fully convolutional; away from the image borders a tile
computed with enough context equals the untiled result up to floating-point
rounding.  Tiles are laid out on the latent grid (one latent pixel = 16 image
pixels), so the encoder's stride-2 lattice is never shifted:

* every tile is computed with ``margin`` latent pixels of extra context on each
  side that is then discarded (it absorbs the zero/reflection-padding effects
  of the tile's cut edges);
* neighbouring tiles additionally overlap by ``overlap`` latent pixels, and the
  generator's outputs are cross-faded there with linear weights, so what
  rounding differences remain cannot form a visible seam.

Tiling only makes sense for networks without image-wide statistics: a model
whose instance normalisation is not switched to fixed statistics is always run
untiled (see :func:`can_tile`).  Images up to :data:`TILE_THRESHOLD_PIXELS`
padded pixels always take the direct path, so their results are bit-identical
to :meth:`GCModel.encode_symbols` / :meth:`GCModel.decode_symbols`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from .models.config import DOWNSAMPLING

#: Padded images with more pixels than this are encoded and decoded in tiles (2048 x 2048 is not).
TILE_THRESHOLD_PIXELS = 2048 * 2048
#: Default tile core size, overlap and context margin, in latent pixels (x16 image pixels).
DEFAULT_TILE = 64
DEFAULT_OVERLAP = 4
DEFAULT_MARGIN = 8


def can_tile(model: nn.Module) -> bool:
    """Whether tiles of ``model`` agree with the whole image: no per-image normalisation statistics."""
    from .models.layers import SwitchableNorm

    return not any(isinstance(m, SwitchableNorm) and not m.fixed for m in model.modules())


def needs_tiling(height: int, width: int, threshold: int | None = None) -> bool:
    """Whether a padded image of ``height`` x ``width`` pixels goes through the tiled path
    (more than ``threshold`` pixels, default :data:`TILE_THRESHOLD_PIXELS`)."""
    return height * width > (TILE_THRESHOLD_PIXELS if threshold is None else threshold)


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Core intervals [a, b) covering 0..length with tiles of ``tile`` overlapping by ``overlap``."""
    if length <= tile:
        return [(0, length)]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step)) + [length - tile]
    return [(s, s + tile) for s in sorted(set(starts))]


def _tiles(h: int, w: int, tile: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    for y0, y1 in _spans(h, tile, overlap):
        for x0, x1 in _spans(w, tile, overlap):
            yield y0, y1, x0, x1


def _ramp(length: int, lo_fade: int, hi_fade: int) -> torch.Tensor:
    """1-D blending weights: linear ramps of ``lo_fade``/``hi_fade`` samples at the two ends, 1 inside."""
    weights = torch.ones(length)
    if lo_fade > 0:
        weights[:lo_fade] = torch.arange(1, lo_fade + 1, dtype=torch.float32) / (lo_fade + 1)
    if hi_fade > 0:
        weights[length - hi_fade:] = torch.minimum(
            weights[length - hi_fade:], torch.arange(hi_fade, 0, -1, dtype=torch.float32) / (hi_fade + 1))
    return weights


def tiled_synthesis(generator: Callable[[torch.Tensor], torch.Tensor], latent: torch.Tensor,
                    tile: int | None = None, overlap: int | None = None, margin: int | None = None,
                    scale: int = DOWNSAMPLING) -> torch.Tensor:
    """Run ``generator`` (latent (1, C, h, w) -> image (1, 3, scale*h, scale*w)) tile by tile.

    Args:
        generator: the network (or an ONNX Runtime wrapper) mapping latent values to an image.
        latent: generator input (1, C, h, w); any noise channels already concatenated.
        tile: tile core size in latent pixels (default :data:`DEFAULT_TILE`).
        overlap: latent pixels by which neighbouring cores overlap and are cross-faded
            (default :data:`DEFAULT_OVERLAP`).
        margin: latent pixels of discarded context around each tile (default :data:`DEFAULT_MARGIN`).
        scale: image pixels per latent pixel.

    Returns:
        The image (1, 3, scale*h, scale*w), float32 on the latent's device.
    """
    tile = DEFAULT_TILE if tile is None else tile
    overlap = DEFAULT_OVERLAP if overlap is None else overlap
    margin = DEFAULT_MARGIN if margin is None else margin
    if tile < 1 or overlap < 0 or margin < 0 or overlap >= tile:
        raise ValueError("need tile >= 1, 0 <= overlap < tile and margin >= 0")
    _, _, h, w = latent.shape
    out: torch.Tensor | None = None
    weight_sum = torch.zeros(1, 1, h * scale, w * scale, device=latent.device)
    rows, cols = _spans(h, tile, overlap), _spans(w, tile, overlap)
    for i, (y0, y1) in enumerate(rows):
        for j, (x0, x1) in enumerate(cols):
            cy0, cy1 = max(0, y0 - margin), min(h, y1 + margin)
            cx0, cx1 = max(0, x0 - margin), min(w, x1 + margin)
            piece = generator(latent[:, :, cy0:cy1, cx0:cx1])
            piece = piece[:, :, (y0 - cy0) * scale:(y1 - cy0) * scale, (x0 - cx0) * scale:(x1 - cx0) * scale]
            # fade only towards neighbours that overlap this tile, never at the image border
            fade_top = (rows[i - 1][1] - y0) * scale if i > 0 else 0
            fade_bottom = (y1 - rows[i + 1][0]) * scale if i + 1 < len(rows) else 0
            fade_left = (cols[j - 1][1] - x0) * scale if j > 0 else 0
            fade_right = (x1 - cols[j + 1][0]) * scale if j + 1 < len(cols) else 0
            wy = _ramp((y1 - y0) * scale, fade_top, fade_bottom).to(latent.device)
            wx = _ramp((x1 - x0) * scale, fade_left, fade_right).to(latent.device)
            weight = (wy[:, None] * wx[None, :])[None, None]
            if out is None:
                out = torch.zeros(1, piece.shape[1], h * scale, w * scale, device=latent.device)
            region = (slice(None), slice(None), slice(y0 * scale, y1 * scale), slice(x0 * scale, x1 * scale))
            out[region] += piece.float() * weight
            weight_sum[region] += weight
            del piece
    assert out is not None
    return out.div_(weight_sum)


def synthesize_tiled(model: nn.Module, symbols: torch.Tensor, tile: int | None = None,
                     overlap: int | None = None, margin: int | None = None,
                     seed: int | None = None) -> torch.Tensor:
    """Tiled equivalent of ``model.decode_symbols(symbols, seed)`` for a GC model.

    Noise (models with noise channels) is drawn once for the whole latent, exactly
    as the direct path draws it, and then cut into tiles with the latent.
    """
    gen = None if seed is None else torch.Generator(device=symbols.device).manual_seed(seed)
    with torch.no_grad():
        latent = model.quantizer.dequantize(symbols)
        if model.config.noise_channels:
            latent = torch.cat([latent, model.noise(latent, gen)], dim=1)
        return tiled_synthesis(model.generator, latent, tile, overlap, margin)


def encode_tiled(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                 tile: int | None = None, margin: int | None = None) -> torch.Tensor:
    """Tiled equivalent of ``model.encode_symbols(image)``: tiles of the latent grid with context.

    Each latent tile [y0, y1) x [x0, x1) is computed from image pixels
    ``16*(y0 - margin) .. 16*(y1 + margin)`` (clipped to the image) and cropped;
    no blending is needed because every latent pixel comes from one tile.
    ``model`` may also be any callable mapping an image tile to its symbols
    (e.g. an ONNX Runtime session wrapper).
    """
    if isinstance(model, nn.Module):
        net = model

        def to_symbols(x: torch.Tensor) -> torch.Tensor:
            return net.quantizer.symbols(net.encoder(x))
    else:
        to_symbols = model
    tile = DEFAULT_TILE if tile is None else tile
    margin = DEFAULT_MARGIN if margin is None else margin
    _, _, hh, ww = image.shape
    if hh % DOWNSAMPLING or ww % DOWNSAMPLING:
        raise ValueError("image height and width must be multiples of 16")
    h, w = hh // DOWNSAMPLING, ww // DOWNSAMPLING
    s = DOWNSAMPLING
    out: torch.Tensor | None = None
    with torch.no_grad():
        for y0, y1, x0, x1 in _tiles(h, w, tile, 0):
            cy0, cy1 = max(0, y0 - margin), min(h, y1 + margin)
            cx0, cx1 = max(0, x0 - margin), min(w, x1 + margin)
            syms = to_symbols(image[:, :, cy0 * s:cy1 * s, cx0 * s:cx1 * s])
            if out is None:
                out = torch.empty(image.shape[0], syms.shape[1], h, w, dtype=syms.dtype, device=syms.device)
            out[:, :, y0:y1, x0:x1] = syms[:, :, y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0]
    assert out is not None
    return out


def encode_symbols(model: nn.Module, image: torch.Tensor, threshold: int | None = None) -> torch.Tensor:
    """``model.encode_symbols(image)``, tiled when the (padded) image exceeds ``threshold`` pixels
    (default :data:`TILE_THRESHOLD_PIXELS`)."""
    if needs_tiling(image.shape[-2], image.shape[-1], threshold) and can_tile(model):
        return encode_tiled(model, image)
    return model.encode_symbols(image)


def decode_symbols(model: nn.Module, symbols: torch.Tensor, seed: int | None = None,
                   threshold: int | None = None) -> torch.Tensor:
    """``model.decode_symbols(symbols, seed)``, tiled when the output exceeds ``threshold`` pixels
    (default :data:`TILE_THRESHOLD_PIXELS`)."""
    h, w = symbols.shape[-2] * DOWNSAMPLING, symbols.shape[-1] * DOWNSAMPLING
    if needs_tiling(h, w, threshold) and can_tile(model) and symbols.shape[0] == 1:
        return synthesize_tiled(model, symbols, seed=seed)
    return model.decode_symbols(symbols, seed=seed)
