"""The library API: compress/decompress/read_header with tiny models."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import gcodec
from gcodec import container
from gcodec.errors import GczFormatError, GczInputError, GczModelError

from conftest import photo_like


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (80, 96), (31, 16), (3, 130)])
def test_round_trip_keeps_size(tiny_weights, size):
    h, w = size
    data = gcodec.compress(photo_like(h, w), channels=4)
    image = gcodec.decompress(data)
    assert isinstance(image, Image.Image) and image.size == (w, h) and image.mode == "RGB"


@pytest.mark.parametrize("channels", [2, 4, 8])
def test_header_and_rate_bound(tiny_weights, channels):
    h, w = 256, 384
    data = gcodec.compress(photo_like(h, w), channels=channels)
    header = gcodec.read_header(data)
    assert (header.width, header.height, header.channels, header.levels) == (w, h, channels, 5)
    assert header.model_name == f"gcz-c{channels}"
    symbols = header.channels * header.latent_shape[1] * header.latent_shape[2]
    # payload never exceeds the uniform bound by more than the coder's flush bytes
    assert len(header.payload) <= symbols * np.log2(5) / 8 + 8


def test_deterministic_bitstream(tiny_weights):
    img = photo_like(64, 64, seed=3)
    assert gcodec.compress(img) == gcodec.compress(img)


def test_input_kinds_agree(tiny_weights, tmp_path):
    arr = photo_like(48, 40)
    path = tmp_path / "x.png"
    Image.fromarray(arr).save(path)
    ref = gcodec.compress(arr)
    assert gcodec.compress(path) == ref
    assert gcodec.compress(str(path)) == ref
    assert gcodec.compress(path.read_bytes()) == ref
    assert gcodec.compress(Image.fromarray(arr)) == ref


def test_errors(tiny_weights):
    with pytest.raises(GczInputError, match="channels"):
        gcodec.compress(photo_like(16, 16), channels=3)
    with pytest.raises(GczModelError, match="unknown model"):
        gcodec.compress(photo_like(16, 16), model="nope")
    data = gcodec.compress(photo_like(32, 32))
    with pytest.raises(GczFormatError):
        gcodec.decompress(data[:-1])


def test_unknown_model_id_in_file(tiny_weights):
    gcz = container.read(gcodec.compress(photo_like(32, 32)))
    gcz.model_name = "gcz-c99"
    with pytest.raises(GczModelError, match="unknown model"):
        gcodec.decompress(container.write(gcz))
    gcz.model_name = "gcz-c4"
    gcz.model_hash = b"\xde\xad\xbe\xef"
    with pytest.raises(GczModelError, match="different weights"):
        gcodec.decompress(container.write(gcz))


def test_thousands_of_damaged_files_fail_cleanly(tiny_weights):
    """Through the public API, damaged files end in GczError, never another exception."""
    good = gcodec.compress(photo_like(48, 64))
    rng = np.random.default_rng(2024)
    for i in range(2000):
        damaged = bytearray(good)
        if i % 3 == 0:
            damaged = damaged[: int(rng.integers(0, len(good)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                pos = int(rng.integers(0, len(damaged)))
                damaged[pos] ^= 1 << int(rng.integers(0, 8))
        if bytes(damaged) == good:
            continue
        with pytest.raises(gcodec.GczError):
            gcodec.decompress(bytes(damaged))
