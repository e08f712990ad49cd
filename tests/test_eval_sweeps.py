"""Knob measurements (gcodec.eval.sweeps) and their cost benchmark (gcodec.eval.knob_bench), on tiny models."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from gcodec.eval import knob_bench, sweeps

from conftest import HEADED_MODEL, STOCHASTIC_MODEL, photo_like


@pytest.fixture
def images(tmp_path):
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"p{i}.png")
        Image.fromarray(photo_like(96, 128, seed=i)).save(paths[-1])
    return paths


def test_realism_sweep(tiny_weights, images, tmp_path):
    out = tmp_path / "r"
    summary = sweeps.realism_sweep(images, HEADED_MODEL, [0.0, 0.5, 1.0], out, max_side=None, kid=False)
    assert [r["realism"] for r in summary["rows"]] == [0.0, 0.5, 1.0]
    assert all(r["psnr"] > 0 and 0 < r["ms_ssim"] <= 1 for r in summary["rows"])
    assert json.loads((out / "realism.json").read_text())["images"] == 2
    assert Image.open(out / "realism_strip.png").size == (4 * 96 + 3 * sweeps.GAP, 96)
    for method in ("original", "realism-0", "realism-0.5", "realism-1"):
        assert sorted(p.name for p in (out / "crops" / method).iterdir()) == ["p0.png", "p1.png"]


def test_seed_spread(tiny_weights, images, tmp_path):
    stochastic = sweeps.seed_spread(images, STOCHASTIC_MODEL, 3, tmp_path, max_side=None)
    assert stochastic["stochastic"] and stochastic["pixel_variance"] > 0
    assert (tmp_path / f"seeds_strip-{STOCHASTIC_MODEL}.png").is_file()
    fixed = sweeps.seed_spread(images, "gcz-c8", 3, tmp_path, max_side=None)
    assert fixed["pixel_variance"] == 0.0  # a model without noise ignores the seed


def test_sample_quality(tiny_weights, images, tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    summary = sweeps.sample_quality(images, HEADED_MODEL, 2, (128, 96), tmp_path, max_side=None, patch=64)
    assert [r["method"] for r in summary["rows"]] == ["sampler", "uniform"]
    assert all(r["kid"] == r["kid"] for r in summary["rows"])  # finite numbers
    assert (tmp_path / "samples_sheet.png").is_file()


def test_knob_bench_rows(tiny_weights, tmp_path):
    result = knob_bench.bench_knobs(tmp_path, size=(64, 48), repeats=1, backends=("onnxruntime",))
    variants = {(r["model"].split("@")[0], r["variant"]) for r in result["rows"]}
    assert {(HEADED_MODEL, "plain"), (HEADED_MODEL, "realism 0.5"), (STOCHASTIC_MODEL, "seed 7")} <= variants
    assert (tmp_path / "knobs.md").read_text().count("|") > 10
