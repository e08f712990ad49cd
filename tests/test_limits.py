"""The pixel limit: hostile .gcz files and image bombs are refused from their headers."""
from __future__ import annotations

import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import gcodec
from gcodec import container, limits, zoo
from gcodec.entropy import FrequencyTables
from gcodec.errors import GczInputError, GczLimitError
from gcodec.imageio import load_image
from test_cli import assert_clean_error, gcz


def bomb_file(width: int = 65535, height: int = 65535, payload: int = 1981) -> bytes:
    """A CRC-valid file declaring ``width`` x ``height`` for the tiny C=4 model: each table gives
    symbol 0 probability 65532/65536, so 67 M symbols would fit in a 2 kB payload."""
    entry = zoo.find_model("gcz-c4")
    tables = FrequencyTables(16, np.array([[65532, 1, 1, 1, 1]] * 4, dtype=np.int64))
    return container.write(container.GczFile(width, height, entry.name, entry.hash_prefix, 4, 5, 16,
                                             tables, bytes(payload)))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB, with a token IDAT: decoding it would fail."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB of address space


def test_bomb_is_refused_by_the_library(tiny_weights):
    data = bomb_file()
    assert len(data) < 2100
    with pytest.raises(GczLimitError, match="65535x65535.*exceeds the pixel limit"):
        gcodec.decompress(data)


def test_bomb_is_refused_by_the_cli_within_1_gib(tiny_weights, tmp_path):
    bomb = tmp_path / "bomb.gcz"
    bomb.write_bytes(bomb_file())
    out = tmp_path / "out.png"
    result = subprocess.run([sys.executable, "-m", "gcodec.cli", "decompress", str(bomb), "-o", str(out)],
                            capture_output=True, preexec_fn=_cap_memory, timeout=60)
    assert_clean_error(result)
    assert b"pixel limit" in result.stderr and not out.exists()


def test_limit_from_flag_and_environment(tiny_weights, tmp_path, monkeypatch):
    data = gcodec.compress(np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(GczLimitError):
        gcodec.decompress(data, max_pixels=40 * 50 - 1)
    assert gcodec.decompress(data, max_pixels=40 * 50).size == (50, 40)
    monkeypatch.setenv(limits.ENV_VAR, "1999")
    with pytest.raises(GczLimitError):
        gcodec.decompress(data)
    assert gcodec.decompress(data, max_pixels=2000).size == (50, 40)  # the argument wins
    monkeypatch.setenv(limits.ENV_VAR, "lots")
    with pytest.raises(GczInputError, match="GCZ_MAX_PIXELS must be a positive integer"):
        gcodec.decompress(data)


def test_cli_max_pixels(tiny_weights, tmp_path):
    f = tmp_path / "x.gcz"
    f.write_bytes(gcodec.compress(np.zeros((40, 50, 3), np.uint8)))
    assert_clean_error(gcz("decompress", str(f), "-o", str(tmp_path / "x.png"), "--max-pixels", "100"))
    assert not (tmp_path / "x.png").exists()
    assert gcz("decompress", str(f), "-o", str(tmp_path / "x.png"), "--max-pixels", "2000").returncode == 0
    assert_clean_error(gcz("compress", str(tmp_path / "x.png"), "-o", str(tmp_path / "y.gcz"), "--max-pixels", "99"))


def test_image_bomb_is_refused_from_its_header(tmp_path):
    png = tmp_path / "bomb.png"
    png.write_bytes(png_header_only(30000, 30000))  # would be 2.7 GB of pixels; the data is not even there
    with pytest.raises(GczLimitError, match="30000x30000"):
        load_image(png)
    with pytest.raises(GczLimitError, match="30000x30000"):
        load_image(png, max_pixels=1000)
    with pytest.raises(GczLimitError, match="more than twice the pixel limit"):  # Pillow's guard, the backstop
        load_image(png_header_only(100000, 100000))
    with pytest.raises(GczLimitError, match="exceeds the pixel limit"):
        load_image(np.zeros((20, 20, 3), np.uint8), max_pixels=399)


def test_image_bomb_cli(tiny_weights, tmp_path):
    png = tmp_path / "bomb.png"
    png.write_bytes(png_header_only(30000, 30000))
    result = subprocess.run([sys.executable, "-m", "gcodec.cli", "compress", str(png), "-o", str(tmp_path / "b.gcz")],
                            capture_output=True, preexec_fn=_cap_memory, timeout=60)
    assert_clean_error(result)
    assert b"pixel limit" in result.stderr and not (tmp_path / "b.gcz").exists()


def test_pillow_guard_is_restored():
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(GczLimitError):
        load_image(png_header_only(300, 300), max_pixels=10)
    assert Image.MAX_IMAGE_PIXELS == before


def test_wrong_downsampling_is_refused_before_entropy_decoding(tiny_weights):
    entry = zoo.find_model("gcz-c4")
    tables = FrequencyTables(16, np.array([[65532, 1, 1, 1, 1]] * 4, dtype=np.int64))
    # downsampling 1 would make the latent as large as the image: 4 x 11000^2 symbols
    data = container.write(container.GczFile(11000, 11000, entry.name, entry.hash_prefix, 4, 5, 1, tables, bytes(9)))
    with pytest.raises(GczInputError, match="downsampling 1"):
        gcodec.decompress(data)
