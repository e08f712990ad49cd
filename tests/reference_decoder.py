"""An independent decoder of .gcz v1 symbols, written from format_spec.md alone.

It imports nothing from gcodec: it parses the container and range-decodes the
latent symbols in pure Python, to prove that the spec is complete.
"""
from __future__ import annotations

import math
import struct
import zlib

MAGIC = b"\x89GCZ"


class SpecError(Exception):
    """The file violates format_spec.md."""


def _uleb(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise SpecError("truncated ULEB128")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def parse(data: bytes) -> dict:
    """Sections 2-4 of the spec: envelope, sections, header fields and tables."""
    if data[:4] != MAGIC or len(data) < 9:
        raise SpecError("bad magic or too short")
    if data[4] != 1:
        raise SpecError("unsupported version")
    if zlib.crc32(data[:-4]) != struct.unpack("<I", data[-4:])[0]:
        raise SpecError("crc mismatch")
    body, pos, sections = data[5:-4], 0, {}
    while pos < len(body):
        kind, flags = body[pos], body[pos + 1]
        length, pos = _uleb(body, pos + 2)
        sections[kind] = body[pos:pos + length]
        pos += length
    out = {}
    width, p = _uleb(sections[1], 0)
    height, _ = _uleb(sections[1], p)
    out["width"], out["height"] = width, height
    name_len = sections[2][0]
    out["model"] = sections[2][1:1 + name_len].decode("ascii")
    out["model_hash"] = sections[2][1 + name_len:5 + name_len]
    channels, levels, ds = sections[3][0], sections[3][1], sections[3][2]
    out.update(channels=channels, levels=levels, downsampling=ds)
    out["latent_h"] = max(2, math.ceil(height / ds))
    out["latent_w"] = max(2, math.ceil(width / ds))
    tables = sections[4]
    precision = tables[0]
    bits = int.from_bytes(tables[1:], "big")
    nbits = (len(tables) - 1) * 8
    freqs = []
    index = 0
    for _c in range(channels):
        row = []
        for _s in range(levels - 1):
            shift = nbits - (index + 1) * precision
            row.append((bits >> shift) & ((1 << precision) - 1))
            index += 1
        row.append((1 << precision) - sum(row))
        freqs.append(row)
    out["precision"], out["freqs"] = precision, freqs
    out["payload"] = sections[5]
    # 3.6 REALISM (optional): one byte, the encoder's default realism in 1/100 steps
    out["realism"] = None
    if 6 in sections:
        if len(sections[6]) != 1 or sections[6][0] > 100:
            raise SpecError("bad REALISM section")
        out["realism"] = sections[6][0] / 100
    return out


def range_decode(payload: bytes, freqs: list[list[int]], per_channel: int) -> list[list[int]]:
    """Section 5 of the spec: the 32-bit range decoder, one table per channel."""
    mask = 0xFFFFFFFF
    pos = 0

    def next_byte() -> int:
        nonlocal pos
        byte = payload[pos] if pos < len(payload) else 0xFF
        pos += 1
        return byte

    rng, code = 0xFFFFFFFF, 0
    for _ in range(4):
        code = ((code << 8) | next_byte()) & mask
    result = []
    for row in freqs:
        cum = [0]
        for f in row:
            cum.append(cum[-1] + f)
        total = cum[-1]
        symbols = []
        for _ in range(per_channel):
            r = rng // total
            target = min(total - 1, code // r)
            s = 0
            while cum[s + 1] <= target:
                s += 1
            low, high = cum[s], cum[s + 1]
            code = (code - r * low) & mask
            rng = r * (high - low) if high != total else (rng - r * low) & mask
            while rng < (1 << 24):
                rng = (rng << 8) & mask
                code = ((code << 8) | next_byte()) & mask
            symbols.append(s)
        result.append(symbols)
    return result


def decode_symbols(data: bytes) -> tuple[dict, list[list[int]]]:
    """Parse a file and return (header, symbols per channel in row-major order)."""
    header = parse(data)
    return header, range_decode(header["payload"], header["freqs"], header["latent_h"] * header["latent_w"])
