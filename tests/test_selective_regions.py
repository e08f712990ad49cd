"""Connected regions of label grids."""
from __future__ import annotations

import numpy as np

from gcodec.selective import regions


def test_components_are_four_connected():
    grid = np.array([[1, 0, 1],
                     [0, 1, 0],
                     [1, 1, 0]], np.uint8)
    ids, count = regions.components(grid)
    assert count == 6  # diagonal 1s are separate; the bottom-left 1s join the centre
    assert ids[1, 1] == ids[2, 1] == ids[2, 0]
    assert ids[0, 0] != ids[1, 1]


def test_majority_removes_isolated_cells():
    grid = np.zeros((5, 5), np.uint8)
    grid[2, 2] = 3
    assert not regions.majority3(grid, 4).any()


def test_clean_merges_small_regions_into_their_neighbour():
    grid = np.zeros((10, 10), np.uint8)
    grid[:, 5:] = 1
    grid[2, 2] = 2          # 1 cell inside class 0
    grid[7, 6:8] = 3        # 2 cells inside class 1
    out = regions.clean(grid, min_cells=3)
    assert out[2, 2] == 0 and (out[7, 6:8] == 1).all()
    _, count = regions.components(out)
    assert count == 2


def test_clean_keeps_a_single_region():
    grid = np.full((2, 2), 4, np.uint8)
    assert np.array_equal(regions.clean(grid, 10), grid)
