"""Encoder and generator passes over numpy arrays, tiled for large images so memory stays bounded.

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

Memory: the tiled encoder converts one tile at a time from the 8-bit image to
float; the tiled generator writes finished rows straight into the 8-bit output
and keeps only one band of tile rows in float (at most about
:data:`BAND_BUDGET_BYTES`, by shortening tile rows for very wide images).

The module is backend-neutral: ``encode`` and ``generate`` are any callables
over float32 / int64 numpy arrays (:mod:`gcodec.backends` provides them for
PyTorch and ONNX Runtime).  Images up to :data:`TILE_THRESHOLD_PIXELS` padded
pixels take the direct path: one call on the whole image.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .imageio import from_unit, to_unit

#: Image pixels per latent pixel (the encoder's downsampling factor).
SCALE = 16
#: Padded images with more pixels than this are encoded and decoded in tiles (2048 x 2048 is not).
TILE_THRESHOLD_PIXELS = 2048 * 2048
#: Default tile core size, overlap and context margin, in latent pixels (x16 image pixels).
DEFAULT_TILE = 64
DEFAULT_OVERLAP = 4
DEFAULT_MARGIN = 8
#: Float memory the generator's band of unfinished output rows may take.
BAND_BUDGET_BYTES = 256 * 2**20
#: Shortest tile row (latent pixels) used to keep a very wide image's band within the budget.
MIN_TILE_ROWS = 16

EncodeFn = Callable[[np.ndarray], np.ndarray]      # float32 (1, 3, H, W) -> int64 symbols (1, C, H/16, W/16)
GenerateFn = Callable[[np.ndarray], np.ndarray]    # float32 latent (1, C, h, w) -> float32 image (1, 3, 16h, 16w)


def needs_tiling(height: int, width: int, threshold: int | None = None) -> bool:
    """Whether a padded image of ``height`` x ``width`` pixels goes through the tiled path
    (more than ``threshold`` pixels, default :data:`TILE_THRESHOLD_PIXELS`)."""
    return height * width > (TILE_THRESHOLD_PIXELS if threshold is None else threshold)


def spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Core intervals [a, b) covering 0..length with tiles of ``tile`` overlapping by ``overlap``."""
    if length <= tile:
        return [(0, length)]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step)) + [length - tile]
    return [(s, s + tile) for s in sorted(set(starts))]


def _ramp(length: int, lo_fade: int, hi_fade: int) -> np.ndarray:
    """1-D blending weights: linear ramps of ``lo_fade``/``hi_fade`` samples at the two ends, 1 inside."""
    weights = np.ones(length, dtype=np.float32)
    if lo_fade > 0:
        weights[:lo_fade] = np.arange(1, lo_fade + 1, dtype=np.float32) / (lo_fade + 1)
    if hi_fade > 0:
        weights[length - hi_fade:] = np.minimum(
            weights[length - hi_fade:], np.arange(hi_fade, 0, -1, dtype=np.float32) / (hi_fade + 1))
    return weights


def _axis_weights(spans: list[tuple[int, int]], scale: int) -> list[np.ndarray]:
    """Per-span blending weights along one axis, normalised so that they sum to 1 at every pixel.

    The 2-D weight of tile (i, j) is ``wy[i] (x) wx[j]``; since the tiles form a
    grid, the 2-D weight sum is the product of the 1-D sums, so normalising
    each axis makes the tiles a partition of unity with no image-sized buffer.
    """
    length = spans[-1][1] * scale
    ramps = []
    for k, (a, b) in enumerate(spans):
        lo = (spans[k - 1][1] - a) * scale if k > 0 else 0       # fade only towards overlapping neighbours,
        hi = (b - spans[k + 1][0]) * scale if k + 1 < len(spans) else 0  # never at the image border
        ramps.append(_ramp((b - a) * scale, lo, hi))
    total = np.zeros(length, dtype=np.float32)
    for (a, _), ramp in zip(spans, ramps):
        total[a * scale:a * scale + ramp.size] += ramp
    return [ramp / total[a * scale:a * scale + ramp.size] for (a, _), ramp in zip(spans, ramps)]


def tile_rows_for(width_px: int, tile: int, budget: int | None = None, scale: int = SCALE) -> int:
    """Latent rows per tile row so that one band of float RGB rows of ``width_px`` fits ``budget`` bytes
    (default :data:`BAND_BUDGET_BYTES`), but never fewer than :data:`MIN_TILE_ROWS`."""
    budget = BAND_BUDGET_BYTES if budget is None else budget
    rows = budget // max(1, 2 * scale * width_px * 3 * 4)  # the band holds up to two tile rows
    return int(max(MIN_TILE_ROWS, min(tile, rows)))


