"""Round-trip and robustness tests for the EET / Qt-rcc readers (no network, no debs)."""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from gcodec.data.archives import (
    EET_MAGIC,
    ArchiveFormatError,
    iter_eet_entries,
    iter_rcc_files,
    lz4_block_decompress,
)

# --------------------------------------------------------------------------- builders


def lz4_literals_only(data: bytes) -> bytes:
    """Encode ``data`` as a valid LZ4 block made of a single literal run."""
    n = len(data)
    if n < 15:
        return bytes([n << 4]) + data
    rest, out = n - 15, bytearray([0xF0])
    while rest >= 255:
        out.append(255)
        rest -= 255
    out.append(rest)
    return bytes(out) + data


def build_eet(entries: list[tuple[str, bytes, str | None]], n_dict: int = 0) -> bytes:
    """Build an EET v2 file; each entry is (name, payload, None | 'zlib' | 'lz4')."""
    header_size = 12 + 24 * len(entries) + 20 * n_dict
    names = b"".join(name.encode() + b"\0" for name, _, _ in entries)
    blobs, records = [], []
    name_pos, data_pos = header_size, header_size + len(names)
    for name, payload, comp in entries:
        if comp == "zlib":
            stored, flags = zlib.compress(payload), 0x1 | (1 << 3)
        elif comp == "lz4":
            stored, flags = lz4_literals_only(payload), 0x1 | (10 << 3)
        else:
            stored, flags = payload, 0
        records.append(struct.pack(">iiiiii", data_pos, len(stored), len(payload),
                                   name_pos, len(name) + 1, flags))
        blobs.append(stored)
        name_pos += len(name) + 1
        data_pos += len(stored)
    head = struct.pack(">Iii", EET_MAGIC, len(entries), n_dict)
    return head + b"".join(records) + b"\0" * (20 * n_dict) + names + b"".join(blobs)


def _rcc_name_entry(name: str) -> bytes:
    raw = name.encode("utf-16-be")
    return struct.pack(">HI", len(name), zlib.crc32(raw)) + raw


def build_rcc(tree: dict, version: int = 3, compress: bool = False) -> bytes:
    """Build a Qt .rcc from a nested dict {name: bytes | dict} (BFS node order like rcc)."""
    node_size = 14 if version == 1 else 22
    names, payload = bytearray(), bytearray()
    name_offsets: dict[str, int] = {}
    nodes: list[bytes] = [b""]  # root placeholder
    queue: list[tuple[int, dict]] = [(0, tree)]

    def name_off(name: str) -> int:
        if name not in name_offsets:
            name_offsets[name] = len(names)
            names.extend(_rcc_name_entry(name))
        return name_offsets[name]

    def dir_node(noff: int, count: int, first: int) -> bytes:
        return struct.pack(">IHII", noff, 2, count, first)

    nodes[0] = dir_node(0, len(tree), 1)
    name_off("")  # root name at offset 0
    while queue:
        index, children = queue.pop(0)
        first = len(nodes)
        nodes[index] = dir_node(struct.unpack_from(">I", nodes[index])[0] if index else 0,
                                len(children), first)
        pending = []
        for name, value in children.items():
            noff = name_off(name)
            if isinstance(value, dict):
                nodes.append(dir_node(noff, 0, 0))
                pending.append((len(nodes) - 1, value))
            else:
                blob, flags = value, 0
                if compress:
                    blob, flags = struct.pack(">I", len(value)) + zlib.compress(value), 1
                nodes.append(struct.pack(">IHHHI", noff, flags, 0, 0, len(payload)))
                payload.extend(struct.pack(">I", len(blob)) + blob)
        queue.extend(pending)
    if version >= 2:
        nodes = [n + b"\0" * 8 for n in nodes]
    assert all(len(n) == node_size for n in nodes)
    header_size = 24 if version >= 3 else 20
    tree_bytes = b"".join(nodes)
    tree_off = header_size
    data_off = tree_off + len(tree_bytes)
    names_off = data_off + len(payload)
    head = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        head += struct.pack(">I", 1 if compress else 0)
    return head + tree_bytes + bytes(payload) + bytes(names)


