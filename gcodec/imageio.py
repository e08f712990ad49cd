"""Loading any image Pillow reads to 8-bit RGB, padding for the encoder, saving."""
from __future__ import annotations

import io
import math
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import limits
from .errors import GczInputError, GczLimitError

ImageLike = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]

_pillow_guard_lock = threading.Lock()


@contextmanager
def _pillow_bomb_guard(limit: int) -> Iterator[None]:
    """Pillow's decompression-bomb guard moved out of gcz's way while an image is opened.

    gcz checks the header's size against ``limit`` itself, with a message that
    names the size; Pillow's guard stays as a backstop for images beyond what a
    ``.gcz`` file can describe (65535 x 65535).  The process-wide setting is
    restored afterwards.
    """
    with _pillow_guard_lock:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max(limit, 65535 * 65535)
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


@dataclass
class LoadedImage:
    """An RGB image as uint8 array (H, W, 3) plus notes on conversions made."""

    pixels: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def _to_rgb(img: Image.Image, notes: list[str]) -> np.ndarray:
    """Convert any Pillow mode to 8-bit RGB; alpha is dropped with a note."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(np.round(arr / hi * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        notes.append("alpha channel dropped")
    if img.mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    return np.asarray(img.convert("RGBA" if has_alpha else "RGB").convert("RGB"), dtype=np.uint8)


def load_image(source: ImageLike, max_pixels: int | None = None, name: str | None = None) -> LoadedImage:
    """Load a path, encoded bytes, PIL image or uint8 array (H, W, 3) as 8-bit RGB.

    EXIF orientation is applied; grayscale, palette, 16-bit and alpha images
    are converted (alpha dropped, recorded in ``notes``).  Images above the
    pixel limit (:mod:`gcodec.limits`; ``max_pixels`` overrides it) are refused
    from their header, before their pixels are decoded; a path must be a regular
    file within the input byte limit.  ``name`` is how error messages call the input.
    """
    notes: list[str] = []
    limit = limits.max_pixels(max_pixels)
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3:
            raise GczInputError("arrays must be uint8 of shape (H, W, 3)")
        if source.shape[0] < 1 or source.shape[1] < 1:
            raise GczInputError("image is empty")
        limits.check_pixels(source.shape[1], source.shape[0], limit)
        return LoadedImage(np.ascontiguousarray(source), notes)
    if isinstance(source, Image.Image):
        img = source
        limits.check_pixels(img.width, img.height, limit)
    else:
        if name is None:
            name = "<bytes>" if isinstance(source, bytes) else str(source)
        try:
            if isinstance(source, bytes):
                if not source:
                    raise GczInputError(f"{name}: input is empty" if name != "<bytes>" else "input is empty")
                opened: Union[io.BytesIO, Path] = io.BytesIO(source)
            else:
                from .files import check_input_file

                path = Path(source)
                check_input_file(path, "image", name)
                if path.stat().st_size == 0:
                    raise GczInputError(f"{name}: file is empty")
                opened = path
            img = open_checked(opened, limit, name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img.load()
        except GczInputError:
            raise
        except Image.DecompressionBombError:
            raise GczLimitError(f"{name}: image has more than twice the pixel limit of {limit} "
                                f"({limit / 1e6:.1f} megapixels)") from None
        except UnidentifiedImageError:
            raise GczInputError(f"{name}: not an image Pillow can read") from None
        except PermissionError:
            raise GczInputError(f"{name}: permission denied") from None
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever a malformed image makes Pillow raise
            raise GczInputError(f"{name}: cannot read image ({type(exc).__name__}: {exc})") from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not stop compression
        notes.append("EXIF orientation unreadable, ignored")
    try:
        pixels = _to_rgb(img, notes)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a mode or palette Pillow cannot convert
        raise GczInputError(f"{name or 'image'}: cannot convert the image to RGB ({type(exc).__name__}: {exc})") from None
    if pixels.ndim != 3 or pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise GczInputError("image is empty")
    return LoadedImage(pixels, notes)


def open_checked(source: "io.BytesIO | Path", limit: int, name: str) -> Image.Image:
    """``Image.open`` with the header's size checked against ``limit`` before any pixel is decoded.

    Pillow's bomb warning is silenced (gcz checks the size itself, with a message naming it);
    its bomb error stays a backstop.  Pillow errors propagate to the caller.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _pillow_bomb_guard(limit):
            img = Image.open(source)
    try:
        limits.check_pixels(img.width, img.height, limit, name)  # header only: nothing decoded yet
    except GczLimitError:
        img.close()
        raise
    return img


