"""The Pillow plugin (gcodec.pillow): .gcz files through Pillow's own API."""
from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import gcodec
import gcodec.codec
import gcodec.pillow
from gcodec import container
from gcodec.pillow import GczDecodeError, GczEncodeError

from conftest import photo_like
from crafted_files import envelope, image, required

H, W = 80, 96


@pytest.fixture(scope="module")
def gcz_data(tiny_weights) -> bytes:
    return gcodec.compress(photo_like(H, W), channels=4)


@pytest.fixture
def gcz_path(tmp_path, gcz_data):
    path = tmp_path / "photo.gcz"
    path.write_bytes(gcz_data)
    return path


@pytest.fixture
def count_decodes(monkeypatch):
    """The number of gcodec.codec.decompress calls so far, as a one-element list."""
    calls = [0]
    real = gcodec.codec.decompress

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(gcodec.codec, "decompress", counting)
    return calls


@pytest.fixture
def pillow_limit(monkeypatch):
    """Set Image.MAX_IMAGE_PIXELS for one test (restored afterwards)."""
    return lambda value: monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", value)


def one_line_oserror(excinfo) -> str:
    """The message of a GczDecodeError, checked to be an OSError of one line."""
    assert type(excinfo.value) is GczDecodeError and isinstance(excinfo.value, OSError)
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


def test_registration():
    assert Image.registered_extensions()[".gcz"] == "GCZ"
    assert Image.MIME["GCZ"] == "image/x-gcz"
    assert "GCZ" in Image.OPEN and "GCZ" in Image.SAVE


@pytest.mark.parametrize("kind", ["path", "str", "bytesio", "file"])
def test_open_any_source(gcz_path, gcz_data, kind):
    if kind == "file":
        with open(gcz_path, "rb") as fp, Image.open(fp) as im:
            im.load()
            assert im.size == (W, H) and not fp.closed  # the caller's file stays the caller's
        return
    source = {"path": gcz_path, "str": str(gcz_path), "bytesio": io.BytesIO(gcz_data)}[kind]
    with Image.open(source) as im:
        assert (im.format, im.mode, im.size) == ("GCZ", "RGB", (W, H))
        assert im.format_description and im.get_format_mimetype() == "image/x-gcz"
        assert np.asarray(im).shape == (H, W, 3)


def test_open_is_lazy(gcz_path, count_decodes):
    im = Image.open(gcz_path)
    assert im.size == (W, H) and im.info["model"] == "gcz-c4"
    assert count_decodes[0] == 0
    access = im.load()
    assert count_decodes[0] == 1 and access is not None and len(access[0, 0]) == 3
    assert im.fp is None  # Pillow opened the file, so loading closes it
    im.load()
    im.convert("L")
    assert count_decodes[0] == 1


def test_info_matches_header(gcz_path, gcz_data):
    header = gcodec.read_header(gcz_data)
    with Image.open(gcz_path) as im:
        assert im.size == (header.width, header.height)
        assert im.info["model"] == header.model_name
        assert im.info["channels"] == header.channels == 4
        assert im.info["levels"] == header.levels
        assert im.info["bpp"] == pytest.approx(len(gcz_data) * 8 / (W * H))
        assert im.info["selective"] is False
        assert "realism" not in im.info and header.realism is None


def test_realism_in_info(tiny_weights):
    data = gcodec.compress(photo_like(32, 32), channels=4, realism=0.3, colour=False)
    assert Image.open(io.BytesIO(data)).info["realism"] == pytest.approx(0.3)


def test_pixels_equal_the_library(gcz_path, gcz_data):
    expected = np.asarray(gcodec.decompress(gcz_data))
    with Image.open(gcz_path) as im:
        assert np.array_equal(np.asarray(im), expected)
        assert im.tobytes() == expected.tobytes()


def test_thumbnail_and_convert(gcz_path, gcz_data):
    expected = gcodec.decompress(gcz_data)
    with Image.open(gcz_path) as im:
        grey = im.convert("L")
        assert grey.mode == "L" and grey.size == (W, H)
        assert np.array_equal(np.asarray(grey), np.asarray(expected.convert("L")))
        im.thumbnail((48, 48))
        assert im.size == (48, 40) and im.mode == "RGB"
        ref = expected.copy()
        ref.thumbnail((48, 48))
        assert np.array_equal(np.asarray(im), np.asarray(ref))
        im.load()  # after the thumbnail: the small image, no second decode
        assert im.size == (48, 40)