def flatten(tree: dict, prefix: str = "") -> dict[str, bytes]:
    """Expected {path: bytes} for a nested tree dict."""
    out: dict[str, bytes] = {}
    for name, value in tree.items():
        path = f"{prefix}/{name}" if prefix else name
        out.update(flatten(value, path) if isinstance(value, dict) else {path: value})
    return out


JPEG_LIKE = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3
EET_ENTRIES = [
    ("edje/images/0", JPEG_LIKE, None),
    ("edje/images/1", b"\xff\xd8small", None),
    ("edje/file", b"CHKd" + b"x" * 300, "zlib"),
    ("edje/collections/0", b"CHKd" + b"hello world " * 5, "lz4"),
]
RCC_TREE = {
    "gcompris": {
        "src": {
            "erase": {"a.webp": b"RIFF....WEBPdata" * 4, "README": b"Copyright: x\n"},
            "empty": {},
        },
        "top.txt": b"hello",
    },
    "root.bin": bytes(range(50)),
}


def assert_only_format_errors(func, blob: bytes) -> None:
    """Consume ``func(blob)``; only ArchiveFormatError may escape."""
    try:
        list(func(blob))
    except ArchiveFormatError:
        pass


# --------------------------------------------------------------------------- LZ4


def test_lz4_literals_and_overlapping_match() -> None:
    # token 0x35: 3 literals "abc", match offset 3 length 5+4=9; then final literal "x"
    block = bytes([0x35]) + b"abc" + b"\x03\x00" + bytes([0x10]) + b"x"
    assert lz4_block_decompress(block, 13) == b"abcabcabcabcx"
    long = bytes(range(256)) * 2
    assert lz4_block_decompress(lz4_literals_only(long), len(long)) == long


@pytest.mark.parametrize(
    "block,size",
    [
        (b"", 1),  # empty input but output expected
        (bytes([0x35]) + b"abc" + b"\x00\x00", 12),  # zero offset
        (bytes([0x35]) + b"abc" + b"\x09\x00", 12),  # offset before start
        (bytes([0x35]) + b"abc" + b"\x03", 12),  # truncated offset
        (bytes([0xF0]), 20),  # truncated extended length
        (bytes([0x50]) + b"ab", 5),  # literals past end
        (bytes([0x35]) + b"abc" + b"\x03\x00", 5),  # output overflow
    ],
)
def test_lz4_rejects_bad_blocks(block: bytes, size: int) -> None:
    with pytest.raises(ArchiveFormatError):
        lz4_block_decompress(block, size)


# --------------------------------------------------------------------------- EET


@pytest.mark.parametrize("n_dict", [0, 3])
def test_eet_round_trip(n_dict: int) -> None:
    blob = build_eet(EET_ENTRIES, n_dict=n_dict)
    got = dict(iter_eet_entries(blob))
    assert got == {name: payload for name, payload, _ in EET_ENTRIES}
    largest = max((v for k, v in got.items() if k.startswith("edje/images/")), key=len)
    assert largest == JPEG_LIKE


def test_eet_skips_ciphered_and_alias() -> None:
    blob = bytearray(build_eet([("a", b"1", None), ("b", b"2", None), ("c", b"3", None)]))
    struct.pack_into(">i", blob, 12 + 5 * 4, 0x2)  # entry 0: ciphered
    struct.pack_into(">i", blob, 12 + 24 + 5 * 4, 0x4)  # entry 1: alias
    assert list(iter_eet_entries(bytes(blob))) == [("c", b"3")]


def test_eet_bad_magic_and_empty() -> None:
    with pytest.raises(ArchiveFormatError):
        list(iter_eet_entries(b""))
    with pytest.raises(ArchiveFormatError):
        list(iter_eet_entries(b"\x00" * 64))
    assert list(iter_eet_entries(struct.pack(">Iii", EET_MAGIC, 0, 0))) == []


def test_eet_huge_counts_rejected() -> None:
    with pytest.raises(ArchiveFormatError):
        list(iter_eet_entries(struct.pack(">Iii", EET_MAGIC, 0x7FFFFFFF, 0)))
    with pytest.raises(ArchiveFormatError):
        list(iter_eet_entries(struct.pack(">Iii", EET_MAGIC, -1, 0)))


