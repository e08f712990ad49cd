"""Training an ORP head (EGIC's realism slider) for an installed GC model.

E and G stay frozen, so the model's symbols and its GAN output never change;
only the small :class:`gcodec.models.orp.ResidualHead` learns, with
``MSE(x, G(w) + R)`` (``alpha = 0``).  The run folder holds ``head.pt`` (the
resumable state: head, Adam, iteration, RNG) and ``log.csv``; rerunning
resumes.  ``gcz publish-head`` turns it into a shipped head file.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .. import zoo
from ..models.orp import ResidualHead, generator_features, head_config_for
from .data import CropSampler, load_dataset
from .skeleton import Schedule, StepJob, atomic_save, run_job

HEAD_CHECKPOINT = "head.pt"


@dataclass
class RealismTrainConfig:
    """One ORP-head run: the frozen model, data, and the head's optimisation."""

    model: str = "gcz-c4"
    out_dir: str = "runs/realism-c4"
    data_root: str = "data/pool"
    dataset: str = "bundled"
    crop: int = 192
    batch_size: int = 4
    lr: float = 1e-3
    iterations: int = 20_000
    max_minutes: float | None = None
    width: int = 8     # 8 channels x 2 convs: 1.17x plain decoding in ONNX Runtime (16 x 3: 1.31x)
    layers: int = 2
    seed: int = 0
    threads: int | None = None
    checkpoint_minutes: float = 2.0
    log_every: int = 25


def train_head(cfg: RealismTrainConfig, status: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or resume) an ORP head; returns a summary with the final MSEs of G and G + R."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    entry = zoo.find_model(cfg.model)
    model = zoo.load_model(entry, "cpu")
    model.requires_grad_(False)
    head_cfg = head_config_for(model.generator, cfg.width, cfg.layers)
    head = ResidualHead(head_cfg)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    iteration, elapsed = 0, 0.0
    ckpt = out / HEAD_CHECKPOINT
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state["model_sha256"] != entry.sha256:
            raise ValueError(f"{ckpt} was trained for other weights of {entry.name}; use a new --out-dir")
        head.load_state_dict(state["head"])
        opt.load_state_dict(state["opt"])
        iteration, elapsed = state["iteration"], state["elapsed"]
        torch.set_rng_state(state["torch_rng"])
        status(f"resumed from {ckpt} at iteration {iteration}")
    sampler = CropSampler(load_dataset(cfg.dataset, Path(cfg.data_root), "train"), cfg.crop,
                          seed=cfg.seed * 1000 + iteration)

    def save(job: StepJob) -> None:
        atomic_save({"head": head.state_dict(), "opt": opt.state_dict(), "iteration": job.iteration,
                     "elapsed": job.elapsed, "torch_rng": torch.get_rng_state(), "head_config": head_cfg.to_dict(),
                     "model": entry.name, "model_sha256": entry.sha256, "config": asdict(cfg),
                     "pixels_seen": job.iteration * cfg.batch_size * cfg.crop ** 2}, ckpt)

    def step() -> dict[str, torch.Tensor]:
        x, _ = sampler.batch(cfg.batch_size)
        with torch.no_grad():
            features, image = generator_features(model.generator, model.quantizer(model.encoder(x)))
        low_distortion = image + head(features, image)
        loss = torch.mean((low_distortion - x) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"mse_gan": torch.mean((image - x) ** 2), "mse_orp": loss.detach()}

    schedule = Schedule(cfg.iterations, cfg.max_minutes, cfg.checkpoint_minutes, cfg.log_every)
    return run_job(StepJob(step, save, iteration, elapsed), out, schedule, ["mse_gan", "mse_orp"], status,
                   checkpoint=ckpt)


def load_head_checkpoint(path: Path) -> tuple[ResidualHead, dict[str, Any]]:
    """The head of a run's ``head.pt`` and the checkpoint's metadata."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    head = zoo.build_head("realism", state["head_config"])
    head.load_state_dict(state["head"])
    return head.eval(), state
