"""Label maps as polygons: tracing, the integer even-odd rasterisation, SVG."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from gcodec.selective import vector


def _check_loops(labels: vector.VectorLabels) -> None:
    for region in labels.regions:
        for (x, y), moves in region.loops:
            assert len(moves) % 2 == 0 and len(moves) >= 4 and all(moves)
            assert sum(moves[0::2]) == 0 and sum(moves[1::2]) == 0  # closed
            for px, py in vector.loop_vertices(((x, y), moves)):
                assert 0 <= px <= labels.width and 0 <= py <= labels.height


@pytest.mark.parametrize("seed", range(40))
def test_random_grids_round_trip_exactly(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 14, size=2)
    grid = rng.integers(0, rng.integers(1, 5), size=(h, w)).astype(np.uint8)
    labels = vector.trace(grid, 5, 8)
    _check_loops(labels)
    assert np.array_equal(vector.rasterize(labels), grid)


def test_holes_and_corner_touching_regions():
    grid = np.zeros((9, 9), np.uint8)
    grid[1:6, 1:6] = 1
    grid[2:5, 2:5] = 0        # a hole of background
    grid[3, 3] = 2            # an island inside the hole
    grid[7, 7] = grid[8, 8] = 3  # diagonal neighbours: two regions meeting at a corner (a saddle)
    labels = vector.trace(grid, 4, 4)
    assert labels.background == 0
    ring = [r for r in labels.regions if r.label == 1]
    assert len(ring) == 1 and len(ring[0].loops) == 2  # outline and hole
    assert sum(r.label == 3 for r in labels.regions) == 2
    assert np.array_equal(vector.rasterize(labels), grid)


def test_saddle_inside_one_region():
    grid = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], np.uint8)
    grid = np.kron(grid, np.ones((1, 1), np.uint8))
    labels = vector.trace(grid, 2, 1)
    assert np.array_equal(vector.rasterize(labels), grid)


def test_uniform_grid_has_no_regions():
    labels = vector.trace(np.full((4, 6), 7, np.uint8), 9, 8)
    assert labels.regions == () and labels.background == 7
    assert np.array_equal(vector.rasterize(labels), np.full((4, 6), 7))


def test_svg_is_well_formed_and_covers_the_image():
    grid = np.zeros((6, 8), np.uint8)
    grid[1:4, 2:7] = 2
    grid[2, 3] = 1
    svg = vector.to_svg(vector.trace(grid, 3, 8), image_width=60, image_height=44)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and root.get("width") == "60" and root.get("height") == "44"
    paths = root.findall("{http://www.w3.org/2000/svg}path")
    assert len(paths) == 2 and all(p.get("fill-rule") == "evenodd" for p in paths)
    assert paths[0].get("d").startswith("M16 8h40")


def test_palette_is_distinct():
    pal = vector.palette(34)
    assert len({tuple(c) for c in pal}) == 34


def test_hostile_maps_cannot_ask_for_unbounded_rasterising():
    from gcodec.errors import GczFormatError

    whole = (((0, 0), (50, 40, -50, -40)),)  # a loop around the whole 50 x 40 grid: 2000 cells of work
    labels = vector.VectorLabels(50, 40, 8, 2, 0, tuple(vector.Region(1, whole) for _ in range(65)))
    with pytest.raises(GczFormatError, match="too complex"):
        vector.rasterize(labels)
    ok = vector.VectorLabels(50, 40, 8, 2, 0, tuple(vector.Region(1, whole) for _ in range(3)))
    assert vector.rasterize(ok).all() and vector.raster_work(ok) == 3 * 2000