def test_save_round_trip(tiny_weights, tmp_path):
    source = Image.fromarray(photo_like(H, W, seed=1))
    buf = io.BytesIO()
    source.save(buf, format="GCZ", channels=4)
    assert buf.getvalue() == gcodec.compress(source, channels=4)
    path = tmp_path / "out.gcz"
    source.save(path)  # the extension picks the format
    assert path.read_bytes() == buf.getvalue()
    with Image.open(path) as im:
        assert im.size == (W, H) and im.info["channels"] == 4
        assert np.array_equal(np.asarray(im), np.asarray(gcodec.decompress(buf.getvalue())))


def test_save_options_reach_the_library(tiny_weights):
    source = Image.fromarray(photo_like(48, 64, seed=2))

    def saved(**options) -> bytes:
        buf = io.BytesIO()
        source.save(buf, format="GCZ", **options)
        return buf.getvalue()

    data = saved(channels=8, colour=False, context=False, effort=0)
    header = gcodec.read_header(data)
    assert header.channels == 8 and header.colour is None and header.context_prior is None
    assert data == gcodec.compress(source, channels=8, colour=False, context=False, effort=0)
    assert gcodec.read_header(saved(model="gcz-c2")).model_name == "gcz-c2"
    assert gcodec.read_header(saved(realism=0.5)).realism == 50
    assert saved(unknown_option=1) == saved()  # unknown options are ignored, as Pillow's writers do


def test_save_converts_other_modes(tiny_weights):
    rgb = photo_like(40, 40, seed=4)
    rgba = Image.fromarray(np.dstack([rgb, np.full((40, 40), 7, np.uint8)]), "RGBA")
    buf = io.BytesIO()
    rgba.save(buf, format="GCZ")
    assert buf.getvalue() == gcodec.compress(rgb)  # alpha dropped, not composited
    grey = Image.fromarray(rgb).convert("L")
    buf = io.BytesIO()
    grey.save(buf, format="GCZ")
    assert Image.open(buf).size == (40, 40)


def test_save_error_is_an_oserror(tiny_weights, tmp_path):
    path = tmp_path / "bad.gcz"
    with pytest.raises(GczEncodeError, match="channels") as excinfo:
        Image.fromarray(photo_like(16, 16)).save(path, channels=3)
    assert isinstance(excinfo.value, OSError)
    assert not path.exists()  # Pillow removes the file it created


def test_reencode_an_opened_gcz(gcz_path, tmp_path):
    with Image.open(gcz_path) as im:
        im.save(tmp_path / "again.gcz", channels=2)
    assert gcodec.read_header((tmp_path / "again.gcz").read_bytes()).channels == 2


@pytest.mark.parametrize("data", [b"", b"\x89G", b"not an image at all", b"\x89PNG\r\n\x1a\n" + bytes(40)])
def test_non_gcz_is_unidentified(tmp_path, data):
    path = tmp_path / "x.gcz"
    path.write_bytes(data)
    with pytest.raises(UnidentifiedImageError):
        Image.open(path)
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(data), formats=["GCZ"])


def damaged(data: bytes) -> dict[str, bytes]:
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40  # inside the payload
    return {"flipped": bytes(flipped), "truncated": data[:-7], "magic_only": data[:4], "no_crc": data[:-4],
            "newer_version": data[:4] + b"\x02" + data[5:]}


@pytest.mark.parametrize("kind", ["flipped", "truncated", "magic_only", "no_crc", "newer_version"])
def test_damaged_file_fails_at_open(gcz_data, tmp_path, kind, count_decodes):
    path = tmp_path / "bad.gcz"
    path.write_bytes(damaged(gcz_data)[kind])
    with pytest.raises(OSError) as excinfo:
        Image.open(path)
    message = one_line_oserror(excinfo)
    assert "truncated" in message or "corrupted" in message or "version" in message
    assert count_decodes[0] == 0


