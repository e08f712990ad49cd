"""Selective compression end to end with a tiny SC model: the library API."""
from __future__ import annotations

import numpy as np
import pytest

import gcodec
from gcodec import container
from gcodec.errors import GczError, GczInputError
from gcodec.selective import Selection, heatmap_png, label_svg, person, read_parts, sc_codec

import reference_decoder
from conftest import SC_MODEL, photo_like


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return photo_like(100, 140)


def test_round_trip_box(tiny_weights, photo):
    data = gcodec.compress(photo, selection=Selection(boxes=((10, 20, 40, 30),)))
    gcz = container.read(data)
    assert gcz.model_name == SC_MODEL and gcz.downsampling == 8 and gcz.selective is not None
    parts = read_parts(gcz)
    assert parts.heatmap.shape == (14, 18)  # padded 112 x 144 at 8 px
    assert parts.heatmap.sum() == 6 * 5 and parts.heatmap[3:7, 1:6].all()
    out = gcodec.decompress(data)
    assert out.size == (140, 100)
    assert np.array_equal(np.asarray(gcodec.decompress(data)), np.asarray(out))  # deterministic
    header, symbols = reference_decoder.decode_symbols(data)
    assert np.array_equal(np.array(symbols).reshape(gcz.latent_shape), sc_codec.decode_symbols(gcz, parts.heatmap))


def test_without_a_selection_files_are_plain_gc_byte_for_byte(tiny_weights, photo):
    plain = gcodec.compress(photo)
    assert gcodec.compress(photo, selection=Selection()) == plain
    assert container.read(plain).selective is None and container.read(plain).model_name == "gcz-c4"


def test_bytes_grow_with_the_preserved_area(tiny_weights, photo):
    sizes = []
    for frac in (0.0, 0.25, 0.5, 1.0):
        if frac == 0:
            sel = Selection(synthesize=("all",))
        else:
            sel = Selection(boxes=((0, 0, max(1, int(140 * frac)), 100),))
        sizes.append(len(gcodec.compress(photo, selection=sel)))
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    everything = gcodec.compress(photo, selection=Selection(preserve=("all",)))
    heat = read_parts(container.read(everything)).heatmap
    assert heat[:13].all() and not heat[13].any()  # 100 rows fill 13 blocks; the 14th is padding


def test_classes_user_labels_and_cells(tiny_weights, photo):
    labels = np.zeros((100, 140), np.uint8)
    labels[:, 70:] = 4
    data = gcodec.compress(photo, selection=Selection(preserve=(4,)), labels=labels, label_cell=1)
    gcz = container.read(data)
    parts = read_parts(gcz)
    assert gcz.selective.cell == 1 and np.array_equal(parts.grid[:100, :140], labels)
    assert parts.heatmap[:13, 9:18].all() and not parts.heatmap[:, :8].any()
    coarse = gcodec.compress(photo, selection=Selection(preserve=(4,)), labels=labels, label_cell=16)
    assert container.read(coarse).selective.cell == 16


def test_errors(tiny_weights, photo):
    with pytest.raises(GczInputError, match="nothing to preserve"):
        gcodec.compress(photo, selection=Selection(preserve=(11,)), labels=np.zeros((100, 140), np.uint8))
    with pytest.raises(GczInputError, match="outside"):
        gcodec.compress(photo, selection=Selection(boxes=((130, 0, 20, 10),)))
    with pytest.raises(GczInputError, match="mask is 3x3"):
        gcodec.compress(photo, selection=Selection(mask=np.ones((3, 3), bool)))
    with pytest.raises(GczInputError, match="only used with a selection"):
        gcodec.compress(photo, labels=np.zeros((100, 140), np.uint8))
    with pytest.raises(GczInputError, match="not a selective"):
        gcodec.compress(photo, model="gcz-c8", selection=Selection(preserve=("all",)))
    with pytest.raises(GczInputError, match="selective-compression model"):
        gcodec.compress(photo, model=SC_MODEL)
    with pytest.raises(GczInputError, match="label-cell"):
        gcodec.compress(photo, selection=Selection(preserve=("all",)), label_cell=3)
    data = gcodec.compress(photo, selection=Selection(preserve=("all",)))
    with pytest.raises(GczError, match="realism"):
        gcodec.decompress(data, realism=0.5)


def test_person_selection(tiny_weights, photo, monkeypatch):
    if not person.available():
        with pytest.raises(GczInputError, match=r"gcz\[person\]"):
            gcodec.compress(photo, selection=Selection(preserve=("person",)))
    mask = np.zeros((100, 140), bool)
    mask[30:60, 50:80] = True
    monkeypatch.setattr(person, "person_mask", lambda pixels: mask)
    data = gcodec.compress(photo, selection=Selection(preserve=("person",)))
    heat = read_parts(container.read(data)).heatmap
    assert heat[3:8, 6:10].all() and heat.sum() == 5 * 4  # rows 30..59, columns 50..79 touch 5 x 4 blocks


def test_svg_and_heatmap_exports(tiny_weights, photo):
    import io
    import xml.etree.ElementTree as ET

    from PIL import Image

    gcz = container.read(gcodec.compress(photo, selection=Selection(boxes=((0, 0, 16, 16),))))
    root = ET.fromstring(label_svg(gcz))
    assert root.get("width") == "140" and root.get("height") == "100"
    png = Image.open(io.BytesIO(heatmap_png(gcz)))
    assert png.size == (140, 100) and np.asarray(png)[:16, :16].min() == 255 and np.asarray(png)[50:, 50:].max() == 0


def test_channels_choose_the_selective_model(tiny_weights, photo):
    with pytest.raises(GczInputError, match="no selective-compression model with C = 4"):
        gcodec.compress(photo, channels=4, selection=Selection(preserve=("all",)))
    data = gcodec.compress(photo, channels=8, selection=Selection(preserve=("all",)))
    assert container.read(data).model_name == SC_MODEL


def test_the_callers_pixel_limit_reaches_the_selective_decoder(tiny_weights, photo, monkeypatch):
    from gcodec.errors import GczLimitError

    data = gcodec.compress(photo, selection=Selection(boxes=((0, 0, 20, 20),)))
    with pytest.raises(GczLimitError):
        gcodec.decompress(data, max_pixels=1000)
    monkeypatch.setenv("GCZ_MAX_PIXELS", "1000")  # a lower default no longer overrides an explicit higher limit
    assert gcodec.decompress(data, max_pixels=10 ** 6).size == (140, 100)
    with pytest.raises(GczLimitError):
        read_parts(container.read(data))
