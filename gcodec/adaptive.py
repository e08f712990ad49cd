"""Adaptive arithmetic coding of small integer streams (format_spec.md 5.1).

The side sections (HEATMAP, LABELS, COLOUR) code their integers with the range
coder of :mod:`gcodec.entropy` and *adaptive* integer frequency models: every
model starts with all counts 1, adds :data:`INCREMENT` to a symbol's count after
coding it, and halves all counts (rounding up) once their total exceeds
:data:`MAX_TOTAL`.  Integers are binarised as an adaptive bit-length class
followed by the raw bits below the top bit (an adaptive Elias-gamma code).
Everything is integer, so every machine decodes the same values.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from range_coder import RangeDecoder, RangeEncoder

from .entropy import run_decoder, run_encoder
from .errors import GczFormatError

INCREMENT = 24
MAX_TOTAL = 1 << 16
#: Largest bit length of a coded integer (values below 2^MAX_BITS).
MAX_BITS = 24
UNIFORM_BIT = [0, 1, 2]
T = TypeVar("T")


class AdaptiveModel:
    """Adaptive frequency model over ``size`` symbols (integer, deterministic)."""

    def __init__(self, size: int) -> None:
        self.freqs = [1] * size

    def cumulative(self) -> list[int]:
        """The current cumulative table ``[0, f0, f0+f1, ...]``."""
        out = [0]
        for f in self.freqs:
            out.append(out[-1] + f)
        return out

    def update(self, symbol: int) -> None:
        """Count a coded symbol; halve (rounding up) when the total exceeds MAX_TOTAL."""
        self.freqs[symbol] += INCREMENT
        if sum(self.freqs) > MAX_TOTAL:
            self.freqs = [(f + 1) // 2 for f in self.freqs]


class _Models:
    """Adaptive models by name, created on first use (format_spec.md 5.1)."""

    def __init__(self) -> None:
        self.models: dict[str, AdaptiveModel] = {}

    def model(self, name: str, size: int) -> AdaptiveModel:
        """The model called ``name`` (created with ``size`` symbols on first use)."""
        if name not in self.models:
            self.models[name] = AdaptiveModel(size)
        return self.models[name]


class Writer(_Models):
    """Codes symbols and integers into one range-coded stream."""

    def __init__(self, encoder: RangeEncoder) -> None:
        super().__init__()
        self.enc = encoder

    def symbol(self, name: str, size: int, value: int) -> None:
        """One symbol 0..size-1 of model ``name``."""
        m = self.model(name, size)
        self.enc.encode([value], m.cumulative())
        m.update(value)

    def uint(self, name: str, value: int) -> None:
        """An integer >= 0: its bit length with model ``name``, then the bits below the top one."""
        bits = value.bit_length()
        if bits > MAX_BITS:
            raise ValueError(f"value {value} too large to code")
        self.symbol(name, MAX_BITS + 1, bits)
        for i in range(bits - 2, -1, -1):
            self.enc.encode([(value >> i) & 1], UNIFORM_BIT)

    def sint(self, name: str, value: int) -> None:
        """A signed integer, zigzag-mapped to a uint (``2v`` for v >= 0, ``-2v - 1`` below)."""
        self.uint(name, 2 * value if value >= 0 else -2 * value - 1)

    def nonzero(self, name: str, value: int) -> None:
        """A non-zero integer: its sign (model ``name.sign``), then the uint ``|v| - 1``."""
        self.symbol(name + ".sign", 2, 1 if value < 0 else 0)
        self.uint(name, abs(value) - 1)


class Reader(_Models):
    """Reads what :class:`Writer` wrote; ``what`` names the section in errors."""

    def __init__(self, decoder: RangeDecoder, what: str = "side") -> None:
        super().__init__()
        self.dec = decoder
        self.what = what

    def symbol(self, name: str, size: int) -> int:
        """One symbol of model ``name``; an impossible one means a damaged section."""
        m = self.model(name, size)
        value = self.dec.decode(1, m.cumulative())[0]
        if not 0 <= value < size:
            raise GczFormatError(f"damaged {self.what} section")
        m.update(value)
        return value

    def uint(self, name: str) -> int:
        """The inverse of :meth:`Writer.uint`."""
        bits = self.symbol(name, MAX_BITS + 1)
        if bits == 0:
            return 0
        value = 1
        for _ in range(bits - 1):
            value = (value << 1) | self.dec.decode(1, UNIFORM_BIT)[0]
        return value

    def sint(self, name: str) -> int:
        """The inverse of :meth:`Writer.sint`."""
        z = self.uint(name)
        return z // 2 if z % 2 == 0 else -(z + 1) // 2

    def nonzero(self, name: str) -> int:
        """The inverse of :meth:`Writer.nonzero`."""
        negative = self.symbol(name + ".sign", 2)
        magnitude = self.uint(name) + 1
        return -magnitude if negative else magnitude


def encode_with(fill: Callable[[Writer], None]) -> bytes:
    """The byte string of everything ``fill`` writes."""
    return run_encoder(lambda encoder: fill(Writer(encoder)))


def decode_with(data: bytes, read: Callable[[Reader], T], what: str = "side") -> T:
    """Run ``read`` over the stream ``data`` and return its result."""
    return run_decoder(data, lambda decoder: read(Reader(decoder, what)))
