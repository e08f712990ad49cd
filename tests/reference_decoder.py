"""An independent decoder of .gcz v1 symbols, written from format_spec.md alone.

It imports nothing from gcodec: it parses the container and range-decodes the
latent symbols in pure Python, to prove that the spec is complete. It is also
a strict validator (:func:`validate`): it refuses every file the spec makes
invalid, so that gcodec's refusals can be checked against the spec.
"""
from __future__ import annotations

import math
import struct
import zlib

MAGIC = b"\x89GCZ"


class SpecError(Exception):
    """The file violates format_spec.md."""


#: Section types version 1 knows (3): the five required ones, then the optional and selective ones.
REQUIRED = (1, 2, 3, 4, 5)
KNOWN = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
#: 7: a decoder refuses files of more sections than this.
MAX_SECTIONS = 256


def _uleb(buf: bytes, pos: int) -> tuple[int, int]:
    """Conventions: at most 5 bytes, minimal (no trailing 0x00 group after the first byte)."""
    value = 0
    for i in range(5):
        if pos >= len(buf):
            raise SpecError("truncated ULEB128")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i and byte == 0:
                raise SpecError("non-minimal ULEB128")
            return value, pos
    raise SpecError("ULEB128 longer than 5 bytes")


def _sections(data: bytes) -> list[tuple[int, int, bytes]]:
    """1-3: envelope checks in the spec's order, then the (type, flags, body) list."""
    if data[:4] != MAGIC:
        raise SpecError("bad magic or too short")
    if len(data) < 5 or data[4] == 0:
        raise SpecError("missing or invalid version")
    if data[4] != 1:
        raise SpecError("unsupported version")
    if len(data) < 9:
        raise SpecError("too short")
    if zlib.crc32(data[:-4]) != struct.unpack("<I", data[-4:])[0]:
        raise SpecError("crc mismatch")
    body, pos, out = data[5:-4], 0, []
    while pos < len(body):
        if len(out) == MAX_SECTIONS:
            raise SpecError("more sections than a decoder accepts")
        if pos + 2 > len(body):
            raise SpecError("truncated section header")
        kind, flags = body[pos], body[pos + 1]
        length, pos = _uleb(body, pos + 2)
        if pos + length > len(body):
            raise SpecError("section runs past the CRC field")
        out.append((kind, flags, body[pos:pos + length]))
        pos += length
    return out


