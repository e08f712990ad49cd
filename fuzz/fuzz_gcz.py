"""Coverage-guided fuzz harness (atheris / libFuzzer) for the ``.gcz`` parser and entropy decoder.

Two targets:

``container``
    fuzz bytes -> :func:`gcodec.container.read`; a file that parses is written
    back and re-read (the fields must survive), and if its latent has at most
    :data:`MAX_CONTAINER_SYMBOLS` symbols its payload is entropy-decoded too
    (up to :data:`MAX_REFERENCE_SYMBOLS`, header and symbols must equal those
    of ``tests/reference_decoder.py``, the independent decoder written from
    format_spec.md).
    With ``--crc fix`` (the default) the harness overwrites the last 4 bytes
    with the valid CRC32 of everything before them, so mutations reach the
    section parser instead of dying at the CRC check; ``--crc raw`` feeds the
    bytes untouched (envelope and CRC paths).

``image``
    fuzz bytes -> an input image (PNG, JPEG, TIFF, ... headers) through
    :func:`gcodec.imageio.load_image` (the compress path, pixel limit 2^20), as
    a ``--preserve-mask`` (:func:`gcodec.imageio.mask_from_bytes`) and as a
    ``--labels`` map (:func:`gcodec.selective.labelmaps.load_label_image`, for
    the size its header declares when that is small).  With ``--crc fix`` the
    input is prefixed with the signature of the format its first byte selects,
    so mutations reach the format parsers.

``info``
    fuzz bytes (CRC fixed as for ``container``) -> what ``gcz info`` computes
    (:func:`gcodec.cli.info_record`) and renders with rich (:func:`gcodec.cli.info_table`,
    to a string): no exception but GczError, and every value appears as text.

``entropy``
    fuzz bytes -> (channels, levels, precision, tables, shape, payload), see
    :func:`parse_entropy_input`, -> :func:`gcodec.entropy.decode`; decoded
    symbols must equal the reference decoder's, and re-encoded and decoded
    again they must round-trip exactly. Valid tables and shape never make
    decoding fail (format_spec.md 5: every byte string decodes to some symbols).

A :class:`gcodec.errors.GczError` is the expected way to reject bad input;
any other exception (or a failed invariant) propagates and libFuzzer records
it as a crash. Hangs and memory blow-ups are caught by libFuzzer's
``-timeout`` / ``-rss_limit_mb``.

Usage::

    python fuzz/fuzz_gcz.py --target container [--crc fix|raw] [libFuzzer flags] [CORPUS_DIR ...]
    python fuzz/fuzz_gcz.py --target entropy [libFuzzer flags] [CORPUS_DIR ...]
    python fuzz/fuzz_gcz.py --target container --replay FILE ...   # no atheris needed

This module imports without atheris (``tests/test_fuzz_corpus.py`` uses
:func:`run_one`); it never imports torch. Known, already-reported crash
classes can be excluded with ``GCZ_FUZZ_IGNORE="ExcType:substring;..."``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Heavy third-party modules are imported before instrumentation so that only gcz is instrumented.
import numpy as np
import PIL.Image  # noqa: F401  (imported by gcodec's package __init__)
import range_coder  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
try:  # the independent spec decoder of the test suite: a differential oracle
    sys.path.insert(0, str(ROOT / "tests"))
    import reference_decoder
except ImportError:
    reference_decoder = None
finally:
    sys.path.remove(str(ROOT / "tests"))

try:
    import atheris
except ImportError:  # the regression test replays inputs without atheris
    atheris = None

#: Instrument gcz only when this file is the running fuzzer (not on import or --replay).
FUZZING = atheris is not None and __name__ == "__main__" and "--replay" not in sys.argv

if FUZZING:
    if "image" in sys.argv:  # the image target: Pillow's format parsers are instrumented too
        with atheris.instrument_imports(include=["PIL"]):
            from PIL import (BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin,  # noqa: F401
                             PpmImagePlugin, TiffImagePlugin, WebPImagePlugin)
    with atheris.instrument_imports(include=["gcodec"]):
        from gcodec import cli, container, entropy, imageio, selective
        from gcodec import payload as payload_mod
        from gcodec.errors import GczError
        from gcodec.selective import labelmaps, sc_codec
else:
    from gcodec import cli, container, entropy, imageio, selective
    from gcodec import payload as payload_mod
    from gcodec.errors import GczError
    from gcodec.selective import labelmaps, sc_codec

#: The container target entropy-decodes a parsed file only up to this many latent symbols.
MAX_CONTAINER_SYMBOLS = 65536
#: Results are compared with the (pure Python, slow) reference decoder up to this many symbols.
MAX_REFERENCE_SYMBOLS = 4096
#: Cap on C*h*w in the entropy target (one input stays at a few ms, reference decoder included).
MAX_ENTROPY_SYMBOLS = 4096
#: Ranges of the entropy target's header fields.
MAX_CHANNELS = 8
MAX_LEVELS = 9
MAX_SIDE = 64
#: Precision is drawn from 1..17: 2..16 are valid, 1 and 17 exercise the rejection paths.
PRECISION_SPAN = 17
#: Bit of the precision byte selecting "raw" tables (container-style fields) over normalised counts.
RAW_TABLES_BIT = 0x80
CRC_MODES = ("fix", "raw")


# ---------------------------------------------------------------- helpers
def fix_crc(data: bytes) -> bytes:
    """Replace the trailing 4 bytes with the CRC32 (zlib, little endian) of everything before them."""
    if len(data) < len(container.MAGIC) + 1 + container.CRC_SIZE:
        return data
    body = data[:-container.CRC_SIZE]
    return body + struct.pack("<I", zlib.crc32(body))


class _Bytes:
    """Cursor over fuzz bytes that reads zeros past the end, so every input is usable."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u8(self) -> int:
        value = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return value

    def u16(self) -> int:
        return (self.u8() << 8) | self.u8()

    def rest(self) -> bytes:
        return self.data[self.pos:]


