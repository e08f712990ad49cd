"""Training selective compression: heatmap modes, masked distortion, warm start from GC, publish."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gcodec import zoo
from gcodec.models import GCModel, named_config
from gcodec.train import selective as sc_train
from gcodec.train.data import Sample
from gcodec.train.loop import TrainConfig, Trainer

from conftest import photo_like
from test_train import config


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sc-imgs")
    for i in range(3):
        Image.fromarray(photo_like(72 + 8 * i, 96, seed=i)).save(root / f"{i}.png")
    return root


def _config(tmp_path: Path, folder: Path, **kw) -> TrainConfig:
    """test_train's tiny run, as an SC model at C = 8."""
    return config(tmp_path, folder, **{"mode": "sc", "channels": 8, **kw})


def test_heatmap_modes():
    labels = np.zeros((64, 64), np.uint8)
    labels[:, 32:] = 1
    rng = random.Random(0)
    maps = [sc_train.draw_heatmap(labels, rng, 0.5) for _ in range(200)]
    assert all(m.shape == (8, 8) for m in maps)
    fractions = [m.mean() for m in maps]
    assert any(f == 1.0 for f in fractions) and any(0 < f < 1 for f in fractions)
    # instance mode keeps whole regions: some maps are exactly one half
    assert any(np.array_equal(m, (labels[4::8, 4::8] == 1).astype(np.float32)) for m in maps)
    mask = sc_train.pixel_mask(torch.from_numpy(maps[0])[None, None])
    assert mask.shape == (1, 1, 64, 64)


def test_auto_labels_attach_to_samples():
    from gcodec.selective import autolabel

    s = Sample(photo_like(50, 70))
    sc_train.attach_auto_labels([s], autolabel.load_codebook())
    assert s.pixels.shape == (48, 64, 3) and s.labels.shape == (48, 64) and s.labels.max() < 12


def test_sc_training_runs_resumes_and_masks_the_distortion(tmp_path, folder):
    trainer = Trainer(_config(tmp_path, folder), status=lambda s: None)
    assert trainer.arch.selective_classes == 12 and trainer.arch.downsampling == 8
    logs = trainer.step()
    assert set(logs) >= {"mse", "d", "g_adv", "fm", "loss"}
    summary = trainer.run()
    assert summary["iteration"] == 3
    resumed = Trainer(_config(tmp_path, folder, iterations=4), status=lambda s: None)
    assert resumed.iteration == 3 and resumed.run()["iteration"] == 4


def test_warm_start_from_a_gc_model(tmp_path, folder, tiny_weights):
    trainer = Trainer(_config(tmp_path, folder, init_from="gcz-c8", arch="tiny"), status=lambda s: None)
    gc = zoo.load_model(zoo.find_model("gcz-c8"))
    assert torch.equal(trainer.model.encoder[0][1].weight, gc.encoder.net[0][1].weight)
    for ours, theirs in zip(trainer.model.generator.net[1:].parameters(), gc.generator.net[1:].parameters()):
        assert torch.equal(ours, theirs)  # G after its first convolution
    assert trainer.model.generator.net[0][1].weight.shape[1] != gc.generator.net[0][1].weight.shape[1]


def test_publish_an_sc_checkpoint(tmp_path, folder):
    from gcodec.train.publish import publish_checkpoint

    trainer = Trainer(_config(tmp_path, folder, iterations=1), status=lambda s: None)
    trainer.run()
    weights = tmp_path / "weights"
    entry = publish_checkpoint(tmp_path / "run" / "checkpoint.pt", "gcz-sc-c8", weights, "test photos")
    assert entry["training"]["mode"] == "sc"
    model = zoo.read_manifest(weights)[0]
    assert model.arch.selective_classes == 12 and model.bpp_bound == pytest.approx(8 * np.log2(5) / 64)
    import json
    assert json.loads((weights / "manifest.json").read_text())["defaults"] == {"sc8": "gcz-sc-c8"}
    assert type(zoo.load_model(model)).__name__ == "SCModel"


def test_gc_arch_dicts_are_unchanged():
    assert "selective_classes" not in named_config("cpu", 4).to_dict()
    assert GCModel(named_config("tiny", 2)).config.downsampling == 16
