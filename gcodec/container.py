"""Reading and writing the ``.gcz`` container, format version 1.

This module mirrors format_spec.md section by section; the constants below
are the single source of truth for the byte layout.

Layout: ``MAGIC (4) | VERSION (1) | sections ... | CRC32 (4, little endian)``.
Each section: ``type (u8) | flags (u8) | length (ULEB128) | body``.
"""
from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import colour as colour_mod
from .entropy import MAX_PRECISION, MIN_PRECISION, FrequencyTables, validate_tables
from .errors import GczEntropyError, GczFormatError

MAGIC = b"\x89GCZ"
FORMAT_VERSION = 1
CRC_SIZE = 4

# Section types (format_spec.md section 3).
SEC_IMAGE = 0x01
SEC_MODEL = 0x02
SEC_LATENT = 0x03
SEC_TABLES = 0x04
SEC_PAYLOAD = 0x05
SEC_REALISM = 0x06   # optional: the encoder's default realism (format_spec.md 3.6)
SEC_HEATMAP = 0x07   # critical, selective compression: which latent positions are coded (3.7)
SEC_LABELS = 0x08    # critical, selective compression: the label map as vector graphics (3.8)
SEC_COLOUR = 0x09    # optional: a low-frequency colour correction of the decoded image (3.9)
SEC_CONTEXT = 0x0A   # critical: PAYLOAD is coded with context-adaptive models (3.10, 5.2)
#: Names of the section types this version knows, for ``gcz info``.
SECTION_NAMES = {SEC_IMAGE: "IMAGE", SEC_MODEL: "MODEL", SEC_LATENT: "LATENT", SEC_TABLES: "TABLES",
                 SEC_PAYLOAD: "PAYLOAD", SEC_REALISM: "REALISM", SEC_HEATMAP: "HEATMAP", SEC_LABELS: "LABELS",
                 SEC_COLOUR: "COLOUR", SEC_CONTEXT: "CONTEXT"}
REQUIRED_SECTIONS = (SEC_IMAGE, SEC_MODEL, SEC_LATENT, SEC_TABLES, SEC_PAYLOAD)

FLAG_CRITICAL = 0x01
MAX_DIMENSION = 65535
MIN_LATENT_SIDE = 2
MODEL_HASH_SIZE = 4
MAX_MODEL_NAME = 64
#: Cell sides a LABELS section may use (they divide the 16-pixel padding multiple).
LABEL_CELLS = (1, 2, 4, 8, 16)
#: REALISM stores alpha in steps of 1/REALISM_STEPS (one byte, 0..REALISM_STEPS).
REALISM_STEPS = 100
#: Largest prior weight of a CONTEXT section (one byte; gcodec.context.MAX_PRIOR).
MAX_CONTEXT_PRIOR = 255
#: Most sections a file may have (format_spec.md 7): gcz writes at most 10; a decoder's work per
#: section must not let a file of empty sections cost more than its size.
MAX_SECTIONS = 256


@dataclass(frozen=True)
class Section:
    """A raw section: its type, flags and body bytes."""

    type: int
    flags: int
    body: bytes

    @property
    def critical(self) -> bool:
        """A reader that does not know a critical section must refuse the file."""
        return bool(self.flags & FLAG_CRITICAL)

    @property
    def name(self) -> str:
        """Human-readable section name."""
        return SECTION_NAMES.get(self.type, f"UNKNOWN_0x{self.type:02x}")


@dataclass(frozen=True)
class SelectiveData:
    """The selective-compression sections of a file (format_spec.md 3.7, 3.8), still range coded.

    Attributes:
        heatmap_code: HEATMAP body: the coded 0/1 map over the latent grid.
        cell: label-map cell side in pixels (one of :data:`LABEL_CELLS`).
        classes: number of label classes K (1..255).
        background: the class of every cell outside the stored regions.
        regions: number of stored regions.
        regions_code: the coded region stream (classes, loops, runs).
    """

    heatmap_code: bytes
    cell: int
    classes: int
    background: int
    regions: int
    regions_code: bytes

    def label_grid(self, height: int, width: int) -> tuple[int, int]:
        """(rows, columns) of the label grid: the padded image in cells."""
        ph, pw = padded_sides(height, width)
        return ph // self.cell, pw // self.cell


def padded_sides(height: int, width: int) -> tuple[int, int]:
    """The image padded to a multiple of 16, at least 32 per side (format_spec.md 3.3)."""
    return (16 * max(MIN_LATENT_SIDE, math.ceil(height / 16)), 16 * max(MIN_LATENT_SIDE, math.ceil(width / 16)))