def coverage_hints(payload: bytes, symbols: np.ndarray) -> None:
    """Turn payload length and symbol variety into coverage the fuzzer can see.

    The range coder is C code atheris cannot instrument, so libFuzzer would
    otherwise shrink every corpus entry to a near-empty payload. When fuzzing,
    this function is instrumented: each loop's trip count lands in one of
    libFuzzer's hit-count buckets (1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+),
    so inputs with longer payloads and more varied symbols count as new.
    """
    flat = symbols.reshape(-1)
    for _ in range(min(len(payload), 255)):
        pass
    for _ in range(len(np.unique(flat))):
        pass
    for _ in range(min(int(np.count_nonzero(np.diff(flat))), 255)):
        pass


def _ignored(exc: BaseException) -> bool:
    """True if ``exc`` matches an entry of ``GCZ_FUZZ_IGNORE`` (``Type:substring;...``)."""
    spec = os.environ.get("GCZ_FUZZ_IGNORE", "")
    for entry in filter(None, (e.strip() for e in spec.split(";"))):
        name, _, needle = entry.partition(":")
        if type(exc).__name__ == name and needle in str(exc):
            return True
    return False


# ---------------------------------------------------------------- container target
def _section_key(sec: container.Section) -> tuple[int, bool, bytes]:
    """What a rewrite must preserve of an extra section (reserved flag bits are not kept)."""
    return (sec.type, sec.critical, sec.body)


def _file_key(gcz: container.GczFile) -> tuple:
    return (gcz.width, gcz.height, gcz.model_name, gcz.model_hash, gcz.channels, gcz.levels,
            gcz.downsampling, gcz.tables.precision, gcz.tables.freqs.tolist(), gcz.payload,
            gcz.selective, _colour_key(gcz), gcz.context_prior, [_section_key(s) for s in gcz.extra_sections])


def _colour_key(gcz: container.GczFile) -> tuple | None:
    grid = gcz.colour
    return None if grid is None else (grid.cell_log2, grid.step, grid.values.tolist())


