"""Arithmetic coding of label maps and heatmaps, including damaged and hostile streams."""
from __future__ import annotations

import numpy as np
import pytest

from gcodec.errors import GczFormatError
from gcodec.selective import coding, vector


def _labels(seed: int, h: int = 20, w: int = 30, classes: int = 6) -> vector.VectorLabels:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, classes, size=(h // 4 + 1, w // 4 + 1))
    grid = np.kron(coarse, np.ones((4, 4), np.int64))[:h, :w].astype(np.uint8)
    return vector.trace(grid, classes, 8)


@pytest.mark.parametrize("seed", range(6))
def test_regions_round_trip(seed):
    labels = _labels(seed)
    data = coding.encode_regions(labels)
    back = coding.decode_regions(data, labels.width, labels.height, 8, labels.classes, labels.background,
                                 len(labels.regions))
    assert back == labels


def test_adaptive_coding_beats_a_byte_per_run():
    labels = _labels(0, 64, 96)
    assert len(coding.encode_regions(labels)) < labels.edge_count


@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (40, 60)])
def test_heatmap_round_trip(shape):
    rng = np.random.default_rng(shape[0])
    heat = rng.random(shape) < 0.3
    heat[: shape[0] // 2, : shape[1] // 2] = True
    assert np.array_equal(coding.decode_heatmap(coding.encode_heatmap(heat), *shape), heat)


def test_uniform_heatmaps_are_a_few_bytes():
    for value in (False, True):
        heat = np.full((64, 96), value)
        assert len(coding.encode_heatmap(heat)) < 40


def test_too_many_regions_is_refused_before_decoding():
    with pytest.raises(GczFormatError, match="regions"):
        coding.decode_regions(b"", 4, 4, 8, 3, 0, 17)


@pytest.mark.parametrize("seed", range(20))
def test_garbage_streams_fail_cleanly_or_stay_in_the_grid(seed):
    """Any byte string either decodes to polygons inside the grid or raises GczFormatError (never hangs)."""
    data = np.random.default_rng(seed).integers(0, 256, size=64, dtype=np.uint8).tobytes()
    try:
        labels = coding.decode_regions(data, 12, 9, 8, 5, 0, 6)
    except GczFormatError:
        return
    grid = vector.rasterize(labels)
    assert grid.shape == (9, 12) and grid.max() < 5


def test_runs_beyond_the_grid_are_refused():
    # a square loop larger than the grid
    big = vector.VectorLabels(20, 20, 8, 2, 0, (vector.Region(1, (((0, 0), (20, 20, -20, -20)),)),))
    data = coding.encode_regions(big)
    with pytest.raises(GczFormatError, match="outside the grid"):
        coding.decode_regions(data, 10, 10, 8, 2, 0, 1)