def padded_size(height: int, width: int, multiple: int, minimum: int) -> tuple[int, int]:
    """Size after padding each side up to a multiple of ``multiple``, at least ``minimum``."""
    return (max(minimum, math.ceil(height / multiple) * multiple),
            max(minimum, math.ceil(width / multiple) * multiple))


def pad_image(pixels: np.ndarray, multiple: int, minimum: int) -> np.ndarray:
    """Pad (H, W, 3) at the bottom/right by mirroring, to :func:`padded_size`."""
    ph, pw = padded_size(pixels.shape[0], pixels.shape[1], multiple, minimum)
    return np.pad(pixels, ((0, ph - pixels.shape[0]), (0, pw - pixels.shape[1]), (0, 0)), mode="symmetric")


def load_mask(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """A mask image (any mode) as (H, W) bool: True where its luminance is above half (white = keep).

    The file must be a regular file within the input byte limit, and its header's size within
    the pixel limit (``max_pixels`` or :mod:`gcodec.limits`'), checked before anything is decoded.
    """
    from .files import read_input

    try:
        data = read_input(str(path), "image")
    except GczInputError as exc:
        raise GczInputError(f"mask {exc}") from None
    return mask_from_bytes(data, f"mask {path}", max_pixels)


def mask_from_bytes(data: bytes, what: str = "mask", max_pixels: int | None = None) -> np.ndarray:
    """:func:`load_mask` of an encoded image in memory; ``what`` names it in errors."""
    if not data:
        raise GczInputError(f"{what}: file is empty")
    with pillow_errors(what, GczLimitError(f"{what}: image has more than twice the pixel limit")):
        with open_checked(io.BytesIO(data), limits.max_pixels(max_pixels), what) as img:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img.load()
                return np.asarray(img.convert("L")) > 127


@contextmanager
def pillow_errors(what: str, bomb: GczInputError) -> Iterator[None]:
    """Whatever Pillow raises inside the block as one line about ``what``, for auxiliary images.

    gcz's own input errors pass through, Pillow's decompression-bomb backstop
    becomes ``bomb``, a MemoryError stays one (the CLI reports it), anything
    else from a malformed file is "not a readable image".
    """
    try:
        yield
    except GczInputError:
        raise
    except Image.DecompressionBombError:
        raise bomb from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a malformed image makes Pillow raise
        raise GczInputError(f"{what}: not a readable image ({type(exc).__name__}: {exc})") from None


def to_pil(pixels: np.ndarray) -> Image.Image:
    """uint8 (H, W, 3) array to a PIL RGB image."""
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB")


#: Output formats ``gcz decompress --format`` accepts, mapped to Pillow names.
SAVE_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP",
                "tiff": "TIFF", "tif": "TIFF", "ppm": "PPM"}


def encode_image(img: Image.Image, fmt: str) -> bytes:
    """Encode a PIL image to bytes in ``fmt`` (a key of :data:`SAVE_FORMATS`)."""
    try:
        pil_format = SAVE_FORMATS[fmt.lower()]
    except KeyError:
        raise GczInputError(f"unknown output format {fmt!r}; use one of {', '.join(SAVE_FORMATS)}") from None
    buf = io.BytesIO()
    options: dict = {"quality": 95} if pil_format in ("JPEG", "WEBP") else {}
    if pil_format == "PNG":  # zlib level 4: 0.3 % larger than the default 6 on decoded photos, 2.7x faster
        options["compress_level"] = 4
    img.save(buf, format=pil_format, **options)
    return buf.getvalue()


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (1, 3, H, W) in [-1, 1], the networks' input."""
    x = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)
    x /= 127.5
    x -= 1.0
    return x[None]


def from_unit(image: np.ndarray) -> np.ndarray:
    """float (3, H, W) or (1, 3, H, W) in [-1, 1] -> uint8 (H, W, 3), rounding half to even."""
    x = image[0] if image.ndim == 4 else image
    x = np.clip(x.astype(np.float32, copy=False), -1.0, 1.0)
    x = np.round((x + 1.0) * np.float32(127.5))
    return np.ascontiguousarray(x.transpose(1, 2, 0)).astype(np.uint8)
