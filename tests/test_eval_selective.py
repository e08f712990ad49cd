"""gcz sweep selective on tiny models: bytes versus area, the box measurements, crops, markdown."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from gcodec.eval import selective_bench

from conftest import photo_like
from test_cli import gcz


def test_centred_box_and_seams():
    assert selective_bench.centred_box(100, 60, 0.25) == (25, 15, 50, 30)
    flat = np.zeros((40, 40, 3), np.uint8)
    flat[10:30, 10:30] = 100
    assert selective_bench.seam_jump(flat, (10, 10, 20, 20)) == 100
    assert selective_bench.interior_jump(flat, (10, 10, 20, 20)) == 0


def test_sweep_writes_tables_and_crops(tiny_weights, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(photo_like(72, 100, seed=i)).save(folder / f"im{i}.png")
    out = tmp_path / "out"
    r = gcz("sweep", "selective", str(folder), "--out", str(out), "--areas", "0,0.25,1")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    sizes = [summary["areas"][k]["bytes"] for k in ("0.0", "0.25", "1.0")]
    assert sizes == sorted(sizes) and summary["areas"]["1.0"]["saving_vs_all"] == 0
    assert summary["areas"]["0.0"]["preserved_fraction"] == 0
    assert set(summary["inside_box"]) == {"sc_psnr", "gc_psnr", "sc_ms_ssim", "gc_ms_ssim"}
    assert "| 25% |" in (out / "results.md").read_text()
    assert Image.open(out / "strips" / "im0.png").size == (5 * 100 + 4 * 4, 72)
    for method in ("original", "sc", "gc"):
        assert sorted(p.name for p in (out / "crops" / method).iterdir()) == ["im0.png", "im1.png"]
    assert gcz("sweep", "selective", str(folder), "--out", str(out), "--areas", "2").returncode != 0