def _check_colour(data: bytes, gcz: container.GczFile) -> None:
    """An accepted COLOUR grid: offsets stay within 8 bits; the reference decoder reads the same grid."""
    from gcodec import colour

    grid = gcz.colour
    assert grid.values.shape == (3,) + colour.grid_shape(gcz.height, gcz.width, grid.cell_log2)
    rows = min(gcz.height, 64)
    offsets = colour.offsets(grid, gcz.height, gcz.width, 0, rows) if gcz.width * rows <= 1 << 20 else None
    assert offsets is None or int(abs(offsets).max(initial=0)) <= colour.MAX_OFFSET
    if reference_decoder is not None and grid.values.size <= MAX_REFERENCE_SYMBOLS:
        header = reference_decoder.parse(data)
        assert reference_decoder.decode_colour(header) == grid.values.tolist(), "reference reads another grid"


def _check_reference_file(data: bytes, gcz: container.GczFile, symbols: np.ndarray) -> None:
    """gcodec and the independent spec decoder must agree on an accepted file."""
    header, rows = reference_decoder.decode_symbols(data)
    ours = {"width": gcz.width, "height": gcz.height, "model": gcz.model_name, "model_hash": gcz.model_hash,
            "channels": gcz.channels, "levels": gcz.levels, "downsampling": gcz.downsampling,
            "latent_h": gcz.latent_shape[1], "latent_w": gcz.latent_shape[2],
            "precision": gcz.tables.precision, "freqs": gcz.tables.freqs.tolist(), "payload": gcz.payload}
    theirs = {key: header[key] for key in ours}
    assert theirs == ours, f"reference decoder reads another header: {theirs} != {ours}"
    assert rows == symbols.reshape(gcz.channels, -1).tolist(), "reference decoder decodes other symbols"


def check_container(data: bytes) -> None:
    """Parse ``data``; on success check write/read stability and decode small payloads."""
    try:
        gcz = container.read(data)
    except GczError:
        return
    again = container.read(container.write(gcz))
    assert _file_key(again) == _file_key(gcz), "write(read(x)) changed the file's fields"
    if gcz.colour is not None:
        _check_colour(data, gcz)
    shape = gcz.latent_shape
    if math.prod(shape) > MAX_CONTAINER_SYMBOLS:
        return
    if gcz.selective is not None:
        _check_selective(data, gcz)
        return
    symbols = _decode_valid(gcz.payload, gcz.tables, shape, gcz.context_prior)
    coverage_hints(gcz.payload, symbols)
    if reference_decoder is not None and math.prod(shape) <= MAX_REFERENCE_SYMBOLS:
        _check_reference_file(data, gcz, symbols)


def _check_selective(data: bytes, gcz: container.GczFile) -> None:
    """Selective files (HEATMAP + LABELS): decode heatmap, label map and coded symbols; compare with the
    reference decoder, which must accept what gcodec accepts and decode the same."""
    try:
        parts = selective.read_parts(gcz)
    except GczError:
        return
    symbols = sc_codec.decode_symbols(gcz, parts.heatmap)
    assert parts.grid.shape == gcz.selective.label_grid(gcz.height, gcz.width)
    assert parts.grid.size == 0 or int(parts.grid.max()) < gcz.selective.classes
    if reference_decoder is None or math.prod(gcz.latent_shape) > MAX_REFERENCE_SYMBOLS \
            or parts.grid.size > MAX_REFERENCE_SYMBOLS:
        return
    header, rows = reference_decoder.decode_symbols(data)
    assert rows == symbols.reshape(gcz.channels, -1).tolist(), "reference decoder decodes other symbols"
    assert reference_decoder.decode_heatmap(header) == parts.heatmap.astype(int).tolist()
    assert reference_decoder.decode_label_grid(header) == parts.grid.astype(int).tolist()


def fuzz_container(data: bytes, crc: str = "fix") -> None:
    """The container target: ``crc`` is ``"fix"`` (recompute the CRC32) or ``"raw"``."""
    check_container(fix_crc(data) if crc == "fix" else data)


# ---------------------------------------------------------------- entropy target
@dataclass(frozen=True)
class EntropyCase:
    """One decoded entropy-target input."""

    tables: entropy.FrequencyTables
    shape: tuple[int, int, int]
    payload: bytes


