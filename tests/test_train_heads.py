"""ORP-head and latent-sampler training (gcodec.train.realism, gcodec.train.sampler) and publish_head."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gcodec
from gcodec import zoo
from gcodec.errors import GczModelError
from gcodec.train.publish import publish_head
from gcodec.models.orp import generator_features
from gcodec.train.realism import HEAD_CHECKPOINT, RealismTrainConfig, load_head_checkpoint, train_head
from gcodec.train.sampler import SAMPLER_CHECKPOINT, SamplerTrainConfig, train_sampler

from conftest import make_tiny_weights, photo_like


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(3):
        Image.fromarray(photo_like(96 + 16 * i, 128, seed=i)).save(root / f"{i}.png")
    return root


def test_realism_head_learns_resumes_and_ships(bare_weights, tmp_path):
    # flat photos far from the random tiny G's grey: the residual to learn is (almost) a constant
    photos = tmp_path / "flat"
    photos.mkdir()
    for i, colour in enumerate([(220, 40, 40), (210, 60, 30)]):
        Image.fromarray(np.full((96, 128, 3), colour, np.uint8)).save(photos / f"{i}.png")
    run = tmp_path / "orp"
    cfg = dict(model="gcz-c8", out_dir=str(run), dataset="folder", data_root=str(photos), crop=32, batch_size=2,
               lr=1e-2, width=4, threads=1, log_every=5)
    first = train_head(RealismTrainConfig(iterations=60, **cfg), status=lambda s: None)
    assert first["iteration"] == 60 and (run / HEAD_CHECKPOINT).is_file()
    assert len((run / "log.csv").read_text().splitlines()) == 1 + 1 + 60 // 5  # header, first step, every 5th
    head, _ = load_head_checkpoint(run / HEAD_CHECKPOINT)
    model = zoo.load_model(zoo.find_model("gcz-c8"))
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(photos / f"{i}.png"))[:96, :128]).permute(2, 0, 1)
                     for i in range(2)]).float() / 127.5 - 1
    with torch.no_grad():
        features, image = generator_features(model.generator, model.quantizer(model.encoder(x)))
        mse_gan = float(torch.mean((image - x) ** 2))
        mse_orp = float(torch.mean((image + head(features, image) - x) ** 2))
    assert mse_orp < 0.5 * mse_gan  # G + R is much closer to the photos than G alone
    again = train_head(RealismTrainConfig(iterations=65, **cfg), status=lambda s: None)
    assert again["session_iterations"] == 5
    record = publish_head(run, bare_weights, "three test photos")
    assert record["kind"] == "realism" and record["training"]["iterations"] == 65
    entry = zoo.find_model("gcz-c8")
    assert entry.supports_realism and entry.heads["realism"].path.is_file()
    data = gcodec.compress(photo_like(48, 64), channels=8, realism=0.0)
    assert not np.array_equal(np.asarray(gcodec.decompress(data)), np.asarray(gcodec.decompress(data, realism=1)))


def test_sampler_trains_resumes_and_ships(bare_weights, photos, tmp_path):
    run = tmp_path / "sampler"
    cfg = dict(model="gcz-c4", out_dir=str(run), dataset="folder", data_root=str(photos), image_side=128,
               crop=4, batch_size=4, critic_steps=2, threads=1, log_every=1)
    train_sampler(SamplerTrainConfig(iterations=3, **cfg), status=lambda s: None)
    assert (run / SAMPLER_CHECKPOINT).is_file() and (run / "codes.pt").is_file()
    codes = torch.load(run / "codes.pt", weights_only=True)
    assert len(codes) == 6 and codes[0].shape[0] == 4  # three photos and their mirrors
    again = train_sampler(SamplerTrainConfig(iterations=4, **cfg), status=lambda s: None)
    assert again["session_iterations"] == 1
    record = publish_head(run, bare_weights, "three test photos")
    assert record["kind"] == "sampler"
    assert zoo.find_model("gcz-c4").has_sampler


def test_publish_head_refuses_other_weights(bare_weights, photos, tmp_path):
    run = tmp_path / "orp"
    train_head(RealismTrainConfig(model="gcz-c8", out_dir=str(run), dataset="folder", data_root=str(photos),
                                  crop=32, batch_size=1, iterations=1, width=4, threads=1), status=lambda s: None)
    other = tmp_path / "other"
    make_tiny_weights(other, seed=5, heads=False)
    with pytest.raises(GczModelError, match="other weights"):
        publish_head(run, other, "x")
    with pytest.raises(GczModelError, match="holds none of"):
        publish_head(tmp_path, bare_weights, "x")


def test_republishing_a_model_keeps_heads_only_for_the_same_weights(bare_weights, tmp_path):
    entry = zoo.find_model("gcz-c4")
    zoo.register_head(bare_weights, "gcz-c4", "realism", "h.pt", "00" * 32, {"features": 1})
    zoo.register_model(bare_weights, "gcz-c4", entry.path.name, entry.sha256, entry.arch)
    assert "heads" in json.loads((bare_weights / "manifest.json").read_text())["models"]["gcz-c4"]
    zoo.register_model(bare_weights, "gcz-c4", entry.path.name, "11" * 32, entry.arch)
    assert "heads" not in json.loads((bare_weights / "manifest.json").read_text())["models"]["gcz-c4"]


def test_install_weights_replaces_only_its_own_stem(tmp_path):
    from gcodec.train.publish import install_weights

    for name in ("gcz-c4-0123abcd.pt", "gcz-c4-realism-89abcdef.pt", "gcz-c4-stochastic-00000000.pt"):
        (tmp_path / name).write_bytes(b"old")
    final, sha = install_weights(tmp_path, "gcz-c4", lambda p: (p.write_bytes(b"new"), "f" * 64)[1])
    assert final.name == "gcz-c4-ffffffff.pt" and final.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gcz-c4-ffffffff.pt", "gcz-c4-realism-89abcdef.pt",
                                                          "gcz-c4-stochastic-00000000.pt"]
