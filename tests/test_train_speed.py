"""gcz train-bench: the throughput table (its numbers are measurements, so only their shape is tested)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gcodec.cli import main
from gcodec.train.speed import CPU_SETUPS, CUDA_SETUPS, StepSetup, bench_training


def test_bench_training_writes_a_row_per_setup(tmp_path):
    setups = (StepSetup("tiny rd", arch="tiny", channels=2, batch_size=1, crop=32, gan=False, perceptual=False),
              StepSetup("tiny gan", arch="tiny", channels=2, batch_size=2, crop=32, perceptual=False,
                        freeze_encoder=True))
    result = bench_training(tmp_path, steps=2, warmup=1, threads=1, setups=setups)
    rows = result["rows"]
    assert [r["label"] for r in rows] == ["tiny rd", "tiny gan"]
    for r in rows:
        assert r["ms_per_step"] > 0 and r["iterations_per_hour"] > 0
        assert r["megapixels_per_s"] == pytest.approx(r["batch_size"] * r["crop"] ** 2
                                                      * r["iterations_per_hour"] / 3600 / 1e6, rel=0.02)
    assert json.loads((tmp_path / "train_speed.json").read_text())["rows"] == rows
    md = (tmp_path / "train_speed.md").read_text()
    assert "| tiny gan | tiny C=2 | 2 x 32² |" in md


def test_default_setups_match_the_recipes():
    assert any(s.disc == "projected" for s in CPU_SETUPS) and any(s.disc == "projected" for s in CUDA_SETUPS)
    gpu = CUDA_SETUPS[0]
    assert (gpu.batch_size, gpu.crop, gpu.bf16, gpu.arch) == (32, 256, True, "cpu")  # make train-gpu


def test_cli_refuses_bad_arguments(tmp_path):
    res = CliRunner().invoke(main, ["train-bench", "--out", str(tmp_path), "--steps", "0"])
    assert res.exit_code != 0 and "--steps" in res.output and "Traceback" not in res.output