@dataclass
class GczFile:
    """Everything a version-1 ``.gcz`` file holds.

    Attributes:
        width, height: image size in pixels (1..65535).
        model_name: registry name of the model (ASCII, 1..64 bytes).
        model_hash: first 4 bytes of the sha256 of the model's weight file.
        channels: latent channels C.
        levels: quantizer levels L (centers ``-(L//2) ... L-1-L//2``).
        downsampling: encoder downsampling factor (16 for GC).
        tables: per-channel frequency tables.
        payload: range-coded symbols.
        realism: the encoder's default realism in 1/100 steps (0..100), or None (decode at 1).
        selective: HEATMAP and LABELS of a selectively compressed file, or None (GC).
        colour: the COLOUR section's offset grid (:mod:`gcodec.colour`), or None.
        context_prior: the CONTEXT section's prior weight (0..255): PAYLOAD is coded with the
            context-adaptive models of :mod:`gcodec.context`; None: with the static TABLES.
        extra_sections: unknown optional sections, kept verbatim.
    """

    width: int
    height: int
    model_name: str
    model_hash: bytes
    channels: int
    levels: int
    downsampling: int
    tables: FrequencyTables
    payload: bytes
    realism: int | None = None
    selective: SelectiveData | None = None
    colour: colour_mod.ColourGrid | None = None
    context_prior: int | None = None
    extra_sections: list[Section] = field(default_factory=list)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of the latent grid (for SC files: the padded image / downsampling)."""
        if self.selective is not None:
            ph, pw = padded_sides(self.height, self.width)
            return self.channels, ph // self.downsampling, pw // self.downsampling
        return (self.channels,) + latent_size(self.height, self.width, self.downsampling)


def latent_size(height: int, width: int, downsampling: int) -> tuple[int, int]:
    """Latent (h, w): ``max(2, ceil(side / downsampling))`` per side (format_spec.md 3.3)."""
    return (max(MIN_LATENT_SIDE, math.ceil(height / downsampling)),
            max(MIN_LATENT_SIDE, math.ceil(width / downsampling)))


# ---------------------------------------------------------------- primitives
def write_uleb128(value: int) -> bytes:
    """Unsigned LEB128: 7 bits per byte, least significant group first."""
    if value < 0:
        raise ValueError("ULEB128 values must be non-negative")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class _Reader:
    """Bounds-checked cursor over bytes; every overrun is a GczFormatError."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise GczFormatError(f"{self.what} is truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def uleb128(self, max_bytes: int = 5) -> int:
        value = 0
        for i in range(max_bytes):
            byte = self.u8()
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if i and byte == 0:
                    raise GczFormatError(f"{self.what} has a non-minimal length encoding")
                return value
        raise GczFormatError(f"{self.what} has an overlong ULEB128 value")

    def done(self) -> None:
        if self.remaining():
            raise GczFormatError(f"{self.what} has {self.remaining()} unexpected trailing bytes")


def pack_tables(tables: FrequencyTables) -> bytes:
    """TABLES body: precision P (u8), then C x (L-1) P-bit fields, MSB first, zero-padded."""
    p = tables.precision
    acc, nbits, out = 0, 0, bytearray([p])
    for row in tables.freqs:
        for f in row[:-1]:
            acc = (acc << p) | int(f)
            nbits += p
            while nbits >= 8:
                nbits -= 8
                out.append((acc >> nbits) & 0xFF)
                acc &= (1 << nbits) - 1
    if nbits:
        out.append((acc << (8 - nbits)) & 0xFF)
    return bytes(out)


def unpack_tables(body: bytes, channels: int, levels: int) -> FrequencyTables:
    """Inverse of :func:`pack_tables`; the last frequency of each row is 2^P minus the rest."""
    r = _Reader(body, "TABLES section")
    p = r.u8()
    if not MIN_PRECISION <= p <= MAX_PRECISION:
        raise GczFormatError(f"table precision {p} outside {MIN_PRECISION}..{MAX_PRECISION}")
    nfields = channels * (levels - 1)
    packed = r.take(math.ceil(nfields * p / 8))
    r.done()
    bits = int.from_bytes(packed, "big")
    pad = len(packed) * 8 - nfields * p
    if bits & ((1 << pad) - 1):
        raise GczFormatError("TABLES section has non-zero padding bits")
    bits >>= pad
    mask = (1 << p) - 1
    fields = [(bits >> (p * (nfields - 1 - i))) & mask for i in range(nfields)]
    freqs = np.array(fields, dtype=np.int64).reshape(channels, levels - 1)
    last = 2 ** p - freqs.sum(axis=1, keepdims=True)
    freqs = np.concatenate([freqs, last], axis=1)
    try:
        validate_tables(freqs, p)
        return FrequencyTables(p, freqs)
    except GczEntropyError as exc:
        raise GczFormatError(f"invalid frequency table: {exc}") from None


