"""A Pillow plugin for ``.gcz`` files: ``import gcodec.pillow`` and Pillow reads and writes them.

Usage::

    import gcodec.pillow  # noqa: F401 - registers the GCZ format with Pillow
    from PIL import Image

    im = Image.open("photo.gcz")          # reads and checks the file; no network runs
    print(im.size, im.info["model"], im.info["bpp"])
    im.thumbnail((256, 256))              # the first use of the pixels decodes the file
    im.save("thumb.png")

    Image.open("photo.jpg").save("photo.gcz", channels=4, effort=2)

Reading: :func:`PIL.Image.open` reads the whole file, up to gcz's input byte
limit (:func:`gcodec.limits.max_input_bytes`, 64 MiB by default), and parses
and CRC-checks its header (:func:`gcodec.read_header`); mode is always
``RGB``.  ``info`` holds ``model``, ``channels``, ``levels``, ``bpp`` (file
bits per pixel), ``selective`` and, where the file stores one, ``realism``.
The latent is entropy decoded and the networks run only when the pixels are
first needed (``load()``, ``convert``, ``thumbnail``, ``save``, ...), by
:func:`gcodec.decompress` with its defaults, or with the keyword arguments in
the image's ``decode_options`` dict (``device``, ``seed``, ``backend``,
``realism``, ``colour``), set before the first use of the pixels.

Limits: Pillow's decompression-bomb check runs on the header's size at open
as for any format (a warning above :data:`PIL.Image.MAX_IMAGE_PIXELS`, a
:class:`PIL.Image.DecompressionBombError` above twice that).  Decoding refuses
images above the smaller of ``Image.MAX_IMAGE_PIXELS`` (where not None) and
gcz's own pixel limit (:mod:`gcodec.limits`), before anything of their size is
allocated.

Writing: ``im.save(path_or_file, format="GCZ", **options)`` (the format is
implied by a ``.gcz`` file name) encodes with :func:`gcodec.compress`; the
options are the library's keyword arguments of the same names:
``channels``, ``model``, ``effort``, ``refine_steps``, ``realism``,
``colour``, ``context``, ``device``, ``backend``, ``max_pixels``.  The image
is handed to :func:`gcodec.compress` as it is, so the bytes are the library's
for the same image: other modes are converted to RGB (an
alpha channel is dropped, not composited: composite onto a background first
if you want one, e.g. ``Image.alpha_composite(Image.new("RGBA", im.size,
"white"), im)``) and an EXIF orientation is applied, since a ``.gcz`` file
stores no EXIF.

Errors follow Pillow's conventions: data that is not a ``.gcz`` file is not
identified (:class:`PIL.UnidentifiedImageError` from ``Image.open``); a
damaged ``.gcz`` file raises :class:`GczDecodeError`, an :class:`OSError`
with gcz's one-line message, at open if its header or CRC is bad and at load
if its payload cannot be decoded (or its model is not installed); a failed
save raises :class:`GczEncodeError`, also an :class:`OSError`.  Both are
:class:`gcodec.GczError` as well.

Importing this module does not import PyTorch.
"""
from __future__ import annotations

from typing import IO, Any

from PIL import Image, ImageFile

from . import codec, limits
from .container import MAGIC, REALISM_STEPS
from .errors import GczError
from .files import read_capped

__all__ = ["GczImageFile", "GczDecodeError", "GczEncodeError", "SAVE_OPTIONS", "MIME_TYPE"]

MIME_TYPE = "image/x-gcz"
#: The keyword arguments of ``Image.save`` passed on to :func:`gcodec.compress` (others are ignored,
#: as Pillow's writers ignore options they do not know).
SAVE_OPTIONS = ("channels", "model", "effort", "refine_steps", "realism", "colour", "context",
                "device", "backend", "max_pixels")


class GczDecodeError(OSError, GczError):
    """A ``.gcz`` file cannot be read or decoded; the message is gcz's one-line reason."""


class GczEncodeError(OSError, GczError):
    """An image cannot be encoded to ``.gcz``; the message is gcz's one-line reason."""


def _accept(prefix: bytes) -> bool:
    """Whether ``prefix`` (the first bytes of a file) starts with the ``.gcz`` magic."""
    return prefix[:len(MAGIC)] == MAGIC


def _pixel_limit() -> int:
    """The decoder's pixel limit: gcz's own, or ``Image.MAX_IMAGE_PIXELS`` where that is smaller."""
    own = limits.max_pixels()
    pillow = Image.MAX_IMAGE_PIXELS
    return own if pillow is None else max(1, min(own, int(pillow)))


class GczImageFile(ImageFile.ImageFile):
    """A ``.gcz`` file opened by Pillow: the header is parsed at open, the pixels decoded on first use."""

    format = "GCZ"
    format_description = "gcz generative image compression"

    def _open(self) -> None:
        assert self.fp is not None
        if not _accept(self.fp.read(len(MAGIC))):
            raise SyntaxError("not a .gcz file")
        self.fp.seek(0)
        try:
            data = read_capped(self.fp.read, limits.max_input_bytes("gcz"), "gcz")
            header = codec.read_header(data)
        except GczDecodeError:
            raise
        except GczError as exc:
            raise GczDecodeError(str(exc)) from None
        self._gcz_data: bytes | None = data
        #: Keyword arguments for :func:`gcodec.decompress` at the first load (not ``max_pixels``).
        self.decode_options: dict[str, Any] = {}
        self._mode = "RGB"
        self._size = (header.width, header.height)
        self.info.update({
            "model": header.model_name,
            "channels": header.channels,
            "levels": header.levels,
            "bpp": len(data) * 8 / (header.width * header.height),
            "selective": header.selective is not None,
        })
        if header.realism is not None:
            self.info["realism"] = header.realism / REALISM_STEPS
        self.tile = []

    def load(self) -> Any:
        """Decode the file (first call only) and return the pixel access object, as Pillow's ``load``."""
        if self._gcz_data is not None:
            pixels = Image.MAX_IMAGE_PIXELS
            if pixels is not None and self.width * self.height > pixels:
                raise GczDecodeError(f"image of {self.width}x{self.height} ({self.width * self.height} pixels) "
                                     f"exceeds PIL.Image.MAX_IMAGE_PIXELS ({pixels} pixels)")
            try:
                decoded = codec.decompress(self._gcz_data, max_pixels=_pixel_limit(), **self.decode_options)
            except GczError as exc:
                raise GczDecodeError(str(exc)) from None
            if decoded.mode != "RGB" or decoded.size != self.size:
                raise GczDecodeError(f"decoder returned a {decoded.mode} image of {decoded.size}, not RGB {self.size}")
            self.im = decoded.im
            self._gcz_data = None
            self.readonly = 0
            if self._exclusive_fp and self._close_exclusive_fp_after_loading and self.fp:
                self.fp.close()
            self.fp = None
        return Image.Image.load(self)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """Pillow's save handler: encode ``im`` with :func:`gcodec.compress` and write the file to ``fp``."""
    options = {key: im.encoderinfo[key] for key in SAVE_OPTIONS if key in im.encoderinfo}
    try:
        data = codec.compress(im, **options)
    except GczError as exc:
        raise GczEncodeError(str(exc)) from None
    fp.write(data)


Image.register_open(GczImageFile.format, GczImageFile, _accept)
Image.register_save(GczImageFile.format, _save)
Image.register_extension(GczImageFile.format, ".gcz")
Image.register_mime(GczImageFile.format, MIME_TYPE)
