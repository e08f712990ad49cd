"""The amortised encoder (gcodec.train.encoder): its objective, training, resume, and shipping as a head."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gcodec
from gcodec import codec, refine, zoo
from gcodec.imageio import LoadedImage
from gcodec.profile import EncodeProfile
from gcodec.train.encoder import (ENCODER_CHECKPOINT, EncoderJob, EncoderTrainConfig, load_encoder_checkpoint, objective_terms,
                                  train_encoder)
from gcodec.train.publish import publish_head

from conftest import make_tiny_weights, photo_like


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(2):
        Image.fromarray(photo_like(64, 64, seed=i)).save(root / f"{i}.png")
    return root


def _batch(photos: Path) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.array(Image.open(photos / f"{i}.png"))).permute(2, 0, 1)
                        for i in range(2)]).float() / 127.5 - 1


def test_the_objective_is_the_refinements_and_moves_only_the_encoder(bare_weights, photos):
    model = zoo.load_model(zoo.find_model("gcz-c4"))
    features = zoo.load_features()
    x = _batch(photos)
    encoder = torch.nn.Sequential(*model.encoder.net)  # shares the weights
    terms = objective_terms(encoder, model.quantizer, model.generator, features, refine.Objective(), x)
    terms["loss"].backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    with torch.no_grad():
        out = model.generator(model.quantizer(model.encoder(x)))
    mse = float(((out - x) / 2).pow(2).mean())
    assert float(terms["mse"]) == pytest.approx(mse, rel=1e-5)
    # a one-image refinement window scores the same symbols with the same formula
    symbols = model.quantizer.symbols(model.encoder(x[:1]))
    bits = refine.context_bits(symbols, model.quantizer.levels)
    own, _ = refine.local_bits(bits, symbols[0], model.quantizer.levels)
    single = objective_terms(model.encoder, model.quantizer, model.generator, features, refine.Objective(), x[:1])
    with torch.no_grad():
        expected = (model.quantizer.assignment(model.encoder(x[:1]))[0] * own).sum() / (64 * 64)
    assert float(single["bpp"]) == pytest.approx(float(expected), rel=1e-5)


def test_a_step_moves_the_encoder_and_nothing_else(bare_weights, photos, tmp_path):
    job = EncoderJob(EncoderTrainConfig(model="gcz-c4", out_dir=str(tmp_path / "enc"), dataset="folder",
                                        data_root=str(photos), longer_side=64, crop=32, batch_size=2, lr=1e-2,
                                        threads=1), status=lambda s: None)
    frozen = {k: v.clone() for k, v in job.generator.state_dict().items()}
    encoder = {k: v.clone() for k, v in job.encoder.state_dict().items()}
    job.step()
    assert all(torch.equal(v, job.generator.state_dict()[k]) for k, v in frozen.items())
    assert not all(torch.equal(v, job.encoder.state_dict()[k]) for k, v in encoder.items())
    shipped = zoo.load_model(zoo.find_model("gcz-c4"))  # the cached model itself is untouched
    assert not any(p.requires_grad for p in shipped.generator.parameters()) or all(
        torch.equal(a, b) for a, b in zip(shipped.encoder.state_dict().values(), encoder.values()))


def test_training_lowers_the_objective_resumes_and_ships_a_head(bare_weights, photos, tmp_path):
    run = tmp_path / "enc"
    cfg = dict(model="gcz-c4", out_dir=str(run), dataset="folder", data_root=str(photos), longer_side=64, crop=64,
               batch_size=2, lr=1e-2, threads=1, log_every=5)
    entry = zoo.find_model("gcz-c4")
    model = zoo.load_model(entry)
    features = zoo.load_features()
    x = _batch(photos)

    def objective(encoder: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(objective_terms(encoder, model.quantizer, model.generator, features,
                                         refine.Objective(), x)["loss"])

    before = objective(model.encoder)
    first = train_encoder(EncoderTrainConfig(iterations=40, **cfg), status=lambda s: None)
    assert first["iteration"] == 40 and (run / ENCODER_CHECKPOINT).is_file()
    trained, state = load_encoder_checkpoint(run / ENCODER_CHECKPOINT)
    assert state["pixels_seen"] == 40 * 2 * 64 * 64 and state["photos"] == 2
    assert objective(trained) < 0.97 * before  # (the tiny random G mostly rewards fewer bits)
    again = train_encoder(EncoderTrainConfig(iterations=45, **cfg), status=lambda s: None)
    assert again["session_iterations"] == 5
    record = publish_head(run, bare_weights, "two test photos")
    assert record["kind"] == "encoder" and record["training"]["iterations"] == 45
    zoo._cache.clear()
    entry = zoo.find_model("gcz-c4")
    assert "encoder" in entry.heads
    pixels = photo_like(64, 64, seed=0)
    fast = codec.compress_loaded(LoadedImage(pixels), entry, EncodeProfile(effort=0, colour=False))
    own = codec.compress_loaded(LoadedImage(pixels), entry, EncodeProfile(refine_steps=0, colour=False))
    assert fast != own and np.asarray(gcodec.decompress(fast)).shape == (64, 64, 3)


def test_a_checkpoint_of_other_weights_is_refused(bare_weights, photos, tmp_path):
    run = tmp_path / "enc"
    cfg = dict(model="gcz-c4", out_dir=str(run), dataset="folder", data_root=str(photos), longer_side=64, crop=32,
               batch_size=1, threads=1, iterations=1)
    train_encoder(EncoderTrainConfig(**cfg), status=lambda s: None)
    state = torch.load(run / ENCODER_CHECKPOINT, weights_only=False)
    state["model_sha256"] = "0" * 64
    torch.save(state, run / ENCODER_CHECKPOINT)
    with pytest.raises(ValueError, match="other weights"):
        train_encoder(EncoderTrainConfig(**{**cfg, "iterations": 2}), status=lambda s: None)
