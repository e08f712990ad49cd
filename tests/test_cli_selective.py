"""The command line of selective compression: flags, info exports, one-line errors, nothing written."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

from conftest import SC_MODEL, photo_like
from test_cli import assert_clean_error, gcz


def _photo(tmp_path, h=80, w=112):
    path = tmp_path / "p.png"
    Image.fromarray(photo_like(h, w)).save(path)
    return path


def test_box_compress_info_exports_and_decompress(tiny_weights, tmp_path):
    photo = _photo(tmp_path)
    out = tmp_path / "p.gcz"
    r = gcz("compress", str(photo), "--preserve-box", "8,8,40,24", "--preserve-box", "60,40,20,20", "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["model"] == SC_MODEL and rec["bytes"] == out.stat().st_size
    assert 0 < rec["preserved_fraction"] < 0.3 and rec["label_bytes"] > 3
    piped = gcz("compress", "-", "-o", "-", "--preserve-box", "8,8,40,24", "--preserve-box", "60,40,20,20",
                stdin=photo.read_bytes())
    assert piped.returncode == 0 and piped.stdout == out.read_bytes()
    svg, heat = tmp_path / "labels.svg", tmp_path / "heat.png"
    r = gcz("info", str(out), "--json", "--labels-svg", str(svg), "--heatmap", str(heat))
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    sel = info["selective"]
    assert sel["label_cell"] == 8 and sel["label_classes"] == 12 and sel["label_bytes"] > 3
    assert sel["preserved_positions"] == 5 * 3 + 3 * 3 and sel["latent_positions"] == 10 * 14
    assert info["bpp_bound"] > 0.29  # C = 8 at 1/8 resolution
    assert ET.parse(svg).getroot().get("width") == "112"
    assert Image.open(heat).size == (112, 80)
    # exports are not overwritten without --force
    assert_clean_error(gcz("info", str(out), "--heatmap", str(heat)))
    assert gcz("info", str(out), "--heatmap", str(heat), "--force").returncode == 0
    r = gcz("decompress", str(out), "-o", str(tmp_path / "back.png"))
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "back.png").size == (112, 80)


def test_mask_and_labels_flags(tiny_weights, tmp_path):
    photo = _photo(tmp_path)
    mask = np.zeros((80, 112), np.uint8)
    mask[10:30, 10:50] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    r = gcz("compress", str(photo), "--preserve-mask", str(tmp_path / "mask.png"), "-o", str(tmp_path / "m.gcz"))
    assert r.returncode == 0, r.stderr
    labels = np.zeros((80, 112), np.uint8)
    labels[40:] = 3
    Image.fromarray(labels).save(tmp_path / "labels.png")
    r = gcz("compress", str(photo), "--labels", str(tmp_path / "labels.png"), "--synthesize", "3",
            "--label-cell", "4", "-o", str(tmp_path / "l.gcz"))
    assert r.returncode == 0, r.stderr
    info = json.loads(gcz("info", str(tmp_path / "l.gcz"), "--json").stdout)
    assert info["selective"]["label_cell"] == 4 and info["selective"]["preserved_fraction"] < 0.6


def test_plain_compress_is_unchanged(tiny_weights, tmp_path):
    photo = _photo(tmp_path)
    r = gcz("compress", str(photo), "-o", "-")
    assert r.returncode == 0
    assert json.loads(gcz("info", "-", "--json", stdin=r.stdout).stdout)["downsampling"] == 16


def test_bad_selections_are_one_line_errors_and_write_nothing(tiny_weights, tmp_path):
    photo = _photo(tmp_path)
    out = tmp_path / "x.gcz"
    bad_mask = tmp_path / "small.png"
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(bad_mask)
    rgb_labels = tmp_path / "rgb.png"
    Image.fromarray(photo_like(80, 112)).save(rgb_labels)
    many = tmp_path / "many.png"
    Image.fromarray(np.full((80, 112), 40, np.uint8)).save(many)
    cases = [
        ["--preserve-box", "100,70,40,40"],               # outside the image
        ["--preserve-box", "1,2,3"],                      # malformed
        ["--preserve-mask", str(bad_mask)],               # wrong size
        ["--preserve-mask", str(tmp_path / "missing.png")],
        ["--preserve", "sky"],                            # unknown class token
        ["--preserve", "40"],                             # class the model lacks
        ["--preserve", "3", "--synthesize", "4"],         # exclusive
        ["--labels", str(many), "--preserve", "3"],       # too many classes
        ["--labels", str(rgb_labels), "--preserve", "3"],  # colour label map
        ["--labels", str(tmp_path / "nope.png"), "--preserve", "3"],
        ["--labels", str(many)],                          # labels without a selection
        ["-m", "gcz-c4", "--preserve", "all"],            # not an SC model
        ["-m", SC_MODEL],                                 # SC model without a selection
    ]
    for extra in cases:
        r = gcz("compress", str(photo), "-o", str(out), *extra)
        assert_clean_error(r)
        assert not out.exists(), extra
    plain = tmp_path / "plain.gcz"
    assert gcz("compress", str(photo), "-o", str(plain)).returncode == 0
    assert_clean_error(gcz("info", str(plain), "--labels-svg", str(tmp_path / "l.svg")))
    assert not (tmp_path / "l.svg").exists()


def test_damaged_label_section_is_a_one_line_error(tiny_weights, tmp_path):
    import struct
    import zlib

    from gcodec import container

    photo = _photo(tmp_path)
    good = tmp_path / "g.gcz"
    assert gcz("compress", str(photo), "--preserve-box", "0,0,30,30", "-o", str(good)).returncode == 0
    data = good.read_bytes()
    out = bytearray(data[:5])
    for sec in container.read_sections(data):
        body = sec.body
        if sec.type == container.SEC_LABELS:
            body = body[:3] + container.write_uleb128(10 ** 5) + body[4:]  # more regions than cells
        out += container._section(sec.type, body, sec.critical)
    bad = tmp_path / "bad.gcz"
    bad.write_bytes(bytes(out) + struct.pack("<I", zlib.crc32(bytes(out))))
    for command in (["decompress", str(bad), "-o", str(tmp_path / "bad.png")], ["info", str(bad)]):
        assert_clean_error(gcz(*command))
    assert not (tmp_path / "bad.png").exists()


def test_labels_show_and_fit(tmp_path):
    photo = _photo(tmp_path, 60, 90)
    r = gcz("labels", "show", str(photo), "-o", str(tmp_path / "l.png"), "--svg", str(tmp_path / "l.svg"))
    assert r.returncode == 0, r.stderr
    shares = json.loads(r.stdout)["classes"]
    assert abs(sum(shares.values()) - 1) < 1e-3 and all(0 <= int(k) < 12 for k in shares)
    assert Image.open(tmp_path / "l.png").size == (90, 60)
    assert ET.parse(tmp_path / "l.svg").getroot().get("height") == "60"
    assert_clean_error(gcz("labels", "show", str(photo), "-o", str(tmp_path / "l.png")))  # exists
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(photo_like(64, 64, seed=i)).save(folder / f"{i}.png")
    r = gcz("labels", "fit", str(folder), "--classes", "3", "-o", str(tmp_path / "book.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "book.json").read_text())["format"] == "gcz-codebook-1"
    assert_clean_error(gcz("labels", "fit", str(tmp_path / "empty"), "-o", str(tmp_path / "b2.json")))
