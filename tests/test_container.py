"""The .gcz v1 container: layout, validation, damage, golden files, the independent decoder."""
from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from gcodec import colour, container, context, entropy
from gcodec.errors import GczFormatError

import reference_decoder

GOLDEN = Path(__file__).parent / "golden"


def make_file(seed: int = 0, channels: int = 4, height: int = 80, width: int = 96, extra=()) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (channels,) + container.latent_size(height, width, 16)
    probs = rng.dirichlet(np.ones(5), size=channels)
    symbols = np.stack([rng.choice(5, size=shape[1:], p=probs[c]) for c in range(channels)])
    tables = entropy.best_tables(symbols, 5)
    gcz = container.GczFile(width, height, "gcz-c4", bytes.fromhex("0a1b2c3d"), channels, 5, 16, tables,
                            entropy.encode(symbols, tables), extra_sections=list(extra))
    return container.write(gcz), symbols


def test_round_trip_and_fields():
    data, symbols = make_file()
    gcz = container.read(data)
    assert (gcz.width, gcz.height, gcz.channels, gcz.levels, gcz.downsampling) == (96, 80, 4, 5, 16)
    assert gcz.model_name == "gcz-c4" and gcz.model_hash == bytes.fromhex("0a1b2c3d")
    assert np.array_equal(entropy.decode(gcz.payload, gcz.tables, gcz.latent_shape), symbols)
    assert data[:4] == container.MAGIC and data[4] == container.FORMAT_VERSION


def test_fixed_overhead_is_small():
    data, _ = make_file()
    gcz = container.read(data)
    overhead = len(data) - len(gcz.payload)
    # magic 4 + version 1 + CRC 4 + five section headers + bodies (tables for C=4 at P<=16: <= 33 B)
    assert overhead <= 9 + 5 * 3 + 4 + (1 + 6 + 4) + 3 + (1 + 32)


def test_every_truncation_is_a_clean_error():
    data, _ = make_file()
    for n in range(len(data)):
        with pytest.raises(GczFormatError):
            container.read(data[:n])


def test_every_single_bit_flip_is_detected():
    data, _ = make_file(channels=2, height=40, width=40)
    for i in range(len(data) * 8):
        damaged = bytearray(data)
        damaged[i // 8] ^= 1 << (i % 8)
        with pytest.raises(GczFormatError):
            container.read(bytes(damaged))


def test_random_damage_never_crashes():
    data, _ = make_file(seed=3)
    rng = np.random.default_rng(9)
    for _ in range(3000):
        damaged = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):
            damaged[int(rng.integers(0, len(damaged)))] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            damaged = damaged[: int(rng.integers(0, len(damaged)))]
        if bytes(damaged) == data:
            continue
        with pytest.raises(GczFormatError):
            container.read(bytes(damaged))


def refresh_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_crafted_files_with_valid_crc_are_rejected_cleanly():
    """Damage that keeps a valid CRC (an attacker, not a disk) still ends in GczFormatError."""
    data, _ = make_file()
    body = data[:-4]
    rng = np.random.default_rng(11)
    for _ in range(2000):
        damaged = bytearray(body)
        pos = int(rng.integers(5, len(damaged)))
        damaged[pos] = int(rng.integers(0, 256))
        try:
            container.read(refresh_crc(bytes(damaged)))
        except GczFormatError:
            pass


def test_wrong_magic_and_versions():
    data, _ = make_file()
    with pytest.raises(GczFormatError, match="magic"):
        container.read(b"\x89PNG" + data[4:])
    with pytest.raises(GczFormatError, match="newer"):
        container.read(data[:4] + bytes([2]) + data[5:])
    with pytest.raises(GczFormatError, match="empty"):
        container.read(b"")


def test_unknown_sections():
    optional = container.Section(0x7E, 0, b"future data")
    data, symbols = make_file(extra=[optional])
    gcz = container.read(data)
    assert gcz.extra_sections == [optional]
    critical = container.Section(0x7F, container.FLAG_CRITICAL, b"must understand")
    data, _ = make_file(extra=[critical])
    with pytest.raises(GczFormatError, match="upgrade"):
        container.read(data)


def test_sections_must_be_in_order_and_unique():
    data, _ = make_file()
    sections = container.read_sections(data)
    def rebuild(secs):
        out = bytearray(container.MAGIC + bytes([1]))
        for s in secs:
            out += bytes([s.type, s.flags]) + container.write_uleb128(len(s.body)) + s.body
        return refresh_crc(bytes(out))
    with pytest.raises(GczFormatError, match="order"):
        container.read(rebuild([sections[1], sections[0]] + sections[2:]))
    with pytest.raises(GczFormatError, match="order"):  # format_spec 3: the five come before any other
        container.read(rebuild([container.Section(0x7E, 0, b"x")] + sections))
    with pytest.raises(GczFormatError, match="duplicate"):
        container.read(rebuild(sections + [sections[0]]))
    with pytest.raises(GczFormatError, match="missing"):
        container.read(rebuild(sections[:-1]))


def test_uleb128():
    for v in [0, 1, 127, 128, 300, 65535, 2 ** 28]:
        enc = container.write_uleb128(v)
        assert container._Reader(enc, "x").uleb128() == v
    with pytest.raises(GczFormatError):
        container._Reader(b"\x80\x00", "x").uleb128()  # non-minimal


def test_table_packing_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(300):
        channels, levels, precision = int(rng.integers(1, 9)), int(rng.choice([2, 3, 5])), int(rng.integers(3, 17))
        freqs = np.stack([entropy.quantize_counts(rng.integers(0, 50, levels), precision) for _ in range(channels)])
        tables = entropy.FrequencyTables(precision, freqs)
        back = container.unpack_tables(container.pack_tables(tables), channels, levels)
        assert back.precision == precision and np.array_equal(back.freqs, freqs)


