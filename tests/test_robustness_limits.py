"""Bounded work for hostile inputs, measured in subprocesses under an address-space cap: thin images
through the colour fit, many sections, oversized masks and label maps, large selective files, and
selective files whose latent does not fit their model."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import crafted_files
import gcodec
from gcodec import selective
from gcodec.selective import vector
from gcodec import colour, container
from gcodec.entropy import FrequencyTables
from gcodec.errors import GczFormatError, GczInputError, GczLimitError

from conftest import photo_like
from test_cli import assert_clean_error

ROOT = Path(__file__).resolve().parent.parent


def capped(code: str, cap_bytes: int, env: dict[str, str] | None = None, timeout: int = 120):
    """Run Python ``code`` in a child whose address space is capped at ``cap_bytes``; (result, seconds)."""
    prelude = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_AS, ({cap_bytes}, {cap_bytes}));"
               f"sys.path.insert(0, {str(ROOT)!r})\n")
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True,
                            timeout=timeout, env=dict(os.environ, **(env or {})))
    return result, time.monotonic() - start


def cli_capped(args: list[str], cap_bytes: int, env: dict[str, str] | None = None):
    start = time.monotonic()
    result = subprocess.run(["prlimit", f"--as={cap_bytes}", sys.executable, "-m", "gcodec.cli", *args],
                            capture_output=True, timeout=300, env=dict(os.environ, **(env or {})))
    return result, time.monotonic() - start


def blank_png(path: Path, width: int, height: int, bit_depth: int = 8) -> None:
    """A grayscale PNG of zeros of any size, written row by row (small file, little memory)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    row = b"\0" * (1 + width * bit_depth // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


# ------------------------------------------------------------------ the colour fit: linear in pixels
@pytest.mark.parametrize("shape", [(1, 65535), (65535, 1), (3, 40000)])
def test_colour_fit_of_a_thin_image_is_bounded(shape):
    """65535 x 1 took 242 s and 5.45 GB (a dense pseudo-inverse of pixels x cells); now a 1 GiB cap."""
    code = f"""
        import numpy as np
        from gcodec import colour
        h, w = {shape}
        rng = np.random.default_rng(0)
        original = np.full((h, w, 3), (10, 10, 200), np.uint8)
        decoded = np.clip(original + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        colour.choose(original, decoded, 201)
        for cell in colour.CANDIDATE_CELL_LOG2:
            colour.fit(original, decoded, cell)
        print("ok")
    """
    result, seconds = capped(code, 1 << 30)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert seconds < 60


def test_long_axis_solve_is_the_pseudo_inverse():
    rng = np.random.default_rng(1)
    for length in (1, 31, 32, 33, 100, 1000):
        for cell_log2 in (5, 7, 10):
            values = rng.normal(size=(length, 3))
            dense = np.linalg.pinv(colour._basis(length, cell_log2)) @ values
            assert np.allclose(colour.solve_axis(values, cell_log2), dense, atol=1e-9)


def test_both_solvers_choose_the_same_grid(monkeypatch):
    """The long-axis path (forced here on an ordinary image) finds the grid the dense path finds."""
    original = photo_like(300, 420)
    decoded = np.clip(original.astype(int) + np.array([9, -6, 4]) + photo_like(300, 420, 1) // 40 - 3,
                      0, 255).astype(np.uint8)
    dense = colour.choose(original, decoded, 3000)
    monkeypatch.setattr(colour, "DENSE_FIT_ENTRIES", 0)
    banded = colour.choose(original, decoded, 3000)
    assert dense is not None and banded is not None
    assert (dense.cell_log2, dense.step) == (banded.cell_log2, banded.step)
    assert np.array_equal(dense.values, banded.values)


def test_compress_of_a_thin_image_is_bounded(tiny_weights, tmp_path):
    """The probe's ``gcz compress t.png`` of 40000 x 1 (a 201-byte PNG): 111 s and 2.34 GB before."""
    png = tmp_path / "t.png"
    Image.new("RGB", (40000, 1), (10, 10, 200)).save(png)
    result, seconds = cli_capped(["compress", str(png), "-o", str(tmp_path / "t.gcz"), "--refine", "0"], 3 << 30)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert seconds < 90
    assert gcodec.decompress((tmp_path / "t.gcz").read_bytes()).size == (40000, 1)


# ------------------------------------------------------------------ many sections
def test_a_file_of_many_empty_sections_is_refused_at_once(tmp_path):
    """2 M empty sections (6 MB) took gcz info --json 15 s and 1.47 GB, gcz info more than 120 s."""
    path = tmp_path / "sections.gcz"
    path.write_bytes(crafted_files.envelope(crafted_files.required()
                                            + crafted_files.section(0x42, b"", False) * 2_000_000))
    for args in (["info", "--json", str(path)], ["info", str(path)], ["decompress", str(path), "-o",
                                                                       str(tmp_path / "x.png")]):
        result, seconds = cli_capped(args, 3 << 30)
        assert_clean_error(result)
        assert b"more than 256 sections" in result.stderr
        assert seconds < 60


def test_section_limit_is_exact():
    base = crafted_files.required()
    at_limit = crafted_files.envelope(base + crafted_files.section(0x42, b"", False) * (container.MAX_SECTIONS - 5))
    assert len(container.read_sections(at_limit)) == container.MAX_SECTIONS
    with pytest.raises(GczFormatError, match="more than 256 sections"):
        container.read_sections(crafted_files.envelope(
            base + crafted_files.section(0x42, b"", False) * (container.MAX_SECTIONS - 4)))
    with pytest.raises(GczFormatError, match="more than 256 sections"):
        container.read(crafted_files.envelope(base + crafted_files.section(0x42, b"", False) * 252))


# ------------------------------------------------------------------ masks and label maps: header first
def test_an_oversized_mask_is_refused_from_its_header(tiny_weights, tmp_path):
    """A 13000 x 13000 mask with GCZ_MAX_PIXELS=1000000: 205 MB and three stderr lines before."""
    mask = tmp_path / "mask13k.png"
    blank_png(mask, 13000, 13000)
    image = tmp_path / "photo.png"
    Image.fromarray(photo_like(80, 96)).save(image)
    result, seconds = cli_capped(["compress", str(image), "--preserve-mask", str(mask), "-o",
                                  str(tmp_path / "o.gcz")], 2 << 30, env={"GCZ_MAX_PIXELS": "1000000"})
    assert_clean_error(result)
    assert b"exceeds the pixel limit" in result.stderr
    assert seconds < 60


def test_an_oversized_label_map_is_refused_from_its_header(tiny_weights, tmp_path):
    """A 13000 x 13000 16-bit label map for a 96 x 80 image (328 kB): 1.03 GB before."""
    labels = tmp_path / "labels13k.png"
    blank_png(labels, 13000, 13000, bit_depth=16)
    assert labels.stat().st_size < 1_000_000
    image = tmp_path / "photo.png"
    Image.fromarray(photo_like(80, 96)).save(image)
    code = f"""
        from gcodec.selective.labelmaps import load_label_image
        from gcodec.errors import GczInputError
        try:
            load_label_image({str(labels)!r}, 96, 80, 12)
        except GczInputError as exc:
            print(exc)
    """
    result, seconds = capped(code, 1 << 30)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.decode().strip() == "--labels is 13000x13000, the image 96x80"
    assert result.stderr == b""
    assert seconds < 60
    result, _ = cli_capped(["compress", str(image), "--preserve-box", "0,0,10,10", "--labels", str(labels), "-o",
                            str(tmp_path / "o.gcz")], 3 << 30, env={"GCZ_MAX_PIXELS": "1000000"})
    assert_clean_error(result)


# ------------------------------------------------------------------ selective files
def _sc_file(width: int = 40, height: int = 30, channels: int = 8, levels: int = 5) -> bytes:
    """A CRC-valid selective file for the tiny SC model (empty heatmap, no region)."""
    data = gcodec.compress(photo_like(64, 64), selection=selective.Selection(boxes=((0, 0, 16, 16),)))
    gcz = container.read(data)
    rows = np.full((channels, levels), 1)
    rows[:, -1] = 2 ** 8 - (levels - 1)
    gcz.width, gcz.height, gcz.channels, gcz.levels = width, height, channels, levels
    gcz.tables = FrequencyTables(8, rows)
    gcz.payload = b"\x00\x00"
    gcz.context_prior = None
    from gcodec.selective import coding
    ph, pw = container.padded_sides(height, width)
    gcz.selective = container.SelectiveData(coding.encode_heatmap(np.zeros((ph // 8, pw // 8), bool)), 8, 12, 0, 0,
                                            coding.encode_regions(vector.VectorLabels(
                                                pw // 8, ph // 8, 8, 12, 0, ())))
    return container.write(gcz)


@pytest.mark.parametrize("channels,levels", [(4, 5), (64, 5), (8, 255), (8, 3)])
def test_selective_file_whose_latent_does_not_fit_the_model_is_refused(tiny_weights, channels, levels):
    """C = 4 or 64 was a RuntimeError, L = 255 an IndexError, L = 3 decoded on the 5-level model."""
    data = _sc_file(channels=channels, levels=levels)
    with pytest.raises(GczInputError, match="does not match the file's latent description"):
        gcodec.decompress(data)


def test_a_large_selective_file_is_refused_before_synthesis(tiny_weights, tmp_path):
    """4096 x 4096 for gcz-sc-c8 (1/8 of the pixel limit): 4.85 GB and an internal error before."""
    data = _sc_file(4096, 4096)
    with pytest.raises(GczLimitError, match="limit of selective files"):
        gcodec.decompress(data)
    path = tmp_path / "big_sc.gcz"
    path.write_bytes(data)
    result, seconds = cli_capped(["decompress", str(path), "-o", str(tmp_path / "o.png")], 3 << 30)
    assert_clean_error(result)
    assert b"limit of selective files" in result.stderr
    assert seconds < 60
    assert np.asarray(gcodec.decompress(_sc_file(96, 80))).shape == (80, 96, 3)


def test_selective_compress_applies_the_same_limit(tiny_weights):
    with pytest.raises(GczLimitError, match="limit of selective files"):
        gcodec.compress(photo_like(64, 64), selection=selective.Selection(boxes=((0, 0, 16, 16),)),
                        max_pixels=64 * 64 * 32 - 1)
