"""Selective compression (SC, docs/method.md section 2): keep chosen regions, synthesize the rest.

The small surface the codec and the CLI use:

* :class:`Selection` (boxes, a mask, classes to preserve or synthesize) and its parsers;
* :func:`compress_image` / :func:`decompress_file`: SC ``.gcz`` files;
* :func:`read_parts`: the stored heatmap and label map, without running a network;
* :func:`label_svg` / :func:`heatmap_png`: the stored maps as a standard SVG and a PNG.

Modules: :mod:`.autolabel` (automatic label maps), :mod:`.regions` (connected
regions), :mod:`.vector` (label maps as polygons, integer rasterisation, SVG),
:mod:`.coding` (their arithmetic coding), :mod:`.selection` (heatmaps),
:mod:`.labelmaps` (user label maps), :mod:`.person` (optional person
segmentation), :mod:`.sc_codec` (the pipeline).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .selection import ALL, PERSON, Selection, parse_box, parse_classes

if TYPE_CHECKING:
    from .. import container, zoo
    from ..imageio import ImageLike, LoadedImage
    from .sc_codec import SelectiveParts

__all__ = ["ALL", "PERSON", "Selection", "compress_image", "decompress_file", "heatmap_png", "label_svg",
           "parse_box", "parse_classes", "read_parts"]


def compress_image(image: "LoadedImage", entry: "zoo.ModelEntry", selection: Selection,
                   labels: "ImageLike | None" = None, label_cell: int = 8, device: str = "auto",
                   context: bool = True, max_pixels: int | None = None) -> bytes:
    """Selectively compress a loaded image with an SC model entry.

    ``labels`` is a label image (path or bytes) of the image's size, or None for
    the automatic label map; ``person`` in the selection runs person segmentation
    (:mod:`.person`). ``context=False`` writes the static code gcz before 0.8 reads. ``max_pixels``:
    the pixel limit (selective images may use 1/32 of it, :func:`gcodec.limits.check_selective_pixels`).
    """
    from ..backends import torch_device
    from .. import limits
    from . import labelmaps, person, sc_codec

    limits.check_selective_pixels(image.width, image.height, max_pixels, "image")
    label_array = None
    if labels is not None:
        if isinstance(labels, np.ndarray):
            label_array = labelmaps.check_label_array(labels, image.width, image.height,
                                                      entry.arch.selective_classes)
        else:
            label_array = labelmaps.load_label_image(labels if isinstance(labels, bytes) else Path(labels),
                                                     image.width, image.height, entry.arch.selective_classes)
    person_mask = person.person_mask(image.pixels) if selection.needs_person else None
    return sc_codec.compress_selective(image, entry, selection, label_array, label_cell, person_mask,
                                       torch_device(device), context, max_pixels)


def decompress_file(gcz: "container.GczFile", entry: "zoo.ModelEntry", device: str = "auto",
                    max_pixels: int | None = None) -> np.ndarray:
    """Decode a parsed SC file: (H, W, 3) uint8; ``max_pixels`` as in :func:`gcodec.decompress`."""
    from ..backends import torch_device
    from .sc_codec import decompress_selective

    return decompress_selective(gcz, entry, torch_device(device), max_pixels)


def read_parts(gcz: "container.GczFile", max_pixels: int | None = None) -> "SelectiveParts":
    """The stored heatmap, vector label map and rasterised label grid of an SC file."""
    from .sc_codec import read_parts as _read

    return _read(gcz, max_pixels)


def label_svg(gcz: "container.GczFile", parts: "SelectiveParts | None" = None) -> str:
    """The stored label map as a standalone SVG document (image pixel units).

    ``parts`` (from :func:`read_parts`) saves decoding the sections again.
    """
    from .vector import to_svg

    return to_svg((parts or read_parts(gcz)).labels, gcz.width, gcz.height)


def heatmap_png(gcz: "container.GczFile", parts: "SelectiveParts | None" = None) -> bytes:
    """The stored heatmap as a PNG of the image's size: white = preserved (latent coded), black = synthesized.

    ``parts`` (from :func:`read_parts`) saves decoding the sections again.
    """
    import io

    from PIL import Image

    heat = (parts or read_parts(gcz)).heatmap
    block = gcz.downsampling
    pixels = np.repeat(np.repeat(heat, block, axis=0), block, axis=1)[:gcz.height, :gcz.width]
    buf = io.BytesIO()
    Image.fromarray((pixels * 255).astype(np.uint8), "L").save(buf, "PNG")
    return buf.getvalue()


def auto_labels(pixels: np.ndarray, cell: int = 8) -> "tuple[np.ndarray, str, dict[int, float]]":
    """The automatic label map of an RGB image as the encoder would store it.

    Returns (pixel label map (H, W) uint8, its SVG, the fraction of the image each class covers),
    so users can pick ``--preserve`` / ``--synthesize`` classes before compressing.
    """
    from ..imageio import pad_image
    from . import autolabel, labelmaps, vector

    book = autolabel.load_codebook()
    padded = pad_image(pixels, 16, 32)
    grid = autolabel.label_cells(padded, book)
    if cell != book.cell:
        grid = labelmaps.to_grid(labelmaps.to_pixels(grid, book.cell), cell, book.classes)
    h, w = pixels.shape[:2]
    pixel_labels = labelmaps.to_pixels(grid, cell)[:h, :w]
    svg = vector.to_svg(vector.trace(grid, book.classes, cell), w, h)
    counts = np.bincount(pixel_labels.ravel(), minlength=book.classes)
    return pixel_labels, svg, {k: round(float(c) / pixel_labels.size, 4) for k, c in enumerate(counts) if c}


def colourise(labels: np.ndarray, classes: int) -> np.ndarray:
    """A label map (H, W) as an RGB picture in the SVG's palette."""
    from .vector import palette

    return palette(classes)[labels]