def test_bad_payload_fails_at_load(gcz_data):
    """A CRC-valid file whose latent cannot be decoded (its model is not installed): at load, not open."""
    bad = container.write(dataclasses.replace(container.read(gcz_data), model_name="gcz-not-installed"))
    im = Image.open(io.BytesIO(bad))
    assert im.info["model"] == "gcz-not-installed"
    with pytest.raises(OSError) as excinfo:
        im.load()
    assert "gcz-not-installed" in one_line_oserror(excinfo)
    with pytest.raises(OSError):
        im.convert("L")


def test_decode_options(gcz_data, tiny_weights):
    im = Image.open(io.BytesIO(gcz_data))
    im.decode_options["colour"] = False
    assert np.array_equal(np.asarray(im), np.asarray(gcodec.decompress(gcz_data, colour=False)))
    im = Image.open(io.BytesIO(gcz_data))
    im.decode_options["realism"] = 7
    with pytest.raises(GczDecodeError, match="realism"):
        im.load()


def test_pillow_pixel_limit_below_the_image(gcz_path, pillow_limit, count_decodes):
    pillow_limit(W * H - 1)  # above the limit, below twice it: Pillow warns at open, gcz refuses to decode
    with pytest.warns(Image.DecompressionBombWarning):
        im = Image.open(gcz_path)
    with im, pytest.raises(OSError) as excinfo:
        im.load()
    assert "MAX_IMAGE_PIXELS" in one_line_oserror(excinfo)
    pillow_limit(W * H // 2 - 1)  # above twice the limit: Pillow's own error at open
    with pytest.raises(Image.DecompressionBombError):
        Image.open(gcz_path)
    assert count_decodes[0] == 0
    pillow_limit(W * H)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert Image.open(gcz_path).load() is not None


def test_gcz_pixel_limit_applies(gcz_path, monkeypatch):
    monkeypatch.setenv("GCZ_MAX_PIXELS", str(W * H - 1))
    with Image.open(gcz_path) as im, pytest.raises(OSError) as excinfo:
        im.load()
    assert "pixel limit" in one_line_oserror(excinfo)


def test_hostile_declared_size_is_refused_without_allocation(pillow_limit):
    hostile = envelope(required(image=image(65535, 65535)))  # a valid header of 4.3 gigapixels
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(hostile))  # Pillow's default limit, at open
    pillow_limit(None)
    im = Image.open(io.BytesIO(hostile))
    assert im.size == (65535, 65535)
    tracemalloc.start()
    try:
        with pytest.raises(OSError) as excinfo:
            im.load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "pixel limit" in one_line_oserror(excinfo)
    assert peak < 1 << 20


def test_input_is_read_with_a_byte_cap(gcz_data, monkeypatch):
    monkeypatch.setenv("GCZ_MAX_INPUT_BYTES", str(len(gcz_data) - 1))
    with pytest.raises(OSError) as excinfo:
        Image.open(io.BytesIO(gcz_data))
    assert "limit" in one_line_oserror(excinfo)

    class Endless(io.RawIOBase):
        """An endless stream after the magic: reading it must stop at the cap."""

        def __init__(self) -> None:
            self.pos = 0

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def seek(self, offset: int, whence: int = 0) -> int:
            self.pos = offset
            return offset

        def tell(self) -> int:
            return self.pos

        def readinto(self, buf) -> int:
            head = container.MAGIC + b"\x01"
            for i in range(len(buf)):
                buf[i] = head[self.pos + i] if self.pos + i < len(head) else 0
            self.pos += len(buf)
            return len(buf)

    monkeypatch.setenv("GCZ_MAX_INPUT_BYTES", str(1 << 16))
    stream = Endless()
    with pytest.raises(OSError) as excinfo:
        Image.open(stream)
    assert "limit" in one_line_oserror(excinfo)
    assert stream.pos <= (1 << 16) + 1


def test_import_does_not_import_torch():
    code = ("import sys, gcodec.pillow\n"
            "from PIL import Image\n"
            "assert Image.registered_extensions()['.gcz'] == 'GCZ'\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
