"""Pure-Python readers for the archive formats that carry our training photos.

Two formats are supported, both read from an in-memory ``bytes`` object:

* **EET** (``.edj``, Enlightenment/EFL): format version 2, big-endian::

      u32 magic = 0x1EE70F42
      i32 num_directory_entries
      i32 num_dictionary_entries
      num_directory_entries  x (offset, size, data_size, name_offset, name_size, flags)  i32 each
      num_dictionary_entries x (hash, offset, size, prev, next)                          i32 each
      names (NUL-terminated) and entry data, addressed by absolute file offsets

  ``flags``: bit 0 compressed, bit 1 ciphered, bit 2 alias, bits 3..10 the
  compression type (0-9 zlib, 10/11 a raw LZ4 block).  ``size`` is the stored
  size, ``data_size`` the uncompressed size.

* **Qt resource** (``.rcc``): ``qres`` magic, u32 version (1-3), u32 tree,
  data and names offsets (v3: plus u32 global flags).  Tree nodes are 14 bytes
  (22 for v2+), child references are node *indices*.

Every reader raises :class:`ArchiveFormatError` (a :class:`ValueError`) on
malformed input; all loops are bounded by the input size.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

__all__ = [
    "ArchiveFormatError",
    "EET_MAGIC",
    "iter_eet_entries",
    "iter_rcc_files",
    "lz4_block_decompress",
]

EET_MAGIC = 0x1EE70F42
_EET_HEADER = struct.Struct(">Iii")
_EET_DIR_ENTRY = struct.Struct(">iiiiii")
_EET_DICT_ENTRY_SIZE = 20
_EET_FLAG_COMPRESSED = 0x1
_EET_FLAG_CIPHERED = 0x2
_EET_FLAG_ALIAS = 0x4
_EET_LZ4_TYPES = (10, 11)
# Largest uncompressed entry we are willing to materialise (guards bogus headers).
_MAX_ENTRY_SIZE = 1 << 30

RCC_MAGIC = b"qres"
_RCC_FLAG_ZLIB = 0x1
_RCC_FLAG_DIR = 0x2
_RCC_FLAG_ZSTD = 0x4
_RCC_MAX_DEPTH = 64


class ArchiveFormatError(ValueError):
    """Raised when an archive is truncated, corrupt or of an unsupported kind."""


# --------------------------------------------------------------------------- helpers


def _unpack_from(fmt: struct.Struct, data: bytes, offset: int, what: str) -> tuple:
    """``fmt.unpack_from`` with bounds checking that raises ArchiveFormatError."""
    if offset < 0 or offset + fmt.size > len(data):
        raise ArchiveFormatError(f"truncated {what} at offset {offset}")
    return fmt.unpack_from(data, offset)


def _slice(data: bytes, offset: int, size: int, what: str) -> bytes:
    """Return ``data[offset:offset+size]`` or raise if it is out of range."""
    if offset < 0 or size < 0 or offset + size > len(data):
        raise ArchiveFormatError(
            f"{what} out of range (offset {offset}, size {size}, file {len(data)})"
        )
    return data[offset : offset + size]


def _zlib_decompress(blob: bytes, expected: int | None, what: str) -> bytes:
    """Inflate a zlib stream, converting errors and size mismatches."""
    try:
        out = zlib.decompress(blob)
    except zlib.error as exc:
        raise ArchiveFormatError(f"{what}: bad zlib stream ({exc})") from None
    if expected is not None and len(out) != expected:
        raise ArchiveFormatError(
            f"{what}: inflated to {len(out)} bytes, header says {expected}"
        )
    return out


def lz4_block_decompress(src: bytes, size: int) -> bytes:
    """Decode one raw LZ4 block (no frame header) into exactly ``size`` bytes.

    Raises ArchiveFormatError on any inconsistency.  Every iteration consumes
    at least one input byte, so the loop always terminates.
    """
    if size < 0 or size > _MAX_ENTRY_SIZE:
        raise ArchiveFormatError(f"lz4: implausible output size {size}")
    out = bytearray()
    pos, end = 0, len(src)
    while pos < end:
        token = src[pos]
        pos += 1
        lit_len, pos = _lz4_length(src, pos, token >> 4)
        if pos + lit_len > end:
            raise ArchiveFormatError("lz4: literal run past end of input")
        out += src[pos : pos + lit_len]
        pos += lit_len
        if pos == end:
            break  # last sequence has literals only
        if pos + 2 > end:
            raise ArchiveFormatError("lz4: truncated match offset")
        offset = src[pos] | (src[pos + 1] << 8)
        pos += 2
        if offset == 0 or offset > len(out):
            raise ArchiveFormatError(f"lz4: bad match offset {offset}")
        match_len, pos = _lz4_length(src, pos, token & 0x0F)
        match_len += 4
        if len(out) + match_len > size:
            raise ArchiveFormatError("lz4: output exceeds declared size")
        _lz4_copy_match(out, offset, match_len)
    if len(out) != size:
        raise ArchiveFormatError(f"lz4: decoded {len(out)} bytes, expected {size}")
    return bytes(out)


def _lz4_length(src: bytes, pos: int, nibble: int) -> tuple[int, int]:
    """Read an LZ4 extended length starting from a 4-bit ``nibble``."""
    length = nibble
    if nibble == 15:
        while True:
            if pos >= len(src):
                raise ArchiveFormatError("lz4: truncated length")
            byte = src[pos]
            pos += 1
            length += byte
            if byte != 255:
                break
    return length, pos


def _lz4_copy_match(out: bytearray, offset: int, length: int) -> None:
    """Append an (possibly overlapping) back-reference to ``out``."""
    start = len(out) - offset
    if offset >= length:
        out += out[start : start + length]
        return
    chunk = bytes(out[start:])  # repeating pattern of period ``offset``
    reps, rem = divmod(length, offset)
    out += chunk * reps + chunk[:rem]


# --------------------------------------------------------------------------- EET


def iter_eet_entries(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, payload)`` for every readable entry of an EET v2 file.

    Compressed entries (zlib or LZ4) are decompressed.  Ciphered entries and
    aliases are skipped.  Raises ArchiveFormatError on malformed input.
    """
    data = bytes(data)
    magic, n_dir, n_dict = _unpack_from(_EET_HEADER, data, 0, "EET header")
    if magic != EET_MAGIC:
        raise ArchiveFormatError(f"not an EET v2 file (magic {magic:#010x})")
    if n_dir < 0 or n_dict < 0:
        raise ArchiveFormatError("EET header has negative entry counts")
    dir_end = _EET_HEADER.size + n_dir * _EET_DIR_ENTRY.size
    meta_end = dir_end + n_dict * _EET_DICT_ENTRY_SIZE
    if meta_end > len(data):
        raise ArchiveFormatError(
            f"EET directory ({n_dir} entries, {n_dict} dict) exceeds file size"
        )
    for i in range(n_dir):
        rec = _unpack_from(_EET_DIR_ENTRY, data, _EET_HEADER.size + i * 24, "EET entry")
        item = _read_eet_entry(data, rec, meta_end)
        if item is not None:
            yield item