def synthesize_tiled(generate: GenerateFn, latent: np.ndarray, tile: int | None = None,
                     overlap: int | None = None, margin: int | None = None, scale: int = SCALE) -> np.ndarray:
    """Run ``generate`` tile by tile and return the 8-bit image (scale*h, scale*w, 3).

    Args:
        generate: maps a latent crop (1, C, h', w') to its image (1, 3, scale*h', scale*w').
        latent: generator input (1, C, h, w), noise channels (if any) already concatenated.
        tile: tile core size in latent pixels (default :data:`DEFAULT_TILE`); tile rows are
            shortened for very wide images (:func:`tile_rows_for`).
        overlap: latent pixels by which neighbouring cores overlap and are cross-faded
            (default :data:`DEFAULT_OVERLAP`).
        margin: latent pixels of discarded context around each tile (default :data:`DEFAULT_MARGIN`).
        scale: image pixels per latent pixel.
    """
    tile = DEFAULT_TILE if tile is None else tile
    overlap = DEFAULT_OVERLAP if overlap is None else overlap
    margin = DEFAULT_MARGIN if margin is None else margin
    if tile < 1 or overlap < 0 or margin < 0 or overlap >= tile:
        raise ValueError("need tile >= 1, 0 <= overlap < tile and margin >= 0")
    _, _, h, w = latent.shape
    tile_rows = min(tile, max(overlap + 1, tile_rows_for(w * scale, tile, scale=scale)))
    rows, cols = spans(h, tile_rows, overlap), spans(w, tile, overlap)
    row_weights, col_weights = _axis_weights(rows, scale), _axis_weights(cols, scale)
    out = np.empty((h * scale, w * scale, 3), dtype=np.uint8)
    band = np.zeros((3, 0, w * scale), dtype=np.float32)  # unfinished rows [done, band_end) in float
    done = 0
    for i, (y0, y1) in enumerate(rows):
        band_end = done + band.shape[1]
        if y1 * scale > band_end:  # grow the band down to this tile row's end
            band = np.concatenate([band, np.zeros((3, y1 * scale - band_end, w * scale), np.float32)], axis=1)
        cy0, cy1 = max(0, y0 - margin), min(h, y1 + margin)
        for j, (x0, x1) in enumerate(cols):
            cx0, cx1 = max(0, x0 - margin), min(w, x1 + margin)
            piece = generate(np.ascontiguousarray(latent[:, :, cy0:cy1, cx0:cx1]))[0]
            piece = piece[:, (y0 - cy0) * scale:(y1 - cy0) * scale, (x0 - cx0) * scale:(x1 - cx0) * scale]
            weight = row_weights[i][:, None] * col_weights[j][None, :]
            band[:, y0 * scale - done:y1 * scale - done, x0 * scale:x1 * scale] += piece * weight
        # rows above the next tile row's start receive nothing more: finish them as 8-bit
        finished = (rows[i + 1][0] if i + 1 < len(rows) else h) * scale
        if finished > done:
            out[done:finished] = from_unit(band[:, :finished - done])
            band = band[:, finished - done:].copy()
            done = finished
    return out


def synthesize(generate: GenerateFn, latent: np.ndarray, threshold: int | None = None) -> np.ndarray:
    """The 8-bit image (16h, 16w, 3) of a latent (1, C, h, w): one call, or tiles above ``threshold`` pixels."""
    h, w = latent.shape[-2] * SCALE, latent.shape[-1] * SCALE
    if needs_tiling(h, w, threshold):
        return synthesize_tiled(generate, latent)
    return from_unit(generate(latent))


def encode_tiled(encode: EncodeFn, pixels: np.ndarray, tile: int | None = None,
                 margin: int | None = None) -> np.ndarray:
    """Symbols (C, H/16, W/16) of a padded 8-bit image (H, W, 3), tile by tile
    (or, for an ``encode`` returning float latents, the latent in that dtype).

    Each latent tile [y0, y1) x [x0, x1) is computed from image pixels
    ``16*(y0 - margin) .. 16*(y1 + margin)`` (clipped to the image), converted to
    float only for that tile, and cropped; no blending is needed because every
    latent pixel comes from one tile.
    """
    tile = DEFAULT_TILE if tile is None else tile
    margin = DEFAULT_MARGIN if margin is None else margin
    hh, ww = pixels.shape[:2]
    if hh % SCALE or ww % SCALE:
        raise ValueError("image height and width must be multiples of 16")
    h, w, s = hh // SCALE, ww // SCALE, SCALE
    out: np.ndarray | None = None
    for y0, y1 in spans(h, tile, 0):
        for x0, x1 in spans(w, tile, 0):
            cy0, cy1 = max(0, y0 - margin), min(h, y1 + margin)
            cx0, cx1 = max(0, x0 - margin), min(w, x1 + margin)
            syms = encode(to_unit(pixels[cy0 * s:cy1 * s, cx0 * s:cx1 * s]))[0]
            if out is None:
                out = np.empty((syms.shape[0], h, w), dtype=syms.dtype)
            out[:, y0:y1, x0:x1] = syms[:, y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0]
    assert out is not None
    return out


def encode(encode_fn: EncodeFn, pixels: np.ndarray, threshold: int | None = None) -> np.ndarray:
    """Symbols (C, H/16, W/16) of a padded 8-bit image (H, W, 3): one call, or tiles above ``threshold``
    (in ``encode_fn``'s dtype: int64 symbols from the backends, float latents for :mod:`gcodec.refine`)."""
    if needs_tiling(pixels.shape[0], pixels.shape[1], threshold):
        return encode_tiled(encode_fn, pixels)
    return np.asarray(encode_fn(to_unit(pixels))[0])
