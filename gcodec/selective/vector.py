"""Label maps as vector graphics: region boundaries traced on the cell grid, rasterised by an integer rule.

A label map is a grid (gh, gw) of class ids.  Its *background* class (the
most frequent) is implied; every 4-connected region of another class becomes
a :class:`Region`: the class and the closed boundary loops of the region's
cells (its outline and the outlines of its holes).  Loops run along cell
edges, so they are rectilinear polygons whose vertices lie on the integer
vertex grid (0..gw, 0..gh); each is stored as a start vertex and alternating
horizontal / vertical moves.

Rasterising is exact and integer-only (format_spec.md section 3.8): a cell is
inside a region when an odd number of the region's vertical edges lie at or
to the left of it on its row (the even-odd rule).  Because the loops are all
of a region's crack edges, this gives back exactly the region's cells
whatever the topology (holes, regions touching at corners), so
``rasterize(trace(grid)) == grid`` always holds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import regions

#: A loop: start vertex (x, y) and moves (dx0, dy0, dx1, dy1, ...), horizontal first, all non-zero.
Loop = tuple[tuple[int, int], tuple[int, ...]]


@dataclass(frozen=True)
class Region:
    """One region of a label map: its class and boundary loops."""

    label: int
    loops: tuple[Loop, ...]


@dataclass(frozen=True)
class VectorLabels:
    """A label map as vector graphics on a (height x width) grid of ``cell``-pixel cells."""

    width: int
    height: int
    cell: int
    classes: int
    background: int
    regions: tuple[Region, ...]

    @property
    def edge_count(self) -> int:
        """Number of polygon edges over all loops."""
        return sum(len(moves) for r in self.regions for _, moves in r.loops)


def _directed_edges(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Unit crack edges of a cell set, oriented with the set on their right (x right, y down)."""
    gh, gw = mask.shape
    p = np.pad(mask, 1)
    edges: list[tuple[int, int, int, int]] = []
    # horizontal cracks at vertex row y, between cells (y-1, x) and (y, x)
    below, above = p[1:, 1:-1], p[:-1, 1:-1]
    for y, x in zip(*np.nonzero(below & ~above)):
        edges.append((int(x), int(y), int(x) + 1, int(y)))   # east: cell below on the right
    for y, x in zip(*np.nonzero(above & ~below)):
        edges.append((int(x) + 1, int(y), int(x), int(y)))   # west: cell above on the right
    right, left = p[1:-1, 1:], p[1:-1, :-1]
    for y, x in zip(*np.nonzero(right & ~left)):
        edges.append((int(x), int(y) + 1, int(x), int(y)))   # north: cell to the east on the right
    for y, x in zip(*np.nonzero(left & ~right)):
        edges.append((int(x), int(y), int(x), int(y) + 1))   # south: cell to the west on the right
    return edges


def trace_loops(mask: np.ndarray) -> list[Loop]:
    """All boundary loops of a boolean cell set, as start vertex + alternating runs (horizontal first).

    Every crack edge of the set is used exactly once.  At a vertex where two
    loops touch (cells meeting at a corner) the walk turns right, so loops
    never cross.
    """
    outgoing: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for x0, y0, x1, y1 in _directed_edges(mask):
        outgoing.setdefault((x0, y0), []).append((x1 - x0, y1 - y0))
    loops: list[Loop] = []
    for start in sorted(outgoing, key=lambda v: (v[1], v[0])):
        while outgoing[start]:
            prev = outgoing[start].pop(0)
            steps = [prev]
            x, y = start[0] + prev[0], start[1] + prev[1]
            while (x, y) != start:  # in-degree equals out-degree: the walk can only end at its start
                choices = outgoing[(x, y)]
                d = next(c for c in ((-prev[1], prev[0]), prev, (prev[1], -prev[0])) if c in choices)
                choices.remove(d)
                steps.append(d)
                x, y = x + d[0], y + d[1]
                prev = d
            loops.append(_canonical(start, steps))
    return loops


def _canonical(start: tuple[int, int], steps: list[tuple[int, int]]) -> Loop:
    """Rotate a closed walk to begin at a corner (vertical step, then horizontal) and run-length it."""
    first = next(i for i in range(len(steps)) if steps[i][1] == 0 and steps[i - 1][0] == 0)
    x = start[0] + sum(d[0] for d in steps[:first])
    y = start[1] + sum(d[1] for d in steps[:first])
    runs: list[list[int]] = []
    for dx, dy in steps[first:] + steps[:first]:
        axis = 0 if dy == 0 else 1
        if runs and runs[-1][0] == axis:
            runs[-1][1] += dx + dy
        else:
            runs.append([axis, dx + dy])
    return (x, y), tuple(r[1] for r in runs)


