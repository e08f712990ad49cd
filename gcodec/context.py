"""Context-adaptive coding of the latent symbols (format_spec.md 3.10 and 5.2).

The static PAYLOAD code (:mod:`gcodec.entropy`) gives every symbol of a channel
the same probabilities.  Neighbouring latent symbols are strongly correlated,
so a file with a CONTEXT section codes each symbol with an *adaptive* model
chosen by its left (W) and upper (N) neighbours in the same channel: one model
per (channel, W, N).  Every model starts from the file's own channel table
(TABLES), weighted as ``prior`` counts, and adapts as in 5.1 (+24 per coded
symbol) but halves its counts above a total of 2^10.  Everything is integer and
decided by data in the file, so every machine decodes the same symbols.

Measured on the photo pool (``bench/context_coding.md``): 24-26 % fewer payload
bytes than the static tables for the encoder's symbols at 768 px (35 % at 1536 px),
with the decoded image unchanged; files of the refined default encode are 18 % smaller.

Public surface: :data:`DEFAULT_PRIOR`, :func:`encode`, :func:`decode`,
:func:`code_bits` (ideal code length, for measurements), :func:`check_prior`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
from range_coder import RangeDecoder, RangeEncoder

from .entropy import FrequencyTables, run_decoder, run_encoder
from .errors import GczEntropyError

#: Count added to a symbol's frequency after it is coded (as format_spec.md 5.1).
INCREMENT = 24
#: A model whose total exceeds this halves its counts, rounding up (5.1 halves above 2^16; a
#: latent's statistics drift across a photo, and forgetting faster codes it 1-2 % smaller).
MAX_TOTAL = 1 << 10
#: The prior weight gcz writes: the channel table's share of a fresh model's total, in counts
#: (one coded symbol adds 24); chosen on the photo pool (bench/context_coding.md).
DEFAULT_PRIOR = 100
#: Largest prior weight a CONTEXT section can hold (one byte).
MAX_PRIOR = 255


def check_prior(prior: int) -> int:
    """``prior`` if it fits the CONTEXT section (0..255), else :class:`GczEntropyError`."""
    if not 0 <= prior <= MAX_PRIOR:
        raise GczEntropyError(f"context prior {prior} outside 0..{MAX_PRIOR}")
    return prior


def initial_cumulative(freqs: np.ndarray, precision: int, prior: int) -> list[int]:
    """Cumulative start table of every model of a channel whose TABLES row is ``freqs``:
    ``f[s] = 1 + floor(prior * freqs[s] / 2^P)`` (format_spec.md 5.2)."""
    cum = [0]
    for f in freqs.tolist():
        cum.append(cum[-1] + 1 + ((prior * int(f)) >> precision))
    return cum


def _update(cum: list[int], symbol: int) -> None:
    """Count a coded symbol in the cumulative table ``cum`` in place; halve above :data:`MAX_TOTAL`."""
    levels = len(cum) - 1
    for k in range(symbol + 1, levels + 1):
        cum[k] += INCREMENT
    if cum[levels] > MAX_TOTAL:
        total = 0
        previous = 0
        for k in range(1, levels + 1):
            freq = cum[k] - previous
            previous = cum[k]
            total += (freq + 1) // 2
            cum[k] = total


def _positions(grid: list[list[int]], coded: np.ndarray | None) -> Iterator[tuple[int, int]]:
    """The coded positions (y, x) of a channel in row-major order (all without a heatmap)."""
    if coded is None:
        width = len(grid[0])
        for y in range(len(grid)):
            for x in range(width):
                yield y, x
    else:
        ys, xs = np.nonzero(coded)
        yield from zip(ys.tolist(), xs.tolist())


def _grids(symbols: np.ndarray, tables: FrequencyTables, prior: int, coded: np.ndarray | None) -> list:
    """``symbols`` (C, h, w) checked against ``tables`` and ``prior``, as the grid the decoder rebuilds
    (the centre symbol where ``coded`` is False): C lists of h rows of Python ints."""
    check_prior(prior)
    symbols = np.asarray(symbols)
    if symbols.ndim != 3 or symbols.shape[0] != tables.channels:
        raise GczEntropyError(f"symbols must have shape (C={tables.channels}, h, w)")
    if symbols.size and (symbols.min() < 0 or symbols.max() >= tables.levels):
        raise GczEntropyError(f"symbols must lie in 0..{tables.levels - 1}")
    if coded is not None:
        if coded.shape != symbols.shape[1:]:
            raise GczEntropyError("the heatmap does not match the latent grid")
        symbols = np.where(coded[None], symbols, tables.levels // 2)
    return symbols.astype(np.int64).tolist()


def _walk(grids: list[list[list[int]]], tables: FrequencyTables, prior: int, coded: np.ndarray | None,
          code: Callable[[list[int], int], int]) -> None:
    """Visit every coded symbol in PAYLOAD order with its model's cumulative table.

    ``code(cum, current)`` codes (or decodes) one symbol with table ``cum`` and returns it; the symbol
    is written back into ``grids`` (C lists of h rows) and counted in its model.
    """
    levels, centre = tables.levels, tables.levels // 2
    for c, grid in enumerate(grids):
        start = initial_cumulative(tables.freqs[c], tables.precision, prior)
        models: dict[int, list[int]] = {}
        for y, x in _positions(grid, coded):
            row = grid[y]
            context = (row[x - 1] if x else centre) * levels + (grid[y - 1][x] if y else centre)
            cum = models.get(context)
            if cum is None:
                cum = models[context] = list(start)
            symbol = row[x] = code(cum, row[x])
            _update(cum, symbol)


def encode(symbols: np.ndarray, tables: FrequencyTables, prior: int = DEFAULT_PRIOR,
           coded: np.ndarray | None = None) -> bytes:
    """Range-code ``symbols`` (C, h, w) with per-(channel, W, N) adaptive models (format_spec.md 5.2).

    ``coded`` (h, w) bool, for selective files, codes only the positions where it is True; the
    neighbours are then read from the grid the decoder rebuilds, with the centre symbol elsewhere.
    """
    grids = _grids(symbols, tables, prior, coded)

    def fill(encoder: RangeEncoder) -> None:
        def code(cum: list[int], symbol: int) -> int:
            encoder.encode([symbol], cum)
            return symbol
        _walk(grids, tables, prior, coded, code)

    return run_encoder(fill)


def decode(payload: bytes, tables: FrequencyTables, shape: tuple[int, int, int], prior: int,
           coded: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`encode`: the symbols (C, h, w), the centre symbol where ``coded`` is False.

    Any payload decodes to *some* symbols; integrity is the container's CRC32's job.  The work is
    bounded by the grid's size, which the caller has checked against the pixel limit.
    """
    check_prior(prior)
    channels, height, width = shape
    if channels != tables.channels:
        raise GczEntropyError("decode shape does not match the tables")
    if coded is not None and coded.shape != (height, width):
        raise GczEntropyError("the heatmap does not match the latent grid")
    levels = tables.levels
    grids = [[[levels // 2] * width for _ in range(height)] for _ in range(channels)]

    def read(decoder: RangeDecoder) -> None:
        def code(cum: list[int], _: int) -> int:
            symbol = decoder.decode(1, cum)[0]
            if not 0 <= symbol < levels:
                raise GczEntropyError("decoded symbol out of range")
            return symbol
        _walk(grids, tables, prior, coded, code)

    if height and width:
        run_decoder(payload, read)
    return np.asarray(grids, dtype=np.int64).reshape(shape)


def code_bits(symbols: np.ndarray, tables: FrequencyTables, prior: int = DEFAULT_PRIOR,
              coded: np.ndarray | None = None) -> float:
    """Ideal code length in bits of ``symbols`` (C, h, w) under :func:`encode`'s models (no coder overhead)."""
    grids = _grids(symbols, tables, prior, coded)
    levels = tables.levels
    bits = [0.0]

    def code(cum: list[int], symbol: int) -> int:
        bits[0] -= math.log2((cum[symbol + 1] - cum[symbol]) / cum[levels])
        return symbol

    _walk(grids, tables, prior, coded, code)
    return bits[0]
