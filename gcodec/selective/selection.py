"""What to preserve: boxes, a mask, label classes -> the heatmap over the SC latent grid.

A latent position (an 8x8 block of the image padded to a multiple of 16) is
preserved (heatmap 1, its latent coded) when *any* of its image pixels is to
be preserved; pixels of the padding never are.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import GczInputError

#: Class tokens with a meaning of their own.
ALL = "all"
PERSON = "person"


@dataclass(frozen=True)
class Selection:
    """The user's choice of what to keep; the rest is synthesized from the label map.

    Attributes:
        boxes: (x, y, width, height) rectangles in image pixels.
        mask: (H, W) bool, True = keep, or None.
        preserve: class tokens to keep: integer ids, ``person``, ``all``.
        synthesize: class tokens to synthesize (everything else is kept); exclusive with ``preserve``.
    """

    boxes: tuple[tuple[int, int, int, int], ...] = ()
    mask: np.ndarray | None = field(default=None, compare=False)
    preserve: tuple[int | str, ...] = ()
    synthesize: tuple[int | str, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether nothing at all was asked for (plain GC compression then)."""
        return not (self.boxes or self.mask is not None or self.preserve or self.synthesize)

    @property
    def needs_person(self) -> bool:
        """Whether person segmentation must run."""
        return PERSON in self.preserve or PERSON in self.synthesize


def parse_box(text: str) -> tuple[int, int, int, int]:
    """``X,Y,W,H`` -> a box; raises GczInputError on anything else."""
    parts = text.replace(" ", "").split(",")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise GczInputError(f"--preserve-box {text!r}: expected X,Y,W,H (four integers)") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise GczInputError(f"--preserve-box {text!r}: X, Y must be >= 0 and W, H > 0")
    return x, y, w, h


def parse_classes(text: str, option: str) -> tuple[int | str, ...]:
    """``3,7,person`` -> (3, 7, 'person'); raises GczInputError on unknown tokens."""
    out: list[int | str] = []
    for token in (t.strip().lower() for t in text.split(",")):
        if not token:
            continue
        if token in (ALL, PERSON):
            out.append(token)
            continue
        try:
            value = int(token)
        except ValueError:
            raise GczInputError(f"{option}: {token!r} is not a class id, 'person' or 'all'") from None
        if not 0 <= value <= 255:
            raise GczInputError(f"{option}: class {value} outside 0..255")
        out.append(value)
    if not out:
        raise GczInputError(f"{option}: no classes given")
    return tuple(out)


def check_against_image(selection: Selection, width: int, height: int, classes: int) -> None:
    """Refuse boxes outside the image, a mask of another size and class ids the model lacks."""
    if selection.preserve and selection.synthesize:
        raise GczInputError("--preserve and --synthesize exclude each other")
    for x, y, w, h in selection.boxes:
        if x + w > width or y + h > height:
            raise GczInputError(f"--preserve-box {x},{y},{w},{h} extends outside the {width}x{height} image")
    if selection.mask is not None and selection.mask.shape != (height, width):
        mh, mw = selection.mask.shape
        raise GczInputError(f"--preserve-mask is {mw}x{mh}, the image {width}x{height}")
    for token in selection.preserve + selection.synthesize:
        if isinstance(token, int) and token >= classes:
            raise GczInputError(f"class {token} does not exist: the model has classes 0..{classes - 1}")


def preserved_pixels(selection: Selection, labels: np.ndarray, width: int, height: int,
                     person: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool of the image pixels to preserve.

    Args:
        selection: the request (checked with :func:`check_against_image`).
        labels: pixel label map (H, W) of the image.
        person: (H, W) bool person mask, needed when the selection names ``person``.
    """
    def of_classes(tokens: tuple[int | str, ...]) -> np.ndarray:
        hit = np.zeros((height, width), bool)
        ids = [t for t in tokens if isinstance(t, int)]
        if ids:
            hit |= np.isin(labels, ids)
        if PERSON in tokens:
            hit |= person if person is not None else False
        if ALL in tokens:
            hit[:] = True
        return hit

    keep = np.zeros((height, width), bool)
    if selection.synthesize:
        keep = ~of_classes(selection.synthesize)
    elif selection.preserve:
        keep = of_classes(selection.preserve)
    for x, y, w, h in selection.boxes:
        keep[y:y + h, x:x + w] = True
    if selection.mask is not None:
        keep |= selection.mask
    return keep


def heatmap(keep: np.ndarray, grid_h: int, grid_w: int, block: int) -> np.ndarray:
    """(grid_h, grid_w) bool: blocks of ``block`` pixels containing any preserved pixel."""
    padded = np.zeros((grid_h * block, grid_w * block), bool)
    padded[:keep.shape[0], :keep.shape[1]] = keep
    return padded.reshape(grid_h, block, grid_w, block).any(axis=(1, 3))
