"""Static arithmetic coding of quantized latents: one frequency table per channel.

Wraps the ``range-coder`` package (the 32-bit carry-propagating range coder of
Okanohara/Oku, specified in format_spec.md section 5) behind guards that
package lacks:

* it takes only plain lists of Python ints -> we convert;
* a table total above 2^24 makes its encoder loop forever -> totals are 2^P
  with P <= :data:`MAX_PRECISION` (16);
* negative or out-of-range symbols give wrong output or crash -> validated;
* it reads and writes file paths only, and bytes after the payload corrupt the
  end of a decode -> each call gets a private temporary file holding exactly
  the payload, removed afterwards;
* it never detects damage -> the container stores lengths and a CRC32.
"""
from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from range_coder import RangeDecoder, RangeEncoder

from .errors import GczEntropyError

T = TypeVar("T")

#: Smallest and largest table precision P (tables sum to 2^P).
MIN_PRECISION = 2
MAX_PRECISION = 16


@dataclass(frozen=True)
class FrequencyTables:
    """Per-channel integer frequency tables, each summing to ``2 ** precision``.

    Attributes:
        precision: P; every table's frequencies sum to 2^P.
        freqs: array (channels, levels) of int64, every entry >= 1.
    """

    precision: int
    freqs: np.ndarray

    def __post_init__(self) -> None:
        validate_tables(self.freqs, self.precision)

    @property
    def channels(self) -> int:
        """Number of tables (latent channels)."""
        return int(self.freqs.shape[0])

    @property
    def levels(self) -> int:
        """Alphabet size L of each table."""
        return int(self.freqs.shape[1])

    def cumulative(self, channel: int) -> list[int]:
        """Cumulative table ``[0, f0, f0+f1, ..., 2^P]`` of a channel as Python ints."""
        return [0] + np.cumsum(self.freqs[channel]).astype(np.int64).tolist()

    def cross_entropy_bits(self, symbols: np.ndarray) -> float:
        """Ideal code length in bits of ``symbols`` (C, ...) under these tables."""
        total = 0.0
        scale = float(2 ** self.precision)
        for c in range(self.channels):
            counts = np.bincount(symbols[c].ravel(), minlength=self.levels)
            total -= float(np.sum(counts * np.log2(self.freqs[c] / scale)))
        return total


def validate_tables(freqs: np.ndarray, precision: int) -> None:
    """Raise :class:`GczEntropyError` unless ``freqs`` are valid tables of precision P."""
    if not MIN_PRECISION <= precision <= MAX_PRECISION:
        raise GczEntropyError(f"table precision {precision} outside {MIN_PRECISION}..{MAX_PRECISION}")
    if freqs.ndim != 2 or freqs.shape[0] < 1 or freqs.shape[1] < 2:
        raise GczEntropyError("frequency tables must have shape (channels >= 1, levels >= 2)")
    if np.any(freqs < 1):
        raise GczEntropyError("every frequency must be >= 1")
    if np.any(freqs.sum(axis=1) != 2 ** precision):
        raise GczEntropyError(f"every frequency table must sum to 2^{precision}")


def quantize_counts(counts: np.ndarray, precision: int) -> np.ndarray:
    """Turn symbol counts (levels,) into frequencies >= 1 summing exactly to 2^P.

    Deterministic: largest-remainder rounding of the scaled counts, after
    reserving 1 for every symbol; ties are broken by the lower symbol index.
    """
    levels = counts.shape[0]
    total = 2 ** precision
    if total < levels:
        raise GczEntropyError(f"precision {precision} is too small for {levels} symbols")
    counts = counts.astype(np.float64)
    budget = total - levels
    if counts.sum() <= 0:
        counts = np.ones(levels)
    scaled = counts / counts.sum() * budget
    base = np.floor(scaled).astype(np.int64)
    remainder = budget - int(base.sum())
    order = sorted(range(levels), key=lambda i: (-(scaled[i] - base[i]), i))
    for i in order[:remainder]:
        base[i] += 1
    return base + 1


