"""Low-frequency colour correction: the optional COLOUR section (format_spec.md 3.9).

At 0.02-0.1 bpp the GAN decoder synthesises plausible texture but drifts in
low-frequency colour and brightness: a violet sky, a darker field (on the 26
validation photos gcz-c4-v2's output is on average 3 levels too red, 3 too
dark in green and 3 too blue, and up to 12 levels off on one photo). The
encoder sees this, because it can run the decoder: it decodes its own file,
fits a coarse grid of per-channel offsets to the residual ``original -
decoded`` by least squares, quantises them and stores them range-coded
(typically 1-5 % of the file). The decoder adds the bilinearly interpolated
grid to its output, in integer arithmetic, so every machine adds the same
offsets.

The grid has cells of S x S pixels (S = 2^cell_log2, 32..1024); value v[c][i][j]
of channel c sits at the centre of cell (i, j) and is worth ``v * step`` 8-bit
levels. :func:`choose` picks S and the step per image by rate-distortion: a
grid is used only where its PSNR gain exceeds :data:`DB_PER_PERCENT` dB per
percent of the file it adds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .adaptive import Reader, Writer, decode_with, encode_with
from .errors import GczFormatError

#: Smallest and largest cell side, as log2 of pixels (32 .. 1024).
MIN_CELL_LOG2, MAX_CELL_LOG2 = 5, 10
#: Largest quantiser step (8-bit levels per unit).
MAX_STEP = 64
#: Largest |v * step| (a correction never exceeds the 8-bit range).
MAX_OFFSET = 255
#: Most grid cells a file may declare (bounds a decoder's work, format_spec.md 7).
MAX_GRID_CELLS = 16384
#: The encoder's exchange rate: a grid must gain this many dB of PSNR per percent of file size it adds.
DB_PER_PERCENT = 0.05
#: Grids the encoder tries: cell sides (log2) and steps.
CANDIDATE_CELL_LOG2 = (9, 8, 7, 6, 5)
CANDIDATE_STEPS = (4, 8)
#: Largest grid the encoder tries (bounds its coding time on big images).
MAX_CANDIDATE_CELLS = 4096
_ROWS_PER_CHUNK = 256


@dataclass(frozen=True)
class ColourGrid:
    """A quantised offset grid: ``values`` (3, GH, GW) integers, each worth ``step`` levels."""

    cell_log2: int
    step: int
    values: np.ndarray

    @property
    def cell(self) -> int:
        """Cell side in pixels."""
        return 1 << self.cell_log2


def _cells(length: int, cell_log2: int) -> int:
    """Grid cells along an axis of ``length`` pixels: ceil(length / 2^cell_log2)."""
    return -(-length // (1 << cell_log2))


def grid_shape(height: int, width: int, cell_log2: int) -> tuple[int, int]:
    """(GH, GW) = (ceil(HEIGHT / S), ceil(WIDTH / S)) for cells of side S = 2^cell_log2."""
    return _cells(height, cell_log2), _cells(width, cell_log2)


def taps(length: int, cell_log2: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps along one axis: indices (i0, i1) and integer weights (w0, w1), w0 + w1 = 2S.

    Pixel p lies at ``t = (2p + 1 - S) / (2S)`` cell units from the first cell centre;
    i = floor(t), a = (2p + 1 - S) - 2S * i, w0 = 2S - a, w1 = a, and the
    indices i, i + 1 are clamped to the grid (format_spec.md 3.9).
    """
    cell, cells = 1 << cell_log2, _cells(length, cell_log2)
    t = 2 * np.arange(length, dtype=np.int64) + 1 - cell
    i = np.floor_divide(t, 2 * cell)
    a = t - 2 * cell * i
    return np.clip(i, 0, cells - 1), np.clip(i + 1, 0, cells - 1), 2 * cell - a, a


def offsets(grid: ColourGrid, height: int, width: int, row0: int = 0, row1: int | None = None) -> np.ndarray:
    """The rounded integer offsets (row1 - row0, WIDTH, 3) of image rows ``row0 .. row1``.

    offset = round(step * sum of w_y * w_x * v / (4 S^2)), rounding halves up, all in int64.
    """
    row1 = height if row1 is None else row1
    yi0, yi1, yw0, yw1 = (a[row0:row1] for a in taps(height, grid.cell_log2))
    xi0, xi1, xw0, xw1 = taps(width, grid.cell_log2)
    denominator = 4 << (2 * grid.cell_log2)
    out = np.empty((row1 - row0, width, 3), np.int16)
    for c in range(3):
        v = grid.values[c].astype(np.int64) * grid.step
        along_x = v[:, xi0] * xw0 + v[:, xi1] * xw1                      # (GH, WIDTH)
        numerator = along_x[yi0] * yw0[:, None] + along_x[yi1] * yw1[:, None]
        out[..., c] = np.floor_divide(2 * numerator + denominator, 2 * denominator)
    return out


