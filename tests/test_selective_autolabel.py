"""Automatic label maps: cell features, the k-means codebook, cleaning, the shipped codebook."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gcodec import zoo
from gcodec.errors import GczModelError
from gcodec.selective import autolabel, regions


def _scene(seed: int = 0) -> np.ndarray:
    """Sky over textured grass over flat water: three obviously different regions."""
    rng = np.random.default_rng(seed)
    img = np.zeros((96, 128, 3), np.uint8)
    img[:32] = (135, 185, 235)
    img[32:64] = np.clip(rng.normal(0, 40, (32, 128, 1)) + (60, 130, 40), 0, 255)
    img[64:] = (20, 40, 90)
    return img


def test_features_shape_and_lab():
    feats = autolabel.cell_features(_scene(), 8)
    assert feats.shape == (12, 16, len(autolabel.FEATURE_NAMES))
    assert abs(autolabel.srgb_to_lab(np.array([[255, 255, 255]], np.uint8))[0, 0] - 100) < 0.1
    with pytest.raises(ValueError):
        autolabel.cell_features(np.zeros((10, 16, 3), np.uint8), 8)


def test_fit_codebook_is_deterministic_and_separates_regions():
    images = [_scene(s) for s in range(3)]
    a = autolabel.fit_codebook(images, classes=3, iterations=10)
    b = autolabel.fit_codebook(images, classes=3, iterations=10)
    assert a.to_json() == b.to_json() and a.sha256 == b.sha256
    grid = autolabel.label_cells(_scene(5), a, min_cells=2)
    sky, grass, water = grid[:4], grid[4:8], grid[8:]
    assert len({int(np.bincount(part.ravel()).argmax()) for part in (sky, grass, water)}) == 3
    assert (sky == sky[0, 0]).mean() > 0.9


def test_codebook_json_round_trip_and_rejects():
    book = autolabel.fit_codebook([_scene()], classes=2, iterations=3)
    again = autolabel.Codebook.from_json(book.to_json())
    assert np.allclose(again.centers, book.centers) and again.cell == book.cell
    doc = json.loads(book.to_json())
    doc["centers"] = [[0.0]]
    with pytest.raises(ValueError):
        autolabel.Codebook.from_json(json.dumps(doc))
    with pytest.raises(ValueError):
        autolabel.Codebook.from_json('{"format": "other"}')


def test_labels_are_cleaned_into_large_regions():
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 255, (64, 64, 3)).astype(np.uint8)
    book = autolabel.fit_codebook([noisy], classes=6, iterations=5)
    grid = autolabel.label_cells(noisy, book, min_cells=4)
    ids, count = regions.components(grid)
    assert np.bincount(ids.ravel()).min() >= 4 or count == 1


def test_shipped_codebook_is_verified(tmp_path, monkeypatch):
    book = autolabel.load_codebook()
    entry = zoo.labeller_entry()
    assert book.classes == entry.info["classes"] and book.cell == entry.info["cell"]
    # a tampered copy is refused
    bad = tmp_path / entry.path.name
    bad.write_text(entry.path.read_text().replace("0", "1", 1))
    zoo.register_labeller(tmp_path, entry.name, bad.name, entry.sha256, entry.info)
    monkeypatch.setenv("GCZ_WEIGHTS", str(tmp_path))
    with pytest.raises(GczModelError, match="checksum"):
        autolabel.load_codebook()
