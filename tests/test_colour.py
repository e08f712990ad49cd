"""The COLOUR correction (gcodec/colour.py, format_spec.md 3.9)."""
from __future__ import annotations

import numpy as np
import pytest

import gcodec
import reference_decoder
from gcodec import colour, container
from gcodec.errors import GczFormatError
from conftest import photo_like


def _grid(cell_log2: int, step: int, height: int, width: int, seed: int = 0, spread: int = 6) -> colour.ColourGrid:
    gh, gw = colour.grid_shape(height, width, cell_log2)
    values = np.random.default_rng(seed).integers(-spread, spread + 1, (3, gh, gw)).astype(np.int32)
    return colour.ColourGrid(cell_log2, step, values)


def test_taps_follow_the_spec():
    i0, i1, w0, w1 = colour.taps(96, 5)  # S = 32, 3 cells (centres 15.5, 47.5, 79.5)
    assert (w0 + w1 == 64).all() and (w0 >= 0).all() and (w1 >= 0).all()
    # pixel 0 lies before the first cell centre: both taps on cell 0
    assert (i0[0], i1[0]) == (0, 0)
    # pixel 16 is just past the first centre (15.5): 63/64 on cell 0, 1/64 on cell 1
    assert (i0[16], i1[16], w0[16], w1[16]) == (0, 1, 63, 1)
    # the last pixels are past the last centre: clamped to cell 2
    assert (i0[-1], i1[-1]) == (2, 2)
    # pixel 63.5 would be halfway between cells 1 and 2
    assert (i0[63], i1[63], w0[63], w1[63]) == (1, 2, 33, 31)


def test_a_constant_grid_is_a_constant_offset():
    grid = colour.ColourGrid(6, 4, np.full((3, 2, 3), 5, np.int32))
    off = colour.offsets(grid, 100, 150)
    assert off.shape == (100, 150, 3) and (off == 20).all()
    pixels = np.full((100, 150, 3), 250, np.uint8)
    assert (colour.apply(pixels, grid) == 255).all()  # clamped


def test_offsets_match_the_reference_decoder():
    height, width = 70, 90
    grid = _grid(5, 3, height, width, seed=3, spread=40)
    data = _file_with(grid, height, width)
    header = reference_decoder.parse(data)
    ref_grid = reference_decoder.decode_colour(header)
    assert np.array_equal(np.array(ref_grid), grid.values)
    off = colour.offsets(grid, height, width)
    rng = np.random.default_rng(0)
    for _ in range(300):
        y, x, c = int(rng.integers(height)), int(rng.integers(width)), int(rng.integers(3))
        assert off[y, x, c] == reference_decoder.colour_offset(header, ref_grid, c, y, x)


def test_offsets_in_row_chunks_equal_the_whole():
    grid = _grid(5, 4, 300, 70, seed=1)
    whole = colour.offsets(grid, 300, 70)
    assert np.array_equal(np.concatenate([colour.offsets(grid, 300, 70, 0, 123),
                                          colour.offsets(grid, 300, 70, 123, 300)]), whole)
    pixels = np.random.default_rng(2).integers(0, 256, (300, 70, 3)).astype(np.uint8)
    expected = np.clip(pixels.astype(int) + whole, 0, 255)
    assert np.array_equal(colour.apply(pixels, grid), expected)