def trace(grid: np.ndarray, classes: int, cell: int) -> VectorLabels:
    """Vectorise a label grid (gh, gw) of ids in 0..classes-1."""
    grid = np.asarray(grid)
    values, counts = np.unique(grid, return_counts=True)
    background = int(values[np.argmax(counts)])
    ids, count = regions.components(grid)
    out = []
    for region in range(count):
        mask = ids == region
        label = int(grid[mask][0])
        if label == background:
            continue
        out.append(Region(label, tuple(trace_loops(mask))))
    return VectorLabels(int(grid.shape[1]), int(grid.shape[0]), cell, classes, background, tuple(out))


def loop_vertices(loop: Loop) -> list[tuple[int, int]]:
    """The vertices of a loop, start first (the start is not repeated at the end)."""
    (x, y), moves = loop
    pts = [(x, y)]
    for i, m in enumerate(moves[:-1]):
        if i % 2 == 0:
            x += m
        else:
            y += m
        pts.append((x, y))
    return pts


#: Rasterising touches each region's bounding box; a decoder refuses maps whose boxes add up to more
#: than this many times the grid (format_spec.md 7), so a small file cannot ask for unbounded work.
MAX_RASTER_WORK = 64


def region_box(loops: tuple[Loop, ...]) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) on the vertex grid of a region's loops."""
    pts = [p for loop in loops for p in loop_vertices(loop)]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def raster_work(labels: VectorLabels) -> int:
    """Cells rasterising touches: the sum of the regions' bounding-box areas."""
    total = 0
    for region in labels.regions:
        x0, y0, x1, y1 = region_box(region.loops)
        total += (x1 - x0) * (y1 - y0)
    return total


def rasterize_region(loops: tuple[Loop, ...], box: tuple[int, int, int, int]) -> np.ndarray:
    """Even-odd fill of a region's loops inside its bounding box: (y1 - y0, x1 - x0) bool."""
    x0, y0, x1, y1 = box
    toggles = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    for (x, y), moves in loops:
        for i, m in enumerate(moves):
            if i % 2 == 0:
                x += m
            else:  # vertical run at column x from row y to y + m
                lo, hi = min(y, y + m), max(y, y + m)
                toggles[lo - y0, x - x0] ^= 1
                toggles[hi - y0, x - x0] ^= 1
                y += m
    rows = np.cumsum(toggles, axis=0, dtype=np.int64) & 1     # vertical edges present per row
    inside = np.cumsum(rows, axis=1, dtype=np.int64) & 1     # parity of edges at or left of each cell
    return inside[:-1, :-1].astype(bool)


def rasterize(labels: VectorLabels) -> np.ndarray:
    """The label grid (height, width) uint8: background, then every region in file order.

    Cells outside a region's bounding box have no edge of it on either side, so
    filling inside the box is exact. Raises GczFormatError when the boxes add up
    to more than :data:`MAX_RASTER_WORK` grids.
    """
    from ..errors import GczFormatError

    if raster_work(labels) > MAX_RASTER_WORK * max(1, labels.width * labels.height):
        raise GczFormatError(f"label map too complex to rasterise (its regions' bounding boxes cover more "
                             f"than {MAX_RASTER_WORK}x the grid)")
    grid = np.full((labels.height, labels.width), labels.background, np.uint8)
    for region in labels.regions:
        x0, y0, x1, y1 = box = region_box(region.loops)
        grid[y0:y1, x0:x1][rasterize_region(region.loops, box)] = region.label
    return grid


def palette(classes: int) -> np.ndarray:
    """A fixed, distinct RGB colour (classes, 3) uint8 per class (golden-angle hues)."""
    import colorsys
    cols = [colorsys.hsv_to_rgb((k * 0.618034) % 1.0, 0.55 + 0.35 * (k % 2), 0.95 - 0.25 * (k % 3 == 2))
            for k in range(classes)]
    return (np.asarray(cols) * 255).round().astype(np.uint8)


def to_svg(labels: VectorLabels, image_width: int | None = None, image_height: int | None = None) -> str:
    """A standalone SVG of the label map: one even-odd path per region, in image pixel units.

    ``image_width`` / ``image_height`` crop the drawing to the image (the grid
    may cover padding beyond it).
    """
    c = labels.cell
    w = image_width or labels.width * c
    h = image_height or labels.height * c
    pal = palette(labels.classes)

    def colour(k: int) -> str:
        return "#%02x%02x%02x" % tuple(int(v) for v in pal[k])

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             f'shape-rendering="crispEdges">',
             f'<title>gcz label map: {labels.classes} classes, {len(labels.regions)} regions, '
             f'{labels.cell}-px cells</title>',
             f'<rect width="{labels.width * c}" height="{labels.height * c}" fill="{colour(labels.background)}">'
             f'<title>class {labels.background} (background)</title></rect>']
    for region in labels.regions:
        d = []
        for (x, y), moves in region.loops:
            seg = [f"M{x * c} {y * c}"]
            seg += [("h" if i % 2 == 0 else "v") + str(m * c) for i, m in enumerate(moves)]
            d.append("".join(seg) + "Z")
        parts.append(f'<path fill="{colour(region.label)}" fill-rule="evenodd" d="{"".join(d)}">'
                     f'<title>class {region.label}</title></path>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