def apply(pixels: np.ndarray, grid: ColourGrid) -> np.ndarray:
    """``pixels`` (H, W, 3) uint8 with the grid's offsets added and clamped to 0..255 (a new array)."""
    height, width = pixels.shape[:2]
    out = np.empty_like(pixels)
    for r0 in range(0, height, _ROWS_PER_CHUNK):
        r1 = min(height, r0 + _ROWS_PER_CHUNK)
        corrected = pixels[r0:r1].astype(np.int16) + offsets(grid, height, width, r0, r1)
        out[r0:r1] = np.clip(corrected, 0, 255)
    return out


# ------------------------------------------------------------------ coding
def encode(grid: ColourGrid) -> bytes:
    """The COLOUR section body: CELL_LOG2, STEP, then the range-coded values."""
    check_parameters(grid.cell_log2, grid.step)
    values = [int(v) for v in np.asarray(grid.values).ravel()]
    if any(abs(v) * grid.step > MAX_OFFSET for v in values):
        raise ValueError(f"colour offsets beyond {MAX_OFFSET} levels")

    def fill(w: Writer) -> None:
        for v in values:
            w.sint("colour", v)

    return bytes([grid.cell_log2, grid.step]) + encode_with(fill)


def check_parameters(cell_log2: int, step: int) -> None:
    """Refuse a cell size or step outside the format's ranges."""
    if not MIN_CELL_LOG2 <= cell_log2 <= MAX_CELL_LOG2:
        raise GczFormatError(f"COLOUR cell 2^{cell_log2} outside 2^{MIN_CELL_LOG2}..2^{MAX_CELL_LOG2}")
    if not 1 <= step <= MAX_STEP:
        raise GczFormatError(f"COLOUR step {step} outside 1..{MAX_STEP}")


def decode(body: bytes, height: int, width: int) -> ColourGrid:
    """Parse a COLOUR body for an image of HEIGHT x WIDTH; raise GczFormatError if it is invalid."""
    if len(body) < 2:
        raise GczFormatError("COLOUR section is truncated")
    cell_log2, step = body[0], body[1]
    check_parameters(cell_log2, step)
    gh, gw = grid_shape(height, width, cell_log2)
    if gh * gw > MAX_GRID_CELLS:
        raise GczFormatError(f"COLOUR grid {gw}x{gh} has more than {MAX_GRID_CELLS} cells")
    limit = MAX_OFFSET // step

    def read(r: Reader) -> np.ndarray:
        values = np.empty(3 * gh * gw, np.int32)
        for k in range(values.size):
            v = r.sint("colour")
            if abs(v) > limit:
                raise GczFormatError(f"COLOUR offset {v * step} beyond {MAX_OFFSET} levels")
            values[k] = v
        return values.reshape(3, gh, gw)

    return ColourGrid(cell_log2, step, decode_with(body[2:], read, "COLOUR"))


# ------------------------------------------------------------------ the encoder's choice
def _basis(length: int, cell_log2: int) -> np.ndarray:
    """The interpolation matrix (length, cells) of one axis, exactly as the decoder weighs."""
    i0, i1, w0, w1 = taps(length, cell_log2)
    basis = np.zeros((length, _cells(length, cell_log2)))
    rows = np.arange(length)
    np.add.at(basis, (rows, i0), w0 / (2 << cell_log2))
    np.add.at(basis, (rows, i1), w1 / (2 << cell_log2))
    return basis


#: Largest interpolation matrix (pixels x cells of one axis) the fit inverts densely. Beyond it (images
#: thousands of pixels long on one side) the same least-squares solution comes from the normal equations,
#: a tridiagonal system: work and memory linear in the pixels, for any aspect ratio.
DENSE_FIT_ENTRIES = 1 << 20


def _dense_axis(length: int, cell_log2: int) -> bool:
    return length * _cells(length, cell_log2) <= DENSE_FIT_ENTRIES


