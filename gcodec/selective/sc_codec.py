"""Selective compression end to end: image + selection -> SC ``.gcz`` bytes, and back.

The file carries (format_spec.md 3.7, 3.8): the heatmap over the latent
grid, the label map as vector graphics, and only the latent symbols where
the heatmap is 1 (channel by channel, raster order) in PAYLOAD.  Decoding
fills the other positions with the centre level 0 (the encoder's latent is
multiplied by the heatmap), rasterises the label map by the integer rule and
runs G.  SC models run on PyTorch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import container, limits, zoo
from .. import payload as payload_mod
from ..errors import GczFormatError, GczInputError
from ..imageio import LoadedImage, pad_image
from . import autolabel, coding, labelmaps, selection as sel_mod, vector

MIN_PADDED_SIDE = 32


@dataclass(frozen=True)
class SelectiveParts:
    """What an SC file's sections decode to (no network run)."""

    heatmap: np.ndarray          # (h, w) bool over the latent grid
    labels: vector.VectorLabels  # the stored label map
    grid: np.ndarray             # the rasterised label grid (rows, cols) uint8


def _torch_image(pixels: np.ndarray):  # noqa: ANN202
    import torch
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float() / 127.5 - 1


def label_grid_for(padded: np.ndarray, entry: zoo.ModelEntry, labels: np.ndarray | None, cell: int) -> np.ndarray:
    """The label grid of the padded image: the user's map (majority per cell) or the automatic one."""
    classes = entry.arch.selective_classes
    if labels is not None:
        pixel = labelmaps.pad_labels(labels, padded.shape[0], padded.shape[1])
        return labelmaps.to_grid(pixel, cell, classes)
    book = autolabel.load_codebook()
    if book.classes != classes:
        raise GczInputError(f"the installed label codebook has {book.classes} classes, model {entry.name} "
                            f"{classes}: give --labels")
    grid = autolabel.label_cells(padded, book)
    if cell != book.cell:
        grid = labelmaps.to_grid(labelmaps.to_pixels(grid, book.cell), cell, classes)
    return grid


