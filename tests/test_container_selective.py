"""The selective-compression sections HEATMAP and LABELS (format_spec.md 3.7, 3.8, 5.1):
layout, validation, the reference decoder, the golden file."""
from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from gcodec import container, context, entropy
from gcodec.errors import GczFormatError
from gcodec.selective import coding, read_parts, sc_codec, vector

import reference_decoder
from conftest import older_reader

GOLDEN = Path(__file__).parent / "golden"
SC_GOLDEN = "v1_sc_c8_96x80.gcz"


def make_sc_file(seed: int = 0, width: int = 96, height: int = 80, cell: int = 8,
                 channels: int = 8, context_prior: int | None = None) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """A selective file from synthetic data (no network): (bytes, full symbols, heatmap, label grid);
    with ``context_prior`` its PAYLOAD is context coded (format_spec.md 5.2, tables of precision 4)."""
    rng = np.random.default_rng(seed)
    ph, pw = container.padded_sides(height, width)
    h, w = ph // 8, pw // 8
    coarse = rng.integers(0, 5, size=(ph // cell // 3 + 1, pw // cell // 3 + 1))
    grid = np.kron(coarse, np.ones((3, 3), np.int64))[:ph // cell, :pw // cell].astype(np.uint8)
    heat = np.zeros((h, w), bool)
    heat[2:h - 3, 1:w // 2] = True
    symbols = rng.integers(0, 5, size=(channels, h, w))
    symbols[:, ~heat] = 2
    coded = symbols[:, heat]
    if context_prior is None:
        tables = entropy.best_tables(coded, 5)
        payload = entropy.encode(coded, tables)
    else:
        tables = entropy.tables_for(coded, 5, 4)
        payload = context.encode(symbols, tables, context_prior, heat)
    labels = vector.trace(grid, 5, cell)
    gcz = container.GczFile(width, height, "gcz-sc-c8", bytes.fromhex("5c5c5c5c"), channels, 5, 8, tables,
                            payload, context_prior=context_prior,
                            selective=container.SelectiveData(coding.encode_heatmap(heat), cell, 5,
                                                              labels.background, len(labels.regions),
                                                              coding.encode_regions(labels)))
    return container.write(gcz), symbols, heat, grid


def _md5(a: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(a).astype(np.uint8).tobytes()).hexdigest()


@pytest.mark.parametrize("seed,width,height,cell", [(0, 96, 80, 8), (1, 33, 17, 1), (2, 200, 40, 16), (3, 64, 64, 4)])
@pytest.mark.parametrize("prior", [None, 100])
def test_round_trip_and_reference_decoder(seed, width, height, cell, prior):
    data, symbols, heat, grid = make_sc_file(seed, width, height, cell, context_prior=prior)
    gcz = container.read(data)
    assert gcz.selective is not None and gcz.downsampling == 8
    assert gcz.latent_shape == (8,) + heat.shape
    parts = read_parts(gcz)
    assert np.array_equal(parts.heatmap, heat) and np.array_equal(parts.grid, grid)
    assert np.array_equal(sc_codec.decode_symbols(gcz, parts.heatmap), symbols)
    header, ref_symbols = reference_decoder.decode_symbols(data)
    assert np.array_equal(np.array(ref_symbols).reshape(symbols.shape), symbols)
    assert np.array_equal(np.array(reference_decoder.decode_heatmap(header)), heat)
    assert np.array_equal(np.array(reference_decoder.decode_label_grid(header)), grid)
    sections = container.read_sections(data)
    assert [(s.name, s.critical) for s in sections[-2:]] == [("HEATMAP", True), ("LABELS", True)]
    assert (prior is None) == all(s.type != container.SEC_CONTEXT for s in sections)


def test_nothing_preserved_codes_no_symbol():
    data, symbols, heat, grid = make_sc_file()
    gcz = container.read(data)
    heat0 = np.zeros_like(heat)
    gcz2 = container.GczFile(gcz.width, gcz.height, gcz.model_name, gcz.model_hash, 8, 5, 8,
                             entropy.best_tables(symbols[:, heat0], 5), entropy.encode(symbols[:, heat0],
                                                                                       entropy.best_tables(symbols[:, heat0], 5)),
                             selective=container.SelectiveData(coding.encode_heatmap(heat0), 8, 5,
                                                               gcz.selective.background, gcz.selective.regions,
                                                               gcz.selective.regions_code))
    back = container.read(container.write(gcz2))
    full = sc_codec.decode_symbols(back, read_parts(back).heatmap)
    assert (full == 2).all()
    header, ref = reference_decoder.decode_symbols(container.write(gcz2))
    assert (np.array(ref) == 2).all()


def _rewrite(data: bytes, kind: int, body: bytes | None) -> bytes:
    """``data`` with section ``kind``'s body replaced (None: removed), CRC recomputed."""
    out = bytearray(data[:5])
    for sec in container.read_sections(data):
        if sec.type == kind:
            if body is None:
                continue
            sec = container.Section(kind, sec.flags, body)
        out += container._section(sec.type, sec.body, sec.critical)
    return bytes(out) + struct.pack("<I", zlib.crc32(bytes(out)))


def test_one_section_without_the_other_is_invalid():
    data = make_sc_file()[0]
    for kind in (container.SEC_HEATMAP, container.SEC_LABELS):
        with pytest.raises(GczFormatError, match="together"):
            container.read(_rewrite(data, kind, None))


@pytest.mark.parametrize("header,match", [
    (bytes([3, 5, 0, 1]), "cell"),
    (bytes([8, 0, 0, 1]), "classes"),
    (bytes([8, 5, 5, 1]), "background"),
    (bytes([8, 5, 0]) + container.write_uleb128(10 ** 6), "regions"),
    (bytes([8, 5]), "truncated|LABELS"),
])
def test_bad_label_headers(header, match):
    data = make_sc_file()[0]
    with pytest.raises(GczFormatError, match=match):
        container.read(_rewrite(data, container.SEC_LABELS, header))


def test_damaged_label_stream_is_a_clear_error_or_a_valid_map():
    data = make_sc_file()[0]
    sel = container.read(data).selective
    body = bytes([sel.cell, sel.classes, sel.background]) + container.write_uleb128(sel.regions)
    for seed in range(10):
        noise = np.random.default_rng(seed).integers(0, 256, size=len(sel.regions_code), dtype=np.uint8)
        damaged = container.read(_rewrite(data, container.SEC_LABELS, body + noise.tobytes()))
        try:
            parts = read_parts(damaged)
        except GczFormatError:
            continue
        assert parts.grid.max() < sel.classes


def test_old_readers_refuse_selective_files():
    """gcz 0.2 did not know 0x07: the section being critical, it refuses instead of decoding wrongly."""
    data = make_sc_file()[0]
    with pytest.raises(GczFormatError, match="0x07.*upgrade"), older_reader(container.SEC_HEATMAP, container.SEC_LABELS):
        container.read(data)


def test_golden_selective_file():
    """The first selective file (gcz 0.3.0): pinned symbols, heatmap and label map; the writer is unchanged."""
    data = (GOLDEN / SC_GOLDEN).read_bytes()
    expected = json.loads((GOLDEN / SC_GOLDEN.replace(".gcz", ".json")).read_text())
    gcz = container.read(data)
    parts = read_parts(gcz)
    assert _md5(sc_codec.decode_symbols(gcz, parts.heatmap)) == expected["symbols_md5"]
    assert _md5(parts.heatmap) == expected["heatmap_md5"]
    assert _md5(parts.grid) == expected["labels_md5"]
    assert make_sc_file()[0] == data


def test_golden_selective_context_file():
    """The first selective file with a CONTEXT section (gcz 0.8.0): pinned symbols; the writer is unchanged."""
    name = "v1_sc_c8_96x80_context"
    data = (GOLDEN / f"{name}.gcz").read_bytes()
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    gcz = container.read(data)
    assert gcz.context_prior == expected["context_prior"]
    parts = read_parts(gcz)
    symbols = sc_codec.decode_symbols(gcz, parts.heatmap)
    assert _md5(symbols) == expected["symbols_md5"]
    assert _md5(parts.heatmap) == expected["heatmap_md5"]
    header, ref_symbols = reference_decoder.decode_symbols(data)
    assert np.array_equal(np.array(ref_symbols).reshape(symbols.shape), symbols)
    assert make_sc_file(context_prior=expected["context_prior"])[0] == data