def tables_for(symbols: np.ndarray, levels: int, precision: int) -> FrequencyTables:
    """Empirical per-channel tables of ``symbols`` (C, ...) at a given precision."""
    counts = np.stack([np.bincount(symbols[c].ravel(), minlength=levels) for c in range(symbols.shape[0])])
    return FrequencyTables(precision, np.stack([quantize_counts(row, precision) for row in counts]))


def table_bits(channels: int, levels: int, precision: int) -> int:
    """Bits the packed tables take in the file (format_spec.md section 4)."""
    return channels * (levels - 1) * precision


def best_tables(symbols: np.ndarray, levels: int,
                precisions: Sequence[int] = range(4, MAX_PRECISION + 1)) -> FrequencyTables:
    """Choose the precision minimising table bits plus ideal payload bits."""
    best: tuple[float, FrequencyTables] | None = None
    for p in precisions:
        if 2 ** p < levels:
            continue
        tables = tables_for(symbols, levels, p)
        cost = table_bits(symbols.shape[0], levels, p) + tables.cross_entropy_bits(symbols)
        if best is None or cost < best[0]:
            best = (cost, tables)
    if best is None:
        raise GczEntropyError("no usable table precision")
    return best[1]


def _check_symbols(symbols: np.ndarray, tables: FrequencyTables) -> np.ndarray:
    if symbols.ndim < 1 or symbols.shape[0] != tables.channels:
        raise GczEntropyError(f"symbols have {symbols.shape[0] if symbols.ndim else 0} channels, "
                              f"tables {tables.channels}")
    if not np.issubdtype(symbols.dtype, np.integer):
        raise GczEntropyError("symbols must be integers")
    if symbols.size and (symbols.min() < 0 or symbols.max() >= tables.levels):
        raise GczEntropyError(f"symbols must lie in 0..{tables.levels - 1}")
    return symbols.reshape(tables.channels, -1)


def _private_temp() -> str:
    fd, path = tempfile.mkstemp(prefix="gcz-", suffix=".rc")
    os.close(fd)
    return path


def run_encoder(fill: Callable[[RangeEncoder], None]) -> bytes:
    """Bytes a :class:`RangeEncoder` produces while ``fill`` codes into it (private temporary file)."""
    path = _private_temp()
    try:
        encoder = RangeEncoder(path)
        try:
            fill(encoder)
        finally:
            encoder.close()
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)


def run_decoder(payload: bytes, read: Callable[[RangeDecoder], T]) -> T:
    """What ``read`` decodes from ``payload`` with a :class:`RangeDecoder` (private temporary file)."""
    path = _private_temp()
    try:
        with open(path, "wb") as fh:
            fh.write(payload)
        decoder = RangeDecoder(path)
        try:
            return read(decoder)
        finally:
            decoder.close()
    finally:
        os.unlink(path)


def encode(symbols: np.ndarray, tables: FrequencyTables) -> bytes:
    """Range-code ``symbols`` (C, ...) channel by channel, channel c with table c."""
    flat = _check_symbols(symbols, tables)

    def fill(encoder: RangeEncoder) -> None:
        for c in range(tables.channels):
            if flat.shape[1]:
                encoder.encode(flat[c].astype(np.int64).tolist(), tables.cumulative(c))

    return run_encoder(fill)


def decode(payload: bytes, tables: FrequencyTables, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`encode`: symbols of ``shape`` (C, ...) as uint8 / int64 array.

    Any payload decodes to *some* symbols (a range coder cannot detect damage);
    integrity is the container's CRC32's job.
    """
    if not shape or shape[0] != tables.channels:
        raise GczEntropyError("decode shape does not match the tables")
    per_channel = math.prod(shape[1:])
    rows = run_decoder(payload, lambda decoder: [decoder.decode(per_channel, tables.cumulative(c))
                                                 if per_channel else [] for c in range(tables.channels)])
    out = np.asarray(rows, dtype=np.int64).reshape(shape)
    if out.size and (out.min() < 0 or out.max() >= tables.levels):
        raise GczEntropyError("decoded symbol out of range")
    return out
