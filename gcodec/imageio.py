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


def load_image(source: ImageLike, max_pixels: int | None = None) -> LoadedImage:
    """Load a path, encoded bytes, PIL image or uint8 array (H, W, 3) as 8-bit RGB.

    EXIF orientation is applied; grayscale, palette, 16-bit and alpha images
    are converted (alpha dropped, recorded in ``notes``).  Images above the
    pixel limit (:mod:`gcodec.limits`; ``max_pixels`` overrides it) are refused
    from their header, before their pixels are decoded.
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
        name = "<bytes>" if isinstance(source, bytes) else str(source)
        try:
            if isinstance(source, bytes):
                if not source:
                    raise GczInputError("input is empty")
                opened: Union[io.BytesIO, Path] = io.BytesIO(source)
            else:
                path = Path(source)
                if not path.exists():
                    raise GczInputError(f"{name}: no such file")
                if path.is_dir():
                    raise GczInputError(f"{name}: is a directory")
                if path.stat().st_size == 0:
                    raise GczInputError(f"{name}: file is empty")
                opened = path
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow's bomb warning: gcz checks the size itself
                with _pillow_bomb_guard(limit):
                    img = Image.open(opened)
                limits.check_pixels(img.width, img.height, limit, name)  # header only: nothing decoded yet
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
        except (OSError, SyntaxError, ValueError) as exc:
            raise GczInputError(f"{name}: cannot read image ({exc})") from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not stop compression
        notes.append("EXIF orientation unreadable, ignored")
    pixels = _to_rgb(img, notes)
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise GczInputError("image is empty")
    return LoadedImage(pixels, notes)


def padded_size(height: int, width: int, multiple: int, minimum: int) -> tuple[int, int]:
    """Size after padding each side up to a multiple of ``multiple``, at least ``minimum``."""
    return (max(minimum, math.ceil(height / multiple) * multiple),
            max(minimum, math.ceil(width / multiple) * multiple))


def pad_image(pixels: np.ndarray, multiple: int, minimum: int) -> np.ndarray:
    """Pad (H, W, 3) at the bottom/right by mirroring, to :func:`padded_size`."""
    ph, pw = padded_size(pixels.shape[0], pixels.shape[1], multiple, minimum)
    return np.pad(pixels, ((0, ph - pixels.shape[0]), (0, pw - pixels.shape[1]), (0, 0)), mode="symmetric")


def load_mask(path: str | Path) -> np.ndarray:
    """A mask image (any mode) as (H, W) bool: True where its luminance is above half (white = keep)."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.width * img.height > limits.max_pixels():
                raise GczInputError(f"mask {path} exceeds the pixel limit")
            return np.asarray(img.convert("L")) > 127
    except FileNotFoundError:
        raise GczInputError(f"mask {path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise GczInputError(f"mask {path}: not a readable image ({exc})") from None


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