# ---------------------------------------------------------------- writing
def _section(kind: int, body: bytes, critical: bool = True) -> bytes:
    return bytes([kind, FLAG_CRITICAL if critical else 0]) + write_uleb128(len(body)) + body


def write(gcz: GczFile) -> bytes:
    """Serialise a :class:`GczFile` to bytes (format version 1)."""
    if not (1 <= gcz.width <= MAX_DIMENSION and 1 <= gcz.height <= MAX_DIMENSION):
        raise GczFormatError(f"image size {gcz.width}x{gcz.height} outside 1..{MAX_DIMENSION}")
    name = gcz.model_name.encode("ascii")
    if not 1 <= len(name) <= MAX_MODEL_NAME or len(gcz.model_hash) != MODEL_HASH_SIZE:
        raise GczFormatError("model name must be 1..64 ASCII bytes and the hash 4 bytes")
    if gcz.tables.channels != gcz.channels or gcz.tables.levels != gcz.levels:
        raise GczFormatError("tables do not match channels/levels")
    out = bytearray(MAGIC + bytes([FORMAT_VERSION]))
    out += _section(SEC_IMAGE, write_uleb128(gcz.width) + write_uleb128(gcz.height))
    out += _section(SEC_MODEL, bytes([len(name)]) + name + gcz.model_hash)
    out += _section(SEC_LATENT, bytes([gcz.channels, gcz.levels, gcz.downsampling]))
    out += _section(SEC_TABLES, pack_tables(gcz.tables))
    out += _section(SEC_PAYLOAD, gcz.payload)
    if gcz.context_prior is not None:
        if not 0 <= gcz.context_prior <= MAX_CONTEXT_PRIOR:
            raise GczFormatError(f"context prior {gcz.context_prior} outside 0..{MAX_CONTEXT_PRIOR}")
        out += _section(SEC_CONTEXT, bytes([gcz.context_prior]))
    if gcz.realism is not None:
        if not 0 <= gcz.realism <= REALISM_STEPS:
            raise GczFormatError(f"realism {gcz.realism} outside 0..{REALISM_STEPS}")
        out += _section(SEC_REALISM, bytes([gcz.realism]), critical=False)
    if gcz.selective is not None:
        sel = gcz.selective
        _check_selective(gcz.width, gcz.height, gcz.downsampling, sel)
        out += _section(SEC_HEATMAP, sel.heatmap_code)
        out += _section(SEC_LABELS, bytes([sel.cell, sel.classes, sel.background]) + write_uleb128(sel.regions)
                        + sel.regions_code)
    if gcz.colour is not None:
        expected = (3,) + colour_mod.grid_shape(gcz.height, gcz.width, gcz.colour.cell_log2)
        if tuple(gcz.colour.values.shape) != expected:
            raise GczFormatError(f"colour grid of shape {gcz.colour.values.shape}, the image needs {expected}")
        out += _section(SEC_COLOUR, colour_mod.encode(gcz.colour), critical=False)
    for sec in gcz.extra_sections:
        out += _section(sec.type, sec.body, sec.critical)
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


def _check_selective(width: int, height: int, downsampling: int, sel: SelectiveData) -> None:
    if downsampling not in (8, 16):
        raise GczFormatError(f"selective files need downsampling 8 or 16, not {downsampling}")
    if sel.cell not in LABEL_CELLS:
        raise GczFormatError(f"label cell {sel.cell} is not one of {', '.join(map(str, LABEL_CELLS))}")
    if not 1 <= sel.classes <= 255 or sel.background >= sel.classes:
        raise GczFormatError("invalid label classes or background class")
    rows, cols = sel.label_grid(height, width)
    if sel.regions > rows * cols:
        raise GczFormatError(f"LABELS declares {sel.regions} regions on a {cols}x{rows} grid")


# ---------------------------------------------------------------- reading
def check_envelope(data: bytes) -> None:
    """Check magic, version, minimum size and CRC32; raise GczFormatError otherwise."""
    if not data:
        raise GczFormatError("empty file, not a .gcz file")
    if len(data) <= len(MAGIC) and MAGIC.startswith(data):
        raise GczFormatError(".gcz file is truncated")
    if data[:len(MAGIC)] != MAGIC:
        raise GczFormatError("not a .gcz file (wrong magic)")
    version = data[len(MAGIC)]
    if version > FORMAT_VERSION:
        raise GczFormatError(f"format version {version} is newer than this gcz supports "
                             f"({FORMAT_VERSION}); upgrade gcz")
    if version == 0:
        raise GczFormatError("invalid format version 0")
    if len(data) < len(MAGIC) + 1 + CRC_SIZE:
        raise GczFormatError(".gcz file is truncated")
    stored = struct.unpack("<I", data[-CRC_SIZE:])[0]
    if zlib.crc32(data[:-CRC_SIZE]) != stored:
        raise GczFormatError(".gcz file is corrupted or truncated (CRC32 mismatch)")