def test_reference_decoder_agrees():
    """format_spec.md is complete: an independent pure-Python decoder gets the same symbols."""
    for seed in range(20):
        channels = [2, 4, 8][seed % 3]
        data, symbols = make_file(seed=seed, channels=channels, height=17 + 13 * seed, width=200 - 7 * seed)
        header, decoded = reference_decoder.decode_symbols(data)
        assert np.array_equal(np.array(decoded).reshape(symbols.shape), symbols)
        gcz = container.read(data)
        assert header["freqs"] == gcz.tables.freqs.tolist()


def test_golden_v1_file_still_decodes():
    """A v1 file written by gcz 0.1.0 must decode to the pinned symbols forever."""
    data = (GOLDEN / "v1_c4_96x80.gcz").read_bytes()
    expected = json.loads((GOLDEN / "v1_c4_96x80.json").read_text())
    gcz = container.read(data)
    symbols = entropy.decode(gcz.payload, gcz.tables, gcz.latent_shape)
    assert hashlib.md5(symbols.astype(np.uint8).tobytes()).hexdigest() == expected["symbols_md5"]
    assert [gcz.width, gcz.height, gcz.channels, gcz.model_name] == expected["header"]
    # the writer still produces byte-identical files (no silent format change)
    assert make_file()[0] == data


def _with_sections(data: bytes, *sections: container.Section) -> bytes:
    """``data`` with ``sections`` appended before a recomputed CRC."""
    import struct
    import zlib

    body = data[:-container.CRC_SIZE] + b"".join(container._section(s.type, s.body, s.critical) for s in sections)
    return body + struct.pack("<I", zlib.crc32(body))


def test_realism_section_round_trip_and_reference_decoder():
    data, _ = make_file()
    assert container.read(data).realism is None
    assert reference_decoder.parse(data)["realism"] is None
    for steps in (0, 37, 100):
        gcz = container.read(data)
        gcz.realism = steps
        written = container.write(gcz)
        assert container.read(written).realism == steps
        assert reference_decoder.parse(written)["realism"] == steps / 100
        sec = container.read_sections(written)[-1]
        assert (sec.type, sec.critical, sec.body) == (container.SEC_REALISM, False, bytes([steps]))
    gcz.realism = 101
    with pytest.raises(GczFormatError, match="realism"):
        container.write(gcz)


@pytest.mark.parametrize("body", [b"", b"\x65", b"\x10\x10"])
def test_bad_realism_sections(body):
    data, _ = make_file()
    with pytest.raises(GczFormatError, match="REALISM"):
        container.read(_with_sections(data, container.Section(container.SEC_REALISM, 0, body)))


def test_duplicate_realism_section():
    data, _ = make_file()
    sec = container.Section(container.SEC_REALISM, 0, b"\x10")
    with pytest.raises(GczFormatError, match="duplicate REALISM"):
        container.read(_with_sections(data, sec, sec))


def _golden_over_base(name: str) -> tuple[bytes, dict, bytes]:
    """A golden file that is its base golden file's sections plus one optional section: its bytes,
    its JSON and the base's bytes, after checking that the base's sections come first unchanged."""
    data = (GOLDEN / f"{name}.gcz").read_bytes()
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    base = (GOLDEN / expected["base"]).read_bytes()
    assert data[:len(base) - container.CRC_SIZE] == base[:-container.CRC_SIZE]
    return data, expected, base


def test_golden_realism_file():
    """The first file with a REALISM section (gcz 0.2.0): the base golden file's sections, then REALISM."""
    data, expected, base = _golden_over_base("v1_c4_96x80_realism40")
    gcz = container.read(data)
    assert gcz.realism == expected["realism_steps"] and gcz.payload == container.read(base).payload
    gcz.realism = expected["realism_steps"]
    assert container.write(gcz) == data


def test_golden_colour_file():
    """The first file with a COLOUR section (gcz 0.6.0): the base golden file's sections, then COLOUR."""
    data, expected, base = _golden_over_base("v1_c4_96x80_colour")
    gcz = container.read(data)
    grid = gcz.colour
    assert (grid.cell_log2, grid.step) == (expected["cell_log2"], expected["step"])
    assert grid.values.tolist() == expected["grid"] and gcz.payload == container.read(base).payload
    offsets = colour.offsets(grid, gcz.height, gcz.width)
    assert hashlib.md5(offsets.astype(np.int16).tobytes()).hexdigest() == expected["offsets_md5"]
    assert container.write(gcz) == data
    header = reference_decoder.parse(data)
    assert reference_decoder.decode_colour(header) == expected["grid"]


def test_golden_context_file():
    """The first file with a CONTEXT section (gcz 0.8.0): pinned symbols, read alike by the reference
    decoder; the writer still produces it byte for byte."""
    from test_context import context_file, correlated_symbols

    name = "v1_c4_320x240_context"
    data = (GOLDEN / f"{name}.gcz").read_bytes()
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    gcz = container.read(data)
    assert gcz.context_prior == expected["context_prior"] and gcz.tables.precision == 4
    symbols = context.decode(gcz.payload, gcz.tables, gcz.latent_shape, gcz.context_prior)
    assert hashlib.md5(symbols.astype(np.uint8).tobytes()).hexdigest() == expected["symbols_md5"]
    header, decoded = reference_decoder.decode_symbols(data)
    assert np.array_equal(np.array(decoded).reshape(symbols.shape), symbols)
    assert context_file(correlated_symbols(7, gcz.latent_shape), 320, 240, expected["context_prior"]) == data