def _read_eet_entry(
    data: bytes, rec: tuple[int, ...], meta_end: int
) -> tuple[str, bytes] | None:
    """Decode one EET directory record; ``None`` for skipped (ciphered/alias)."""
    offset, size, data_size, name_offset, name_size, flags = rec
    if name_size <= 0 or name_offset < meta_end:
        raise ArchiveFormatError(f"EET entry name at {name_offset} is invalid")
    raw_name = _slice(data, name_offset, name_size, "EET entry name")
    name = raw_name.split(b"\0", 1)[0].decode("utf-8", "replace")
    if offset < meta_end:
        raise ArchiveFormatError(f"EET entry {name!r} data overlaps the directory")
    stored = _slice(data, offset, size, f"EET entry {name!r}")
    if flags & (_EET_FLAG_CIPHERED | _EET_FLAG_ALIAS):
        return None
    if not flags & _EET_FLAG_COMPRESSED:
        return name, stored
    if not 0 <= data_size <= _MAX_ENTRY_SIZE:
        raise ArchiveFormatError(f"EET entry {name!r} has bad size {data_size}")
    ctype = (flags >> 3) & 0xFF
    if ctype in _EET_LZ4_TYPES:
        return name, lz4_block_decompress(stored, data_size)
    return name, _zlib_decompress(stored, data_size, f"EET entry {name!r}")


# --------------------------------------------------------------------------- RCC


