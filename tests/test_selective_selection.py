"""Selections -> preserved pixels -> heatmaps; user label maps."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gcodec.errors import GczInputError
from gcodec.selective import labelmaps, selection as sel


def test_parse_box_and_classes():
    assert sel.parse_box("1,2,30,40") == (1, 2, 30, 40)
    for bad in ("1,2,3", "a,b,c,d", "0,0,0,5", "-1,0,4,4"):
        with pytest.raises(GczInputError, match="preserve-box"):
            sel.parse_box(bad)
    assert sel.parse_classes("3, Person,all", "--preserve") == (3, "person", "all")
    for bad in ("sky", "300", ","):
        with pytest.raises(GczInputError, match="--preserve"):
            sel.parse_classes(bad, "--preserve")


def test_checks_against_the_image():
    with pytest.raises(GczInputError, match="outside the 64x48 image"):
        sel.check_against_image(sel.Selection(boxes=((60, 0, 10, 10),)), 64, 48, 12)
    with pytest.raises(GczInputError, match="mask is 10x10"):
        sel.check_against_image(sel.Selection(mask=np.zeros((10, 10), bool)), 64, 48, 12)
    with pytest.raises(GczInputError, match="class 12 does not exist"):
        sel.check_against_image(sel.Selection(preserve=(12,)), 64, 48, 12)
    with pytest.raises(GczInputError, match="exclude"):
        sel.check_against_image(sel.Selection(preserve=(1,), synthesize=(2,)), 64, 48, 12)


def test_preserved_pixels_and_heatmap():
    labels = np.zeros((20, 30), np.uint8)
    labels[:, 20:] = 3
    keep = sel.preserved_pixels(sel.Selection(boxes=((0, 0, 5, 5),), preserve=(3,)), labels, 30, 20)
    assert keep[:5, :5].all() and keep[:, 20:].all() and not keep[10, 10]
    synth = sel.preserved_pixels(sel.Selection(synthesize=(3,)), labels, 30, 20)
    assert np.array_equal(synth, labels != 3)
    person = np.zeros((20, 30), bool)
    person[5:7, 5:7] = True
    only_person = sel.preserved_pixels(sel.Selection(preserve=("person",)), labels, 30, 20, person)
    assert np.array_equal(only_person, person)
    heat = sel.heatmap(keep, 4, 4, 8)  # padded 32x32 grid of 8-px blocks
    assert heat.shape == (4, 4) and heat[0, 0] and heat[:3, 2:].all() and not heat[2, 1]
    assert not heat[3].any()  # rows 24..31 are padding below the 20-pixel image
    assert not sel.heatmap(np.zeros((20, 30), bool), 4, 4, 8).any()
    assert sel.Selection().empty and not sel.Selection(preserve=("all",)).empty


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


def test_user_label_maps():
    labels = np.zeros((12, 20), np.uint8)
    labels[:, 10:] = 5
    assert np.array_equal(labelmaps.load_label_image(_png(labels), 20, 12, 6), labels)
    with pytest.raises(GczInputError, match="is 20x12, the image 21x12"):
        labelmaps.load_label_image(_png(labels), 21, 12, 6)
    with pytest.raises(GczInputError, match="class 5"):
        labelmaps.load_label_image(_png(labels), 20, 12, 5)
    with pytest.raises(GczInputError, match="single-channel"):
        labelmaps.load_label_image(_png(np.zeros((12, 20, 3), np.uint8)), 20, 12, 6)
    with pytest.raises(GczInputError, match="not a readable image"):
        labelmaps.load_label_image(b"not an image", 20, 12, 6)
    with pytest.raises(GczInputError, match="2-D"):
        labelmaps.check_label_array(np.zeros((2, 2, 2), np.int64), 2, 2, 3)


def test_grid_majority_and_back():
    pixels = np.zeros((16, 16), np.uint8)
    pixels[:8, :8] = 2
    pixels[0, 8] = 2  # one pixel does not flip its cell
    grid = labelmaps.to_grid(pixels, 8, 3)
    assert grid.tolist() == [[2, 0], [0, 0]]
    assert labelmaps.to_pixels(grid, 8).shape == (16, 16)
    assert labelmaps.pad_labels(pixels[:10, :12], 16, 16).shape == (16, 16)
