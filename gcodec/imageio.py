"""Loading any image Pillow reads to 8-bit RGB, padding for the encoder, saving."""
from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import GczInputError

ImageLike = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]

#: Pillow's decompression-bomb guard, raised to what the container can hold.
Image.MAX_IMAGE_PIXELS = 65535 * 65535


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


def load_image(source: ImageLike) -> LoadedImage:
    """Load a path, encoded bytes, PIL image or uint8 array (H, W, 3) as 8-bit RGB.

    EXIF orientation is applied; grayscale, palette, 16-bit and alpha images
    are converted (alpha dropped, recorded in ``notes``).
    """
    notes: list[str] = []
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3:
            raise GczInputError("arrays must be uint8 of shape (H, W, 3)")
        if source.shape[0] < 1 or source.shape[1] < 1:
            raise GczInputError("image is empty")
        return LoadedImage(np.ascontiguousarray(source), notes)
    if isinstance(source, Image.Image):
        img = source
    else:
        name = "<bytes>" if isinstance(source, bytes) else str(source)
        try:
            if isinstance(source, bytes):
                if not source:
                    raise GczInputError("input is empty")
                img = Image.open(io.BytesIO(source))
            else:
                path = Path(source)
                if not path.exists():
                    raise GczInputError(f"{name}: no such file")
                if path.is_dir():
                    raise GczInputError(f"{name}: is a directory")
                if path.stat().st_size == 0:
                    raise GczInputError(f"{name}: file is empty")
                img = Image.open(path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img.load()
        except GczInputError:
            raise
        except UnidentifiedImageError:
            raise GczInputError(f"{name}: not an image Pillow can read") from None
        except PermissionError:
            raise GczInputError(f"{name}: permission denied") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
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
    options = {"quality": 95} if pil_format in ("JPEG", "WEBP") else {}
    img.save(buf, format=pil_format, **options)
    return buf.getvalue()