def read_sections(data: bytes) -> list[Section]:
    """Split a CRC-checked file into its sections (in file order)."""
    check_envelope(data)
    r = _Reader(data[len(MAGIC) + 1:-CRC_SIZE], "section list")
    sections = []
    while r.remaining():
        if len(sections) == MAX_SECTIONS:
            raise GczFormatError(f"file has more than {MAX_SECTIONS} sections")
        kind, flags = r.u8(), r.u8()
        length = r.uleb128()
        sections.append(Section(kind, flags, r.take(length)))
    return sections


def read(data: bytes) -> GczFile:
    """Parse and validate a ``.gcz`` file; raise GczFormatError on any problem."""
    sections = read_sections(data)
    by_type: dict[int, Section] = {}
    extra: list[Section] = []
    for sec in sections:
        if sec.type in SECTION_NAMES:
            if sec.type in by_type:
                raise GczFormatError(f"duplicate {sec.name} section")
            by_type[sec.type] = sec
        elif sec.critical:
            raise GczFormatError(f"file needs section type 0x{sec.type:02x}, unknown to this gcz; upgrade gcz")
        else:
            extra.append(sec)
    missing = [SECTION_NAMES[t] for t in REQUIRED_SECTIONS if t not in by_type]
    if missing:
        raise GczFormatError(f"missing section(s): {', '.join(missing)}")
    if [s.type for s in sections[:len(REQUIRED_SECTIONS)]] != list(REQUIRED_SECTIONS):
        raise GczFormatError("sections are out of order (IMAGE, MODEL, LATENT, TABLES, PAYLOAD come first)")

    r = _Reader(by_type[SEC_IMAGE].body, "IMAGE section")
    width, height = r.uleb128(), r.uleb128()
    r.done()
    if not (1 <= width <= MAX_DIMENSION and 1 <= height <= MAX_DIMENSION):
        raise GczFormatError(f"image size {width}x{height} outside 1..{MAX_DIMENSION}")

    r = _Reader(by_type[SEC_MODEL].body, "MODEL section")
    name_len = r.u8()
    if not 1 <= name_len <= MAX_MODEL_NAME:
        raise GczFormatError("invalid model name length")
    raw_name = r.take(name_len)
    model_hash = r.take(MODEL_HASH_SIZE)
    r.done()
    try:
        model_name = raw_name.decode("ascii")
    except UnicodeDecodeError:
        raise GczFormatError("model name is not ASCII") from None
    if not model_name.isprintable():
        raise GczFormatError("model name has control characters")

    r = _Reader(by_type[SEC_LATENT].body, "LATENT section")
    channels, levels, downsampling = r.u8(), r.u8(), r.u8()
    r.done()
    if channels < 1 or levels < 2 or downsampling < 1:
        raise GczFormatError("invalid latent description")

    tables = unpack_tables(by_type[SEC_TABLES].body, channels, levels)
    realism = None
    if SEC_REALISM in by_type:
        r = _Reader(by_type[SEC_REALISM].body, "REALISM section")
        realism = r.u8()
        r.done()
        if realism > REALISM_STEPS:
            raise GczFormatError(f"REALISM value {realism} outside 0..{REALISM_STEPS}")
    selective = None
    if (SEC_HEATMAP in by_type) != (SEC_LABELS in by_type):
        raise GczFormatError("HEATMAP and LABELS sections must come together")
    if SEC_LABELS in by_type:
        r = _Reader(by_type[SEC_LABELS].body, "LABELS section")
        cell, classes, background = r.u8(), r.u8(), r.u8()
        count = r.uleb128()
        selective = SelectiveData(by_type[SEC_HEATMAP].body, cell, classes, background, count,
                                  r.take(r.remaining()))
        _check_selective(width, height, downsampling, selective)
    colour = None
    if SEC_COLOUR in by_type:
        colour = colour_mod.decode(by_type[SEC_COLOUR].body, height, width)
    context_prior = None
    if SEC_CONTEXT in by_type:
        r = _Reader(by_type[SEC_CONTEXT].body, "CONTEXT section")
        context_prior = r.u8()
        r.done()
    return GczFile(width, height, model_name, model_hash, channels, levels, downsampling,
                   tables, by_type[SEC_PAYLOAD].body, realism, selective, colour, context_prior, extra)