def compress_selective(image: LoadedImage, entry: zoo.ModelEntry, selection: sel_mod.Selection,
                       labels: np.ndarray | None = None, cell: int = autolabel.DEFAULT_CELL,
                       person: np.ndarray | None = None, device: str = "cpu", context: bool = True,
                       max_pixels: int | None = None) -> bytes:
    """Compress with an SC model, coding the latent only where ``selection`` asks to preserve.

    Args:
        image: the loaded RGB image.
        entry: an SC model (``arch.selective_classes > 0``).
        selection: boxes, mask and classes to keep (checked against the image and model here).
        labels: the user's pixel label map (H, W), or None for the automatic one.
        cell: label-map cell side in pixels (1, 2, 4, 8 or 16).
        person: (H, W) bool person mask when the selection names ``person``.
        device: torch device.
        context: code the symbols with context-adaptive models where that is smaller
            (:mod:`gcodec.payload`); False: the static code gcz before 0.8 reads.
        max_pixels: the pixel limit (:func:`gcodec.limits.check_selective_pixels`; default: the one in force).
    """
    import torch

    if not entry.arch.selective:
        raise GczInputError(f"model {entry.name} is not a selective-compression model")
    if cell not in container.LABEL_CELLS:
        raise GczInputError(f"--label-cell must be one of {', '.join(map(str, container.LABEL_CELLS))}")
    limits.check_selective_pixels(image.width, image.height, max_pixels, "image")
    classes = entry.arch.selective_classes
    sel_mod.check_against_image(selection, image.width, image.height, classes)
    if selection.needs_person and person is None:
        raise GczInputError("the selection names 'person' but no person mask was given")
    padded = pad_image(image.pixels, 16, MIN_PADDED_SIDE)
    grid = label_grid_for(padded, entry, labels, cell)
    vec = vector.trace(grid, classes, cell)
    if vector.raster_work(vec) > vector.MAX_RASTER_WORK * grid.size:
        raise GczInputError("the label map has too many nested regions to store; use a larger --label-cell")
    pixel_labels = labelmaps.to_pixels(grid, cell)[:image.height, :image.width]
    keep = sel_mod.preserved_pixels(selection, pixel_labels, image.width, image.height, person)
    d = entry.arch.downsampling
    heat = sel_mod.heatmap(keep, padded.shape[0] // d, padded.shape[1] // d, d)
    if not heat.any() and not (sel_mod.ALL in selection.synthesize):
        raise GczInputError("nothing to preserve: the selection covers no pixel of the image "
                            "(use --synthesize all to synthesize everything)")
    model = zoo.load_model(entry, device)
    with torch.no_grad():
        symbols = model.encode_symbols(_torch_image(padded).to(device))[0].cpu().numpy()
    code = payload_mod.code_latent(symbols, entry.arch.levels, heat, context)
    gcz = container.GczFile(
        width=image.width, height=image.height, model_name=entry.name, model_hash=entry.hash_prefix,
        channels=entry.arch.latent_channels, levels=entry.arch.levels, downsampling=d,
        tables=code.tables, payload=code.payload, context_prior=code.context_prior,
        selective=container.SelectiveData(coding.encode_heatmap(heat), cell, classes, vec.background,
                                          len(vec.regions), coding.encode_regions(vec)))
    return container.write(gcz)


def read_parts(gcz: container.GczFile, max_pixels: int | None = None) -> SelectiveParts:
    """Decode the heatmap and the label map of an SC file (integer only, no network).

    The declared image is checked against the pixel limit (``max_pixels`` or the
    default) first: both maps' decoding work grows with it.
    """
    sel = gcz.selective
    if sel is None:
        raise GczInputError("not a selectively compressed file (no HEATMAP/LABELS sections)")
    _, h, w = gcz.latent_shape
    limits.check_pixels(gcz.width, gcz.height, max_pixels, "declared image")
    heat = coding.decode_heatmap(sel.heatmap_code, h, w)
    rows, cols = sel.label_grid(gcz.height, gcz.width)
    labels = coding.decode_regions(sel.regions_code, cols, rows, sel.cell, sel.classes, sel.background,
                                   sel.regions)
    return SelectiveParts(heat, labels, vector.rasterize(labels))


def decode_symbols(gcz: container.GczFile, heat: np.ndarray) -> np.ndarray:
    """Full latent symbols (C, h, w): the coded ones where ``heat`` is 1, the centre level elsewhere."""
    return payload_mod.decode_latent(gcz.payload, gcz.tables, gcz.latent_shape, gcz.context_prior,
                                     heat.astype(bool))


def decompress_selective(gcz: container.GczFile, entry: zoo.ModelEntry, device: str = "cpu",
                         max_pixels: int | None = None) -> np.ndarray:
    """Decode an SC file with its model: (H, W, 3) uint8 (``max_pixels``: see :func:`read_parts`)."""
    import torch

    if not entry.arch.selective or entry.arch.downsampling != gcz.downsampling:
        raise GczInputError(f"model {entry.name} cannot decode a selectively compressed file")
    if (entry.arch.latent_channels, entry.arch.levels) != (gcz.channels, gcz.levels):
        raise GczInputError(f"model {entry.name} does not match the file's latent description "
                            f"(C = {gcz.channels}, L = {gcz.levels}; the model has C = {entry.arch.latent_channels}, "
                            f"L = {entry.arch.levels})")
    if gcz.selective is not None and gcz.selective.classes != entry.arch.selective_classes:
        raise GczFormatError(f"file's label map has {gcz.selective.classes} classes, "
                             f"model {entry.name} {entry.arch.selective_classes}")
    limits.check_pixels(gcz.width, gcz.height, max_pixels, "declared image")
    limits.check_selective_pixels(gcz.width, gcz.height, max_pixels, "declared selective image")
    parts = read_parts(gcz, max_pixels)
    symbols = decode_symbols(gcz, parts.heatmap)
    pixel_labels = labelmaps.to_pixels(parts.grid, parts.labels.cell)
    model = zoo.load_model(entry, device)
    with torch.no_grad():
        out = model.decode_symbols(torch.from_numpy(symbols)[None].to(device),
                                   torch.from_numpy(parts.heatmap)[None].to(device),
                                   torch.from_numpy(pixel_labels.astype(np.int64))[None].to(device))
    pixels = ((out[0].permute(1, 2, 0).cpu().numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    return pixels[:gcz.height, :gcz.width]