def _file_with(grid: colour.ColourGrid | None, height: int, width: int) -> bytes:
    from gcodec import entropy

    symbols = np.full((4, max(2, -(-height // 16)), max(2, -(-width // 16))), 2, np.int64)
    tables = entropy.best_tables(symbols, 5)
    return container.write(container.GczFile(width, height, "gcz-c4", bytes(4), 4, 5, 16, tables,
                                             entropy.encode(symbols, tables), colour=grid))


def test_section_round_trip_and_is_optional():
    grid = _grid(6, 4, 80, 200, seed=5)
    data = _file_with(grid, 80, 200)
    back = container.read(data).colour
    assert (back.cell_log2, back.step) == (6, 4) and np.array_equal(back.values, grid.values)
    sec = [s for s in container.read_sections(data) if s.type == container.SEC_COLOUR]
    assert len(sec) == 1 and not sec[0].critical
    # a reader that does not know COLOUR skips it (non-critical) and decodes the rest
    saved = dict(container.SECTION_NAMES)
    try:
        del container.SECTION_NAMES[container.SEC_COLOUR]
        old = container.read(data)
        assert old.colour is None and [s.type for s in old.extra_sections] == [container.SEC_COLOUR]
    finally:
        container.SECTION_NAMES.clear()
        container.SECTION_NAMES.update(saved)


def _rewrite_colour(data: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    out = bytearray(data[:5])
    for sec in container.read_sections(data):
        b = body if sec.type == container.SEC_COLOUR else sec.body
        out += bytes([sec.type, sec.flags]) + container.write_uleb128(len(b)) + b
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


@pytest.mark.parametrize("body, message", [
    (b"", "truncated"), (b"\x06", "truncated"), (b"\x04\x04", "cell"), (b"\x0b\x04", "cell"),
    (b"\x06\x00", "step"), (b"\x06\x41", "step"),
])
def test_bad_headers_are_refused(body, message):
    data = _rewrite_colour(_file_with(_grid(6, 4, 80, 200), 80, 200), body)
    with pytest.raises(GczFormatError, match=message):
        container.read(data)


def test_offsets_beyond_the_8_bit_range_are_refused():
    big = colour.ColourGrid(6, 8, np.full((3, 2, 4), 31, np.int32))  # 248 levels: allowed
    data = _file_with(big, 80, 200)
    assert container.read(data).colour.values.max() == 31
    body = colour.encode(big)
    with pytest.raises(GczFormatError, match="beyond"):  # the same values read with step 9 > 255 levels
        container.read(_rewrite_colour(data, bytes([6, 9]) + body[2:]))
    with pytest.raises(ValueError):
        colour.encode(colour.ColourGrid(6, 8, np.full((3, 2, 4), 32, np.int32)))


def test_a_huge_grid_is_refused_before_decoding():
    # 65535 x 65535 pixels in cells of 32: 2048 x 2048 cells, far above the limit
    with pytest.raises(GczFormatError, match="more than"):
        colour.decode(bytes([5, 4]) + b"\x00" * 8, 65535, 65535)


def test_choose_recovers_a_smooth_colour_shift():
    rng = np.random.default_rng(0)
    original = photo_like(192, 256, seed=4)
    yy, xx = np.mgrid[0:192, 0:256]
    shift = np.stack([12 * np.sin(xx / 90), -10 + 0 * xx, 8 * np.cos(yy / 70)], -1)
    decoded = np.clip(original + shift + rng.normal(0, 2, original.shape), 0, 255).astype(np.uint8)
    grid = colour.choose(original, decoded, file_bytes=1000)
    assert grid is not None
    before = np.mean((original.astype(float) - decoded) ** 2)
    after = np.mean((original.astype(float) - colour.apply(decoded, grid)) ** 2)
    assert after < before / 4


def test_choose_stores_nothing_when_it_does_not_pay():
    original = photo_like(96, 128, seed=1)
    assert colour.choose(original, original.copy(), file_bytes=500) is None
    noise = np.random.default_rng(1).integers(-3, 4, original.shape)
    decoded = np.clip(original.astype(int) + noise, 0, 255).astype(np.uint8)  # no low-frequency error
    assert colour.choose(original, decoded, file_bytes=500) is None


def test_codec_stores_and_applies_the_correction(tiny_weights):
    img = photo_like(96, 128, seed=7)
    plain = gcodec.compress(img, channels=4, colour=False)
    fixed = gcodec.compress(img, channels=4)
    header = gcodec.read_header(fixed)
    assert header.colour is not None and gcodec.read_header(plain).colour is None
    # the same symbols: COLOUR is only added after PAYLOAD
    assert [s for s in container.read_sections(fixed) if s.type != container.SEC_COLOUR] == \
        container.read_sections(plain)
    raw = np.asarray(gcodec.decompress(plain))
    assert np.array_equal(np.asarray(gcodec.decompress(fixed, colour=False)), raw)
    out = np.asarray(gcodec.decompress(fixed))
    assert np.array_equal(out, colour.apply(raw, header.colour))
    err = lambda a: np.mean((img.astype(float) - a) ** 2)  # noqa: E731
    assert err(out) < err(raw)


def test_correction_applies_only_at_the_default_realism(tiny_weights):
    img = photo_like(96, 128, seed=8)
    data = gcodec.compress(img, channels=4, realism=0.5)
    assert gcodec.read_header(data).colour is not None
    assert np.array_equal(np.asarray(gcodec.decompress(data, realism=0.5)), np.asarray(gcodec.decompress(data)))
    assert np.array_equal(np.asarray(gcodec.decompress(data, realism=0.0)),
                          np.asarray(gcodec.decompress(data, realism=0.0, colour=False)))
