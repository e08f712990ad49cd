"""Arithmetic coding of vector label maps and heatmaps (format_spec.md sections 3.7, 3.8 and 5.1).

Both streams use the adaptive integer coding of :mod:`gcodec.adaptive`
(format_spec.md 5.1), so every machine decodes the same label map and heatmap.

Every loop of the label map is coded *relative to the previous coordinate*:
its start vertex relative to the previous loop's start, then each run along
the boundary relative to the vertex before it; the last horizontal and
vertical runs are implied (the loop closes).
"""
from __future__ import annotations

import numpy as np

from ..adaptive import Reader, Writer, decode_with, encode_with
from ..errors import GczFormatError
from .vector import Region, VectorLabels

#: Context of a heatmap bit: (left, up, up-left, up-right) neighbours.
HEAT_CONTEXTS = 16


# ------------------------------------------------------------------ label maps
def encode_regions(labels: VectorLabels) -> bytes:
    """The range-coded region stream of a vector label map (classes, loops, runs)."""
    def fill(w: Writer) -> None:
        px = py = 0
        for region in labels.regions:
            w.symbol("class", labels.classes, region.label)
            w.uint("loops", len(region.loops) - 1)
            for (x, y), moves in region.loops:
                w.sint("start.x", x - px)
                w.sint("start.y", y - py)
                px, py = x, y
                w.uint("runs", len(moves) // 2 - 2)
                for i, m in enumerate(moves[:-2]):
                    w.nonzero("run.h" if i % 2 == 0 else "run.v", m)
    return encode_with(fill)


def decode_regions(data: bytes, width: int, height: int, cell: int, classes: int, background: int,
                   count: int) -> VectorLabels:
    """Inverse of :func:`encode_regions`, validating every vertex against the grid.

    The total number of runs is bounded by the number of crack edges a grid
    of that size can have, so a hostile file cannot make decoding run away.
    """
    budget = 2 * (width + 1) * (height + 1) + 4
    if count > width * height:
        raise GczFormatError(f"label section declares {count} regions on a {width}x{height} grid")

    def read(r: Reader) -> VectorLabels:
        nonlocal budget
        px = py = 0
        out = []
        for _ in range(count):
            label = r.symbol("class", classes)
            n_loops = r.uint("loops") + 1
            loops = []
            for _ in range(n_loops):
                x, y = px + r.sint("start.x"), py + r.sint("start.y")
                px, py = x, y
                n_runs = 2 * (r.uint("runs") + 2)
                budget -= n_runs
                if budget < 0:
                    raise GczFormatError("label section has more boundary runs than its grid allows")
                if not (0 <= x <= width and 0 <= y <= height):
                    raise GczFormatError("label polygon vertex outside the grid")
                cx, cy, moves = x, y, []
                for i in range(n_runs - 2):
                    m = r.nonzero("run.h" if i % 2 == 0 else "run.v")
                    if i % 2 == 0:
                        cx += m
                    else:
                        cy += m
                    if not (0 <= cx <= width and 0 <= cy <= height):
                        raise GczFormatError("label polygon vertex outside the grid")
                    moves.append(m)
                if cx == x or cy == y:
                    raise GczFormatError("label polygon does not close with a corner")
                moves += [x - cx, y - cy]
                loops.append(((x, y), tuple(moves)))
            out.append(Region(label, tuple(loops)))
        return VectorLabels(width, height, cell, classes, background, tuple(out))

    return decode_with(data, read, "label")


# ------------------------------------------------------------------ heatmaps
def _context(heat: np.ndarray, y: int, x: int) -> int:
    h, w = heat.shape
    left = heat[y, x - 1] if x else 0
    up = heat[y - 1, x] if y else 0
    ul = heat[y - 1, x - 1] if x and y else 0
    ur = heat[y - 1, x + 1] if y and x + 1 < w else 0
    return int(left) | int(up) << 1 | int(ul) << 2 | int(ur) << 3


def encode_heatmap(heat: np.ndarray) -> bytes:
    """Range-code a 0/1 heatmap (h, w) bit by bit in raster order, each bit in its neighbour context."""
    heat = np.asarray(heat, np.uint8)

    def fill(w: Writer) -> None:
        for y in range(heat.shape[0]):
            for x in range(heat.shape[1]):
                w.symbol(f"heat.{_context(heat, y, x)}", 2, int(heat[y, x]))
    return encode_with(fill)


def decode_heatmap(data: bytes, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`encode_heatmap`: (height, width) bool."""
    def read(r: Reader) -> np.ndarray:
        heat = np.zeros((height, width), np.uint8)
        for y in range(height):
            for x in range(width):
                heat[y, x] = r.symbol(f"heat.{_context(heat, y, x)}", 2)
        return heat.astype(bool)
    return decode_with(data, read, "label")