def test_eet_corrupt_zlib_payload() -> None:
    blob = bytearray(build_eet([("z", b"payload" * 20, "zlib")]))
    blob[-5:] = b"\xff" * 5
    with pytest.raises(ArchiveFormatError):
        list(iter_eet_entries(bytes(blob)))


def test_eet_every_truncation_raises_format_error() -> None:
    blob = build_eet(EET_ENTRIES, n_dict=2)
    for cut in range(len(blob)):
        with pytest.raises(ArchiveFormatError):
            list(iter_eet_entries(blob[:cut]))


def test_eet_byte_flips_only_raise_format_error() -> None:
    blob = build_eet(EET_ENTRIES)
    rng = random.Random(1234)
    for i in range(len(blob)):
        for value in (0x00, 0xFF, rng.randrange(256)):
            mutated = bytearray(blob)
            mutated[i] = value
            assert_only_format_errors(iter_eet_entries, bytes(mutated))


def test_eet_random_garbage_after_magic() -> None:
    rng = random.Random(99)
    for _ in range(300):
        blob = struct.pack(">I", EET_MAGIC) + rng.randbytes(rng.randrange(0, 200))
        assert_only_format_errors(iter_eet_entries, blob)


# --------------------------------------------------------------------------- RCC


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("compress", [False, True])
def test_rcc_round_trip(version: int, compress: bool) -> None:
    blob = build_rcc(RCC_TREE, version=version, compress=compress)
    assert dict(iter_rcc_files(blob)) == flatten(RCC_TREE)


def test_rcc_zstd_entries_skipped_without_zstandard() -> None:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("zstandard installed: zstd entries are decoded instead")
    blob = bytearray(build_rcc({"a": b"x", "b": b"y"}))
    struct.pack_into(">H", blob, 24 + 22 + 4, 4)  # node 1 ("a"): flags -> zstd
    assert dict(iter_rcc_files(bytes(blob))) == {"b": b"y"}


def test_rcc_bad_header() -> None:
    for blob in (b"", b"qres", b"qrez" + b"\0" * 40, b"qres" + struct.pack(">IIII", 7, 0, 0, 0)):
        with pytest.raises(ArchiveFormatError):
            list(iter_rcc_files(blob))


def test_rcc_cycle_rejected() -> None:
    blob = bytearray(build_rcc({"d": {"f": b"1"}}))
    # make directory node 1 ("d") point at the root as its only child
    struct.pack_into(">II", blob, 24 + 22 + 6, 1, 0)
    with pytest.raises(ArchiveFormatError):
        list(iter_rcc_files(bytes(blob)))


def test_rcc_huge_child_count_rejected() -> None:
    blob = bytearray(build_rcc({"f": b"1"}))
    struct.pack_into(">II", blob, 24 + 6, 0xFFFFFFFF, 1)
    with pytest.raises(ArchiveFormatError):
        list(iter_rcc_files(bytes(blob)))


@pytest.mark.parametrize("compress", [False, True])
def test_rcc_every_truncation_raises_format_error(compress: bool) -> None:
    blob = build_rcc(RCC_TREE, compress=compress)
    for cut in range(len(blob)):
        with pytest.raises(ArchiveFormatError):
            list(iter_rcc_files(blob[:cut]))


def test_rcc_byte_flips_only_raise_format_error() -> None:
    blob = build_rcc(RCC_TREE, compress=True)
    rng = random.Random(4321)
    for i in range(len(blob)):
        for value in (0x00, 0xFF, rng.randrange(256)):
            mutated = bytearray(blob)
            mutated[i] = value
            assert_only_format_errors(iter_rcc_files, bytes(mutated))


def test_rcc_random_garbage_after_magic() -> None:
    rng = random.Random(7)
    for _ in range(300):
        blob = b"qres" + struct.pack(">I", rng.choice([1, 2, 3])) + rng.randbytes(rng.randrange(0, 300))
        assert_only_format_errors(iter_rcc_files, blob)
