"""Label maps given by the user (``--labels LABELS.png``) and conversion to the cell grid."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import GczInputError
from ..imageio import pillow_errors


def load_label_image(source: str | Path | bytes, width: int, height: int, classes: int) -> np.ndarray:
    """Read a single-channel label image (one integer class per pixel) of the image's size.

    Accepts 8-bit grayscale, palette (the palette index is the class) and
    16/32-bit integer PNGs.  Raises GczInputError for another size, colour
    label maps, or classes the model does not have.  A file must be a regular
    file within the input byte limit, and the header's size must be the image's
    (checked before any pixel is decoded, so the work is bounded by the image).
    """
    from ..files import read_input

    if not isinstance(source, bytes):
        try:
            source = read_input(str(source), "image")
        except GczInputError as exc:
            raise GczInputError(f"--labels: {exc}") from None
    bomb = GczInputError(f"--labels: the label map has far more pixels than the image {width}x{height}")
    with pillow_errors("--labels", bomb):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's bomb warning: the size is checked just below
            img = Image.open(io.BytesIO(source))
        with img:
            mode, size = img.mode, img.size
            if size != (width, height):
                raise GczInputError(f"--labels is {size[0]}x{size[1]}, the image {width}x{height}")
            if mode in ("RGB", "RGBA", "LA", "CMYK", "YCbCr"):
                raise GczInputError(f"--labels: a {mode} image; label maps are single-channel "
                                    "(one integer class per pixel)")
            img.load()
            arr = np.asarray(img.convert("I") if mode not in ("L", "P", "I", "I;16") else img)
    if arr.ndim != 2:
        raise GczInputError("--labels: label maps are single-channel (one integer class per pixel)")
    low, high = int(arr.min()), int(arr.max())
    if low < 0 or high >= classes:
        raise GczInputError(f"--labels has class {high if high >= classes else low}; "
                            f"the model knows classes 0..{classes - 1}")
    return arr.astype(np.uint8)


def pad_labels(labels: np.ndarray, padded_h: int, padded_w: int) -> np.ndarray:
    """Pad a pixel label map at the bottom/right by mirroring (as the image is padded)."""
    return np.pad(labels, ((0, padded_h - labels.shape[0]), (0, padded_w - labels.shape[1])), mode="symmetric")


def to_grid(labels: np.ndarray, cell: int, classes: int) -> np.ndarray:
    """Majority class of every ``cell`` x ``cell`` block (ties: the lower id); sides must divide."""
    h, w = labels.shape
    if h % cell or w % cell:
        raise ValueError("label map sides must be multiples of the cell")
    if cell == 1:
        return labels.astype(np.uint8)
    blocks = labels.reshape(h // cell, cell, w // cell, cell).transpose(0, 2, 1, 3).reshape(h // cell, w // cell, -1)
    counts = np.zeros((h // cell, w // cell, classes), np.int32)
    for k in np.unique(blocks):
        counts[..., k] = (blocks == k).sum(-1)
    return counts.argmax(-1).astype(np.uint8)


def to_pixels(grid: np.ndarray, cell: int) -> np.ndarray:
    """Cell grid -> pixel label map (nearest)."""
    return np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)


def check_label_array(labels: np.ndarray, width: int, height: int, classes: int) -> np.ndarray:
    """Validate an in-memory label map (H, W) of integer classes; return it as uint8."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise GczInputError("a label map must be a 2-D array of integer classes")
    if labels.shape != (height, width):
        raise GczInputError(f"label map is {labels.shape[1]}x{labels.shape[0]}, the image {width}x{height}")
    if labels.min() < 0 or labels.max() >= classes:
        raise GczInputError(f"label map has classes outside 0..{classes - 1}")
    return labels.astype(np.uint8)