def _raw_tables(cur: _Bytes, channels: int, levels: int, precision: int) -> entropy.FrequencyTables:
    """Container-style tables: L-1 fields per channel (u16 masked to P bits), last = 2^P - sum."""
    mask = (1 << precision) - 1
    fields = np.array([[cur.u16() & mask for _ in range(levels - 1)] for _ in range(channels)],
                      dtype=np.int64).reshape(channels, levels - 1)
    last = 2 ** precision - fields.sum(axis=1, keepdims=True)
    return entropy.FrequencyTables(precision, np.concatenate([fields, last], axis=1))


def _count_tables(cur: _Bytes, channels: int, levels: int, precision: int) -> entropy.FrequencyTables:
    """Tables from L byte-sized counts per channel through :func:`entropy.quantize_counts`."""
    counts = np.array([[cur.u8() for _ in range(levels)] for _ in range(channels)], dtype=np.int64)
    return entropy.FrequencyTables(precision, np.stack([entropy.quantize_counts(row, precision)
                                                        for row in counts]))


def parse_entropy_input(data: bytes) -> EntropyCase:
    """Interpret fuzz bytes (missing bytes read as 0); invalid tables raise GczEntropyError.

    Layout: ``channels`` (1 + b % 8), ``levels`` (2 + b % 8), precision byte (P = 1 + (b & 0x7F) % 17,
    bit 7: raw tables), ``h`` (b % 65), ``w`` (b % 65, reduced so C*h*w <= 4096), then the
    tables (raw: C*(L-1) big-endian u16 fields; otherwise C*L u8 counts), then the payload.
    """
    cur = _Bytes(data)
    channels = 1 + cur.u8() % MAX_CHANNELS
    levels = 2 + cur.u8() % (MAX_LEVELS - 1)
    pbyte = cur.u8()
    precision = 1 + (pbyte & 0x7F) % PRECISION_SPAN
    h = cur.u8() % (MAX_SIDE + 1)
    w = min(cur.u8() % (MAX_SIDE + 1), MAX_ENTROPY_SYMBOLS // (channels * max(h, 1)))
    make = _raw_tables if pbyte & RAW_TABLES_BIT else _count_tables
    tables = make(cur, channels, levels, precision)
    return EntropyCase(tables, (channels, h, w), cur.rest())


def build_entropy_input(tables: entropy.FrequencyTables, h: int, w: int, payload: bytes) -> bytes:
    """Inverse of :func:`parse_entropy_input` for raw tables (used to make seeds)."""
    c, levels, p = tables.channels, tables.levels, tables.precision
    header = bytes([c - 1, levels - 2, RAW_TABLES_BIT | (p - 1), h, w])
    fields = b"".join(int(f).to_bytes(2, "big") for row in tables.freqs for f in row[:-1])
    return header + fields + payload


def _check_symbols(symbols: np.ndarray, shape: tuple[int, ...], levels: int) -> None:
    assert symbols.shape == tuple(shape), f"decoded shape {symbols.shape} != {shape}"
    assert np.issubdtype(symbols.dtype, np.integer), f"decoded dtype {symbols.dtype}"
    assert not symbols.size or (symbols.min() >= 0 and symbols.max() < levels), "symbol out of range"


def _decode_valid(payload: bytes, tables: entropy.FrequencyTables, shape: tuple[int, ...],
                  context_prior: int | None = None) -> np.ndarray:
    """Decode with valid tables and shape (static, or context coded with ``context_prior``): any failure,
    GczError included, is a bug (spec 5, 5.2)."""
    try:
        symbols = payload_mod.decode_latent(payload, tables, shape, context_prior)
    except GczError as exc:
        raise AssertionError(f"decode failed on valid tables and shape {shape}: {exc!r}") from exc
    _check_symbols(symbols, shape, tables.levels)
    return symbols


def fuzz_entropy(data: bytes) -> None:
    """The entropy target: decode (== reference decoder), re-encode, decode: must round-trip exactly."""
    try:
        case = parse_entropy_input(data)
    except GczError:
        return
    symbols = _decode_valid(case.payload, case.tables, case.shape)
    coverage_hints(case.payload, symbols)
    if reference_decoder is not None:
        per_channel = case.shape[1] * case.shape[2]
        rows = reference_decoder.range_decode(case.payload, case.tables.freqs.tolist(), per_channel)
        assert rows == symbols.reshape(case.shape[0], -1).tolist(), "reference decoder decodes other symbols"
    again = entropy.decode(entropy.encode(symbols, case.tables), case.tables, case.shape)
    assert np.array_equal(again, symbols), "encode(decode(payload)) does not decode to the same symbols"


if FUZZING:
    coverage_hints = atheris.instrument_func(coverage_hints)


# ---------------------------------------------------------------- image target
#: The image target's pixel limit (a hostile header above it must be refused before decoding).
IMAGE_MAX_PIXELS = 1 << 20
#: Label maps are decoded for the size their header declares up to this many pixels.
MAX_LABEL_PIXELS = 1 << 16

def fuzz_image(data: bytes, crc: str = "fix") -> None:
    """The image target: an input image, a mask and a label map, each refused with GczError or loaded
    within the pixel limit (``crc`` is not used: images carry no gcz CRC)."""
    try:
        loaded = imageio.load_image(data, IMAGE_MAX_PIXELS, name="input")
        assert loaded.pixels.dtype == np.uint8 and loaded.pixels.ndim == 3 and loaded.pixels.shape[2] == 3
        assert loaded.width * loaded.height <= IMAGE_MAX_PIXELS
    except GczError:
        pass
    try:
        mask = imageio.mask_from_bytes(data, "mask", IMAGE_MAX_PIXELS)
        assert mask.dtype == bool and mask.ndim == 2 and mask.size <= IMAGE_MAX_PIXELS
    except GczError:
        pass
    size = _declared_size(data)
    width, height = size if size and 0 < size[0] * size[1] <= MAX_LABEL_PIXELS else (16, 16)
    try:
        labels = labelmaps.load_label_image(data, width, height, 12)
        assert labels.shape == (height, width) and int(labels.max(initial=0)) < 12
    except GczError:
        pass


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """The size an image header declares (Pillow's open, nothing decoded), or None."""
    import io
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                return img.size
    except Exception:  # noqa: BLE001 - only a hint for the label-map call
        return None


# ---------------------------------------------------------------- info target
def fuzz_info(data: bytes, crc: str = "fix") -> None:
    """The info target: ``gcz info``'s record and its rich rendering, for any bytes."""
    import io

    from rich.console import Console

    data = fix_crc(data) if crc == "fix" else data
    try:
        record, _ = cli.info_record("fuzz[/i].gcz", data)
    except GczError:
        return
    json.dumps(record)
    console = Console(file=io.StringIO(), width=400, color_system=None)
    console.print(cli.info_table(record, "fuzz[/i].gcz"))
    text = console.file.getvalue()
    assert record["model"] in text and "fuzz[/i].gcz" in text, "info shows another model name or file name"


# ---------------------------------------------------------------- driver
TARGETS: dict[str, Callable[..., None]] = {"container": fuzz_container, "entropy": fuzz_entropy,
                                           "image": fuzz_image, "info": fuzz_info}


def run_one(target: str, data: bytes, crc: str = "fix") -> None:
    """Run one input through a target; exceptions listed in GCZ_FUZZ_IGNORE are swallowed."""
    try:
        if target == "container":
            fuzz_container(data, crc)
        elif target == "image":
            fuzz_image(data, crc)
        elif target == "info":
            fuzz_info(data, crc)
        else:
            fuzz_entropy(data)
    except Exception as exc:  # noqa: BLE001 - re-raised unless explicitly ignored
        if not _ignored(exc):
            raise


def _parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="container")
    parser.add_argument("--crc", choices=CRC_MODES, default="fix",
                        help="container target: recompute the CRC32 (fix) or not (raw)")
    parser.add_argument("--replay", nargs="+", metavar="FILE",
                        help="run these files once each, without atheris, and exit")
    return parser.parse_known_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: our flags first; everything else is passed to libFuzzer."""
    argv = list(sys.argv if argv is None else argv)
    args, rest = _parse_args(argv[1:])
    if args.replay:
        for name in args.replay:
            run_one(args.target, Path(name).read_bytes(), args.crc)
            print(f"ok {name}")
        return
    if not FUZZING:
        raise SystemExit("atheris is not installed (or the module was imported); only --replay works")
    atheris.Setup([argv[0], *rest], lambda data: run_one(args.target, data, args.crc))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