class _RccLayout:
    """Parsed ``.rcc`` header: section offsets and per-node size."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 20 or data[:4] != RCC_MAGIC:
            raise ArchiveFormatError("not a Qt resource file (missing 'qres' magic)")
        version, tree, payload, names = struct.unpack_from(">IIII", data, 4)
        if version not in (1, 2, 3):
            raise ArchiveFormatError(f"unsupported rcc version {version}")
        if version >= 3 and len(data) < 24:
            raise ArchiveFormatError("truncated rcc v3 header")
        for what, off in (("tree", tree), ("data", payload), ("names", names)):
            if off > len(data):
                raise ArchiveFormatError(f"rcc {what} offset {off} beyond end of file")
        self.data = data
        self.version = version
        self.tree = tree
        self.payload = payload
        self.names = names
        self.node_size = 14 if version == 1 else 22

    def name(self, name_offset: int) -> str:
        """Decode the UTF-16BE name stored at ``name_offset`` in the names table."""
        base = self.names + name_offset
        (length,) = _unpack_from(struct.Struct(">H"), self.data, base, "rcc name")
        raw = _slice(self.data, base + 6, 2 * length, "rcc name")
        return raw.decode("utf-16-be", "replace")

    def node(self, index: int) -> tuple[int, int, int, int]:
        """Return ``(name_offset, flags, a, b)`` for tree node ``index``.

        For directories ``a, b`` are (child count, first child index); for
        files ``a`` is the locale (ignored) and ``b`` the data offset.
        """
        off = self.tree + index * self.node_size
        if index < 0 or off + self.node_size > len(self.data):
            raise ArchiveFormatError(f"rcc tree node {index} out of range")
        name_off, flags = struct.unpack_from(">IH", self.data, off)
        a, b = struct.unpack_from(">II", self.data, off + 6)
        return name_off, flags, a, b

    def payload_bytes(self, data_offset: int, flags: int, path: str) -> bytes | None:
        """Return the (decompressed) file contents, ``None`` if unsupported."""
        base = self.payload + data_offset
        (length,) = _unpack_from(struct.Struct(">I"), self.data, base, f"rcc {path}")
        blob = _slice(self.data, base + 4, length, f"rcc file {path!r}")
        if flags & _RCC_FLAG_ZSTD:
            return _zstd_decompress(blob, path)
        if flags & _RCC_FLAG_ZLIB:
            if len(blob) < 4:
                raise ArchiveFormatError(f"rcc file {path!r}: truncated zlib header")
            expected = struct.unpack_from(">I", blob)[0]
            return _zlib_decompress(blob[4:], expected, f"rcc file {path!r}")
        return blob


def _zstd_decompress(blob: bytes, path: str) -> bytes | None:
    """Decompress a zstd frame if ``zstandard`` is installed, else ``None``."""
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        return zstandard.ZstdDecompressor().decompress(blob, max_output_size=_MAX_ENTRY_SIZE)
    except zstandard.ZstdError as exc:
        raise ArchiveFormatError(f"rcc file {path!r}: bad zstd stream ({exc})") from None


def iter_rcc_files(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield ``(path, contents)`` for every file in a Qt ``.rcc`` resource.

    Paths are ``/``-joined from the root (no leading slash).  zlib entries are
    inflated; zstd entries are skipped unless ``zstandard`` is importable.
    Raises ArchiveFormatError on malformed input (including cyclic trees).
    """
    layout = _RccLayout(bytes(data))
    visited: set[int] = set()
    stack: list[tuple[int, str, int]] = [(0, "", 0)]  # (node index, path, depth)
    while stack:
        index, path, depth = stack.pop()
        if index in visited:
            raise ArchiveFormatError(f"rcc tree revisits node {index}")
        visited.add(index)
        name_off, flags, a, b = layout.node(index)
        if flags & _RCC_FLAG_DIR:
            if depth >= _RCC_MAX_DEPTH:
                raise ArchiveFormatError("rcc tree nested too deeply")
            stack.extend(reversed(_rcc_children(layout, a, b, path, depth + 1)))
            continue
        if index == 0:
            raise ArchiveFormatError("rcc root node is not a directory")
        contents = layout.payload_bytes(b, flags, path)
        if contents is not None:
            yield path, contents


def _rcc_children(
    layout: _RccLayout, count: int, first: int, path: str, depth: int
) -> list[tuple[int, str, int]]:
    """Stack items for the ``count`` children of a directory node."""
    if count:
        layout.node(first + count - 1)  # bounds-check the whole child range first
    items = []
    for index in range(first, first + count):
        name = layout.name(layout.node(index)[0])
        items.append((index, f"{path}/{name}" if path else name, depth))
    return items
