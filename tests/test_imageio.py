"""Loading any image to 8-bit RGB, padding, saving."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gcodec.errors import GczInputError
from gcodec.imageio import encode_image, load_image, pad_image, padded_size


def png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["L", "P", "RGB", "RGBA", "LA", "1", "I;16", "I", "CMYK", "PA"])
def test_modes_become_8bit_rgb(mode):
    base = Image.fromarray(np.random.default_rng(0).integers(0, 255, (9, 7, 3), dtype=np.uint8))
    if mode == "PA":
        img = base.convert("P").convert("PA")
    elif mode in ("I;16", "I"):
        img = Image.fromarray((np.arange(63).reshape(9, 7) * 1000).astype(np.uint16 if mode == "I;16" else np.int32))
        assert img.mode == mode
    else:
        img = base.convert(mode)
    loaded = load_image(img)
    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.shape == (9, 7, 3)
    assert ("alpha channel dropped" in loaded.notes) == (mode in ("RGBA", "LA", "PA"))


def test_sixteen_bit_scaling_uses_full_range():
    arr = np.array([[0, 65535]], dtype=np.uint16)
    loaded = load_image(Image.fromarray(arr))
    assert loaded.pixels[0, 0, 0] == 0 and loaded.pixels[0, 1, 0] == 255


def test_exif_orientation_applied():
    img = Image.fromarray(np.zeros((10, 20, 3), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    assert load_image(buf.getvalue()).pixels.shape == (20, 10, 3)


def test_one_pixel_and_paths(tmp_path):
    path = tmp_path / "p.png"
    Image.new("RGB", (1, 1), (10, 20, 30)).save(path)
    loaded = load_image(path)
    assert loaded.pixels.tolist() == [[[10, 20, 30]]]
    assert load_image(str(path)).width == 1


@pytest.mark.parametrize("content,match", [(b"", "empty"), (b"not an image at all", "not an image"),
                                           (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "not an image")])
def test_bad_inputs(tmp_path, content, match):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(GczInputError, match=match):
        load_image(path)


def test_truncated_jpeg_is_clean_error():
    data = png_bytes(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    with pytest.raises(GczInputError):
        load_image(data[: len(data) // 2])


def test_missing_and_directory(tmp_path):
    with pytest.raises(GczInputError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(GczInputError, match="directory"):
        load_image(tmp_path)


def test_padding():
    assert padded_size(1, 1, 16, 32) == (32, 32)
    assert padded_size(33, 64, 16, 32) == (48, 64)
    px = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    out = pad_image(px, 16, 32)
    assert out.shape == (32, 32, 3) and np.array_equal(out[:3, :5], px)


def test_encode_formats():
    img = Image.new("RGB", (4, 4))
    assert encode_image(img, "png")[:4] == b"\x89PNG"
    assert encode_image(img, "jpg")[:2] == b"\xff\xd8"
    with pytest.raises(GczInputError):
        encode_image(img, "xyz")