def parse(data: bytes) -> dict:
    """Sections 2-4 of the spec: envelope, sections, header fields and tables; refuses every file the
    spec (and its decoder limits, 7, but for the pixel limit) makes invalid."""
    listed = _sections(data)
    sections: dict[int, bytes] = {}
    for kind, flags, body in listed:
        if kind in KNOWN:
            if kind in sections:
                raise SpecError("a known section occurs twice")
            sections[kind] = body
        elif flags & 1:
            raise SpecError("unknown critical section")
    if any(t not in sections for t in REQUIRED) or [k for k, _, _ in listed[:5]] != list(REQUIRED):
        raise SpecError("the five required sections must come first, in order")
    out = {}
    # 3.1 IMAGE
    width, p = _uleb(sections[1], 0)
    height, p = _uleb(sections[1], p)
    if p != len(sections[1]) or not (1 <= width <= 65535 and 1 <= height <= 65535):
        raise SpecError("bad IMAGE section")
    out["width"], out["height"] = width, height
    # 3.2 MODEL
    model = sections[2]
    name_len = model[0] if model else 0
    if not 1 <= name_len <= 64 or len(model) != 1 + name_len + 4:
        raise SpecError("bad MODEL section")
    name = model[1:1 + name_len]
    if any(not 0x20 <= b <= 0x7E for b in name):
        raise SpecError("model name is not printable ASCII")
    out["model"] = name.decode("ascii")
    out["model_hash"] = model[1 + name_len:5 + name_len]
    # 3.3 LATENT
    if len(sections[3]) != 3:
        raise SpecError("bad LATENT section")
    channels, levels, ds = sections[3][0], sections[3][1], sections[3][2]
    if channels < 1 or levels < 2 or ds < 1:
        raise SpecError("bad LATENT values")
    out.update(channels=channels, levels=levels, downsampling=ds)
    out["latent_h"] = max(2, math.ceil(height / ds))
    out["latent_w"] = max(2, math.ceil(width / ds))
    # 4 TABLES
    tables = sections[4]
    precision = tables[0] if tables else 0
    nfields = channels * (levels - 1)
    if not 2 <= precision <= 16 or len(tables) != 1 + math.ceil(nfields * precision / 8):
        raise SpecError("bad TABLES section")
    bits = int.from_bytes(tables[1:], "big")
    nbits = (len(tables) - 1) * 8
    if bits & ((1 << (nbits - nfields * precision)) - 1):
        raise SpecError("non-zero TABLES padding")
    freqs = []
    index = 0
    for _c in range(channels):
        row = []
        for _s in range(levels - 1):
            shift = nbits - (index + 1) * precision
            row.append((bits >> shift) & ((1 << precision) - 1))
            index += 1
        row.append((1 << precision) - sum(row))
        if min(row) < 1:
            raise SpecError("a frequency below 1")
        freqs.append(row)
    out["precision"], out["freqs"] = precision, freqs
    out["payload"] = sections[5]
    # 3.6 REALISM (optional): one byte, the encoder's default realism in 1/100 steps
    out["realism"] = None
    if 6 in sections:
        if len(sections[6]) != 1 or sections[6][0] > 100:
            raise SpecError("bad REALISM section")
        out["realism"] = sections[6][0] / 100
    # 3.7 / 3.8 (selective compression): both or neither; the latent covers the padded image
    out["selective"] = None
    if (7 in sections) != (8 in sections):
        raise SpecError("HEATMAP without LABELS or the reverse")
    if 7 in sections:
        ph = 16 * max(2, math.ceil(height / 16))
        pw = 16 * max(2, math.ceil(width / 16))
        if ds not in (8, 16):
            raise SpecError("selective files need D = 8 or 16")
        out["latent_h"], out["latent_w"] = ph // ds, pw // ds
        labels = sections[8]
        if len(labels) < 3:
            raise SpecError("truncated LABELS section")
        cell, classes, background = labels[0], labels[1], labels[2]
        if cell not in (1, 2, 4, 8, 16) or not 1 <= classes <= 255 or background >= classes:
            raise SpecError("bad LABELS header")
        regions, p = _uleb(labels, 3)
        if regions > (ph // cell) * (pw // cell):
            raise SpecError("more regions than cells")
        out["selective"] = {"heatmap": sections[7], "cell": cell, "classes": classes, "background": background,
                            "regions": regions, "stream": labels[p:], "grid_h": ph // cell, "grid_w": pw // cell}
    # 3.10 CONTEXT (critical): one byte, PRIOR; PAYLOAD is then coded as in 5.2
    out["context_prior"] = None
    if 10 in sections:
        if len(sections[10]) != 1:
            raise SpecError("bad CONTEXT section")
        out["context_prior"] = sections[10][0]
    # 3.9 COLOUR (optional): cell log2, step, then the range-coded grid
    out["colour"] = None
    if 9 in sections:
        body = sections[9]
        if len(body) < 2 or not 5 <= body[0] <= 10 or not 1 <= body[1] <= 64:
            raise SpecError("bad COLOUR header")
        cell = 1 << body[0]
        gh, gw = -(-height // cell), -(-width // cell)
        if gh * gw > 16384:
            raise SpecError("COLOUR grid too large")
        out["colour"] = {"cell": cell, "step": body[1], "grid_h": gh, "grid_w": gw, "stream": body[2:]}
    return out


def validate(data: bytes) -> dict:
    """Everything a decoder must check before synthesis: :func:`parse`, then the COLOUR grid's values
    (3.9) and, for selective files, the heatmap and the label map (3.7, 3.8, 7); the header on success."""
    header = parse(data)
    if header["colour"] is not None:
        decode_colour(header)
    if header["selective"] is not None:
        decode_heatmap(header)
        decode_label_grid(header)
    return header


def decode_colour(header: dict) -> list[list[list[int]]]:
    """3.9: the grid values v[c][i][j], channel by channel, each a sint of the one model "colour"."""
    col = header["colour"]
    model = Adaptive(RangeDecoder(col["stream"]))
    grid = [[[model.sint("colour") for _ in range(col["grid_w"])] for _ in range(col["grid_h"])]
            for _ in range(3)]
    if any(abs(v) * col["step"] > 255 for plane in grid for row in plane for v in row):
        raise SpecError("COLOUR offset beyond 255")
    return grid


def colour_offset(header: dict, grid: list[list[list[int]]], c: int, y: int, x: int) -> int:
    """3.9: the integer offset added to channel c of pixel (x, y)."""
    col = header["colour"]
    s, step = col["cell"], col["step"]

    def axis(p: int, cells: int) -> list[tuple[int, int]]:
        t = 2 * p + 1 - s
        i = t // (2 * s)                      # floor division
        a = t - 2 * s * i
        clamp = lambda k: min(max(k, 0), cells - 1)  # noqa: E731
        return [(clamp(i), 2 * s - a), (clamp(i + 1), a)]

    num = sum(wy * wx * grid[c][iy][ix] for iy, wy in axis(y, col["grid_h"]) for ix, wx in axis(x, col["grid_w"]))
    den = 4 * s * s
    return (2 * step * num + den) // (2 * den)


class RangeDecoder:
    """Section 5's decoder state, one symbol at a time with any cumulative table (5.1)."""

    MASK = 0xFFFFFFFF

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0
        self.rng, self.code = 0xFFFFFFFF, 0
        for _ in range(4):
            self.code = ((self.code << 8) | self._byte()) & self.MASK

    def _byte(self) -> int:
        byte = self.data[self.pos] if self.pos < len(self.data) else 0xFF
        self.pos += 1
        return byte

    def decode(self, cum: list[int]) -> int:
        total = cum[-1]
        r = self.rng // total
        target = min(total - 1, self.code // r)
        s = 0
        while cum[s + 1] <= target:
            s += 1
        self.code = (self.code - r * cum[s]) & self.MASK
        self.rng = r * (cum[s + 1] - cum[s]) if cum[s + 1] != total else (self.rng - r * cum[s]) & self.MASK
        while self.rng < (1 << 24):
            self.rng = (self.rng << 8) & self.MASK
            self.code = ((self.code << 8) | self._byte()) & self.MASK
        return s


class Adaptive:
    """5.1: counts from 1, +24 per coded symbol, halved (rounding up) above a total of 65536."""

    def __init__(self, decoder: RangeDecoder) -> None:
        self.decoder, self.models = decoder, {}

    def symbol(self, name: str, size: int) -> int:
        freqs = self.models.setdefault(name, [1] * size)
        cum = [0]
        for f in freqs:
            cum.append(cum[-1] + f)
        s = self.decoder.decode(cum)
        freqs[s] += 24
        if sum(freqs) > 65536:
            self.models[name] = [(f + 1) // 2 for f in freqs]
        return s

    def uint(self, name: str) -> int:
        bits = self.symbol(name, 25)
        if bits == 0:
            return 0
        v = 1
        for _ in range(bits - 1):
            v = (v << 1) | self.decoder.decode([0, 1, 2])
        return v

    def sint(self, name: str) -> int:
        z = self.uint(name)
        return z // 2 if z % 2 == 0 else -(z + 1) // 2

    def nonzero(self, name: str) -> int:
        negative = self.symbol(name + ".sign", 2)
        v = self.uint(name) + 1
        return -v if negative else v


def decode_heatmap(header: dict) -> list[list[int]]:
    """3.7: the heatmap bits, h rows of w."""
    h, w = header["latent_h"], header["latent_w"]
    model = Adaptive(RangeDecoder(header["selective"]["heatmap"]))
    m = [[0] * w for _ in range(h)]
    for y in range(h):
        for x in range(w):
            left = m[y][x - 1] if x > 0 else 0
            up = m[y - 1][x] if y > 0 else 0
            ul = m[y - 1][x - 1] if x > 0 and y > 0 else 0
            ur = m[y - 1][x + 1] if y > 0 and x + 1 < w else 0
            m[y][x] = model.symbol(f"heat.{left | up << 1 | ul << 2 | ur << 3}", 2)
    return m


def decode_label_grid(header: dict) -> list[list[int]]:
    """3.8: decode the regions and rasterise them by the even-odd rule, row by row."""
    sel = header["selective"]
    gh, gw = sel["grid_h"], sel["grid_w"]
    model = Adaptive(RangeDecoder(sel["stream"]))
    grid = [[sel["background"]] * gw for _ in range(gh)]
    budget = 2 * (gw + 1) * (gh + 1) + 4
    px = py = 0
    regions = []
    for _ in range(sel["regions"]):
        label = model.symbol("class", sel["classes"])
        verticals = []  # (column, row from, row to)
        vertices = []
        for _ in range(model.uint("loops") + 1):
            x0, y0 = px + model.sint("start.x"), py + model.sint("start.y")
            px, py = x0, y0
            n = model.uint("runs")
            budget -= 2 * n + 4
            if budget < 0 or not (0 <= x0 <= gw and 0 <= y0 <= gh):
                raise SpecError("bad loop")
            x, y = x0, y0
            for i in range(2 * n + 4):
                if i < 2 * n + 2:
                    run = model.nonzero("run.h" if i % 2 == 0 else "run.v")
                else:
                    run = x0 - x if i % 2 == 0 else y0 - y
                    if run == 0:
                        raise SpecError("loop does not close with a corner")
                if i % 2 == 0:
                    x += run
                else:
                    verticals.append((x, min(y, y + run), max(y, y + run)))
                    y += run
                if not (0 <= x <= gw and 0 <= y <= gh):
                    raise SpecError("vertex outside the grid")
                vertices.append((x, y))
        regions.append((label, verticals, vertices))
    # 7: rasterising touches each region's bounding box; more than 64 grids of them is refused
    work = sum((max(x for x, _ in v) - min(x for x, _ in v)) * (max(y for _, y in v) - min(y for _, y in v))
               for _, _, v in regions)
    if work > 64 * max(1, gw * gh):
        raise SpecError("label map too complex to rasterise")
    for label, verticals, _ in regions:
        for r in range(gh):
                columns = sorted(c for c, lo, hi in verticals if lo <= r < hi)
                for a, b in zip(columns[0::2], columns[1::2]):  # even-odd: inside between pairs of crossings
                    for q in range(a, min(b, gw)):
                        grid[r][q] = label
                if len(columns) % 2:
                    for q in range(columns[-1], gw):
                        grid[r][q] = label
    return grid


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


def context_decode(header: dict, heat: list[int] | None) -> list[list[int]]:
    """5.2: the context-adaptive PAYLOAD; the full grid per channel (centre where heat is 0)."""
    levels, h, w = header["levels"], header["latent_h"], header["latent_w"]
    centre, prior, precision = levels // 2, header["context_prior"], header["precision"]
    decoder = RangeDecoder(header["payload"])
    result = []
    for table in header["freqs"]:
        grid = [centre] * (h * w)
        models: dict[int, list[int]] = {}
        for i in range(h * w):
            if heat is not None and not heat[i]:
                continue
            y, x = divmod(i, w)
            west = grid[i - 1] if x > 0 else centre
            north = grid[i - w] if y > 0 else centre
            freqs = models.setdefault(west * levels + north,
                                      [1 + (prior * f) // (1 << precision) for f in table])
            cum = [0]
            for f in freqs:
                cum.append(cum[-1] + f)
            s = decoder.decode(cum)
            grid[i] = s
            freqs[s] += 24
            if sum(freqs) > 1024:
                freqs[:] = [(f + 1) // 2 for f in freqs]
        result.append(grid)
    return result


def decode_symbols(data: bytes) -> tuple[dict, list[list[int]]]:
    """Parse a file and return (header, symbols per channel in row-major order).

    For selective files these are the full grid's symbols: the coded ones where
    the heatmap is 1, the centre symbol floor(L / 2) elsewhere (3.7, 5).
    """
    header = parse(data)
    if header["context_prior"] is not None:
        heat = [bit for row in decode_heatmap(header) for bit in row] if header["selective"] else None
        return header, context_decode(header, heat)
    if header["selective"] is None:
        return header, range_decode(header["payload"], header["freqs"], header["latent_h"] * header["latent_w"])
    heat = [bit for row in decode_heatmap(header) for bit in row]
    coded = range_decode(header["payload"], header["freqs"], sum(heat)) if sum(heat) else [[]] * header["channels"]
    full = []
    for channel in coded:
        it = iter(channel)
        full.append([next(it) if bit else header["levels"] // 2 for bit in heat])
    return header, full