def fit(original: np.ndarray, decoded: np.ndarray, cell_log2: int, steps: tuple[int, ...] = CANDIDATE_STEPS
        ) -> list[ColourGrid]:
    """Least-squares offset grids (one per step) taking ``decoded`` towards ``original`` (both H x W x 3).

    The grid V minimises ``|B_y V B_x^T - residual|`` per channel (B: :func:`_basis`), i.e.
    ``V = pinv(B_y) residual pinv(B_x)^T``; small axes use the dense pseudo-inverse, long ones
    :func:`solve_axis` (the same solution in linear time and memory).
    """
    height, width = original.shape[:2]
    if _dense_axis(height, cell_log2) and _dense_axis(width, cell_log2):
        pinv_y = np.linalg.pinv(_basis(height, cell_log2)).astype(np.float32)
        pinv_x = np.linalg.pinv(_basis(width, cell_log2)).astype(np.float32)
        exact = np.stack([pinv_y @ (original[..., c].astype(np.float32) - decoded[..., c]) @ pinv_x.T
                          for c in range(3)])
    else:
        exact = np.stack([solve_axis(solve_axis(original[..., c].astype(np.float64) - decoded[..., c],
                                                cell_log2).T, cell_log2).T for c in range(3)])
    grids = []
    for step in steps:
        limit = MAX_OFFSET // step
        values = np.clip(np.rint(exact / step), -limit, limit).astype(np.int32)
        grids.append(ColourGrid(cell_log2, step, values))
    return grids


def solve_axis(values: np.ndarray, cell_log2: int) -> np.ndarray:
    """``pinv(B) @ values`` for the basis B (length, cells) of axis 0 of ``values`` (length, k), float64.

    B has two taps per row, so ``B^T B`` is tridiagonal, symmetric and positive definite (every cell
    carries weight); ``(B^T B)^-1 B^T values`` is solved by the Thomas algorithm in O(length * k).
    """
    length = values.shape[0]
    cells, scale = _cells(length, cell_log2), float(2 << cell_log2)
    i0, i1, w0, w1 = taps(length, cell_log2)
    b0, b1 = w0 / scale, w1 / scale
    same = i0 == i1
    b0 = np.where(same, b0 + b1, b0)
    b1 = np.where(same, 0.0, b1)
    rhs = np.zeros((cells, values.shape[1]))
    for index, weight in ((i0, b0), (i1, b1)):  # B^T values, rows summed per cell (indices are sorted)
        cols, first = np.unique(index, return_index=True)
        rhs[cols] += np.add.reduceat(values * weight[:, None], first, axis=0)
    diag = np.bincount(i0, b0 * b0, cells) + np.bincount(i1, b1 * b1, cells)
    upper = np.bincount(i0[~same], (b0 * b1)[~same], cells)[:cells - 1]  # A[j, j + 1] = A[j + 1, j]
    # Thomas algorithm: forward elimination, back substitution
    c_prime = np.zeros(max(cells - 1, 0))
    d = rhs
    denom = diag[0]
    d[0] /= denom
    for j in range(1, cells):
        c_prime[j - 1] = upper[j - 1] / denom
        denom = diag[j] - upper[j - 1] * c_prime[j - 1]
        d[j] = (d[j] - upper[j - 1] * d[j - 1]) / denom
    for j in range(cells - 2, -1, -1):
        d[j] -= c_prime[j] * d[j + 1]
    return d


def _squared_error(original: np.ndarray, pixels: np.ndarray) -> float:
    return float(np.sum((original.astype(np.int32) - pixels) ** 2, dtype=np.float64))


def section_bytes(grid: ColourGrid) -> int:
    """Bytes the grid adds to a file: TYPE, FLAGS, LENGTH (uleb128) and body."""
    body = len(encode(grid))
    return 2 + max(1, math.ceil(body.bit_length() / 7)) + body


def choose(original: np.ndarray, decoded: np.ndarray, file_bytes: int,
           db_per_percent: float = DB_PER_PERCENT) -> ColourGrid | None:
    """The grid that maximises PSNR gain minus ``db_per_percent`` x the percent of ``file_bytes`` it adds.

    None where no grid is worth its bytes (or the image is too small for a gain).
    """
    height, width = original.shape[:2]
    base = _squared_error(original, decoded)
    if base == 0:
        return None
    best, best_score, shapes = None, 0.0, set()
    for cell_log2 in CANDIDATE_CELL_LOG2:
        shape = grid_shape(height, width, cell_log2)
        if shape in shapes or shape[0] * shape[1] > MAX_CANDIDATE_CELLS:
            continue
        shapes.add(shape)
        for grid in fit(original, decoded, cell_log2):
            error = _squared_error(original, apply(decoded, grid))
            if error <= 0:
                error = 1e-9
            gain_db = 10 * math.log10(base / error)
            score = gain_db - db_per_percent * 100 * section_bytes(grid) / file_bytes
            if score > best_score:
                best, best_score = grid, score
    return best
