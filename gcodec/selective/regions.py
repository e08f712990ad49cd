"""Connected regions of label grids: 4-connected components, majority smoothing, small-region merging.

Pure numpy/Python on small grids (a 768x512 image at 8-px cells is 96x64),
with no SciPy dependency in the codec's import path.
"""
from __future__ import annotations

from collections import deque

import numpy as np


def components(grid: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of equal values: (ids (gh, gw) int32 numbered in raster order, count)."""
    gh, gw = grid.shape
    ids = np.full((gh, gw), -1, np.int32)
    flat = grid.ravel()
    out = ids.ravel()
    count = 0
    for start in range(gh * gw):
        if out[start] >= 0:
            continue
        value = flat[start]
        out[start] = count
        queue = deque([start])
        while queue:
            p = queue.popleft()
            y, x = divmod(p, gw)
            for q, ok in ((p - 1, x > 0), (p + 1, x < gw - 1), (p - gw, y > 0), (p + gw, y < gh - 1)):
                if ok and out[q] < 0 and flat[q] == value:
                    out[q] = count
                    queue.append(q)
        count += 1
    return ids, count


def majority3(grid: np.ndarray, classes: int) -> np.ndarray:
    """3x3 majority vote (ties keep the centre's class when it is among the winners, else the lowest id)."""
    gh, gw = grid.shape
    padded = np.pad(grid, 1, mode="edge")
    votes = np.zeros((classes, gh, gw), np.int16)
    for dy in range(3):
        for dx in range(3):
            win = padded[dy:dy + gh, dx:dx + gw]
            np.add.at(votes, (win.astype(np.intp), *np.indices((gh, gw))), 1)
    best = votes.max(axis=0)
    centre_wins = votes[grid.astype(np.intp), *np.indices((gh, gw))] == best
    return np.where(centre_wins, grid, votes.argmax(axis=0)).astype(grid.dtype)


def clean(grid: np.ndarray, min_cells: int) -> np.ndarray:
    """Merge every region smaller than ``min_cells`` into the neighbouring class it touches most.

    Repeats until no region is below the size (or nothing changes); a region with
    no neighbour (the whole grid) is kept.
    """
    grid = grid.copy()
    for _ in range(8):
        ids, count = components(grid)
        sizes = np.bincount(ids.ravel(), minlength=count)
        small = np.flatnonzero(sizes < min_cells)
        if len(small) == 0:
            break
        changed = False
        for region in small[np.argsort(sizes[small], kind="stable")]:
            mask = ids == region
            if not mask.any():
                continue
            ring = _neighbours(mask) & ~mask
            if not ring.any():
                continue
            values, counts = np.unique(grid[ring], return_counts=True)
            grid[mask] = values[np.argmax(counts)]
            ids[mask] = ids[ring][np.argmax(grid[ring] == values[np.argmax(counts)])]
            changed = True
        if not changed:
            break
    return grid


def _neighbours(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out
