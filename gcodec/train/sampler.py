"""Training a latent sampler (WGAN-GP on real codes E(x)) for an installed GC model.

The codes are those the model's encoder gives the training photos at the
size users compress (longer side 768 px, flipped copies included); the
sampler learns random ``crop`` x ``crop`` latent windows of them.  The run
folder holds ``sampler.pt`` (resumable: both networks, both Adams, iteration,
RNG) and ``log.csv``; ``gcz publish-head`` ships the generator.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import zoo
from ..models.sampler import CodeCritic, CodeGenerator, SamplerConfig, draw_levels, noise_shape, one_hot_codes
from .data import load_dataset, resize_longer_side
from .skeleton import Schedule, StepJob, atomic_save, run_job

SAMPLER_CHECKPOINT = "sampler.pt"


@dataclass
class SamplerTrainConfig:
    """One sampler run: the model whose codes are learned, data, and WGAN-GP settings."""

    model: str = "gcz-c4"
    out_dir: str = "runs/sampler-c4"
    data_root: str = "data/pool"
    dataset: str = "bundled"
    image_side: int = 768
    crop: int = 16              # latent pixels (x16 image pixels)
    batch_size: int = 16
    lr: float = 1e-4
    critic_steps: int = 5
    gp_weight: float = 10.0
    iterations: int = 20_000    # generator steps
    max_minutes: float | None = None
    seed: int = 0
    threads: int | None = None
    checkpoint_minutes: float = 2.0
    log_every: int = 25


def real_codes(entry: zoo.ModelEntry, images: list[np.ndarray], side: int) -> list[torch.Tensor]:
    """Symbols (C, h, w) of each image (downscaled to ``side``, cropped to multiples of 16) and its mirror."""
    from PIL import Image

    model = zoo.load_model(entry, "cpu")
    codes = []
    for pixels in images:
        img = np.asarray(resize_longer_side(Image.fromarray(pixels), side))
        h, w = img.shape[0] // 16 * 16, img.shape[1] // 16 * 16
        for view in (img[:h, :w], img[:h, ::-1][:, :w]):
            x = torch.from_numpy(view.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
            codes.append(model.encode_symbols(x)[0])
    return codes


def _batch(codes: list[torch.Tensor], size: int, crop: int, rng: random.Random) -> torch.Tensor:
    picks = rng.choices(codes, weights=[c.shape[1] * c.shape[2] for c in codes], k=size)
    out = []
    for c in picks:
        y, x = rng.randint(0, c.shape[1] - crop), rng.randint(0, c.shape[2] - crop)
        out.append(c[:, y:y + crop, x:x + crop])
    return torch.stack(out)


def gradient_penalty(critic: CodeCritic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: ``(||grad critic(mix)|| - 1)^2`` on random interpolates of real and fake."""
    eps = torch.rand(real.shape[0], 1, 1, 1, 1)
    mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(mix).sum(), mix, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def train_sampler(cfg: SamplerTrainConfig, status: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or resume) a latent sampler; returns a summary."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    entry = zoo.find_model(cfg.model)
    scfg = SamplerConfig(channels=entry.arch.latent_channels, levels=entry.arch.levels)
    gen, critic = CodeGenerator(scfg), CodeCritic(scfg)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.0, 0.9))
    opt_c = torch.optim.Adam(critic.parameters(), lr=cfg.lr, betas=(0.0, 0.9))
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / SAMPLER_CHECKPOINT
    iteration, elapsed = 0, 0.0
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state["model_sha256"] != entry.sha256:
            raise ValueError(f"{ckpt} learned the codes of other weights of {entry.name}; use a new --out-dir")
        gen.load_state_dict(state["generator"])
        critic.load_state_dict(state["critic"])
        opt_g.load_state_dict(state["opt_g"])
        opt_c.load_state_dict(state["opt_c"])
        iteration, elapsed = state["iteration"], state["elapsed"]
        torch.set_rng_state(state["torch_rng"])
        status(f"resumed from {ckpt} at iteration {iteration}")
    codes_path = out / "codes.pt"  # the encoder's codes of the training photos, computed once per run
    if codes_path.is_file():
        codes = torch.load(codes_path, weights_only=True)
    else:
        samples = load_dataset(cfg.dataset, Path(cfg.data_root), "train")
        codes = real_codes(entry, [s.pixels for s in samples], cfg.image_side)
        atomic_save(codes, codes_path)
    codes = [c for c in codes if min(c.shape[1:]) >= cfg.crop]
    status(f"{len(codes)} real code maps of {entry.name}")
    rng = random.Random(cfg.seed * 1000 + iteration)
    zshape = noise_shape(cfg.crop, cfg.crop, scfg)

    def fake_probs(n: int) -> torch.Tensor:
        return draw_levels(gen(torch.randn(n, *zshape))[..., :cfg.crop, :cfg.crop])

    def save(job: StepJob) -> None:
        atomic_save({"generator": gen.state_dict(), "critic": critic.state_dict(), "opt_g": opt_g.state_dict(),
                     "opt_c": opt_c.state_dict(), "iteration": job.iteration, "elapsed": job.elapsed,
                     "torch_rng": torch.get_rng_state(), "sampler_config": scfg.to_dict(), "model": entry.name,
                     "model_sha256": entry.sha256, "config": asdict(cfg)}, ckpt)

    def step() -> dict[str, torch.Tensor]:
        with torch.no_grad():  # the fakes of all critic steps in one pass
            fakes = fake_probs(cfg.batch_size * cfg.critic_steps).split(cfg.batch_size)
        for fake in fakes:
            real = one_hot_codes(_batch(codes, cfg.batch_size, cfg.crop, rng), scfg.levels)
            gap = critic(real).mean() - critic(fake).mean()
            gp = gradient_penalty(critic, real, fake)
            opt_c.zero_grad(set_to_none=True)
            (cfg.gp_weight * gp - gap).backward()
            opt_c.step()
        critic.requires_grad_(False)
        loss_g = -critic(fake_probs(cfg.batch_size)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        critic.requires_grad_(True)
        return {"wasserstein": gap.detach(), "gp": gp.detach()}

    schedule = Schedule(cfg.iterations, cfg.max_minutes, cfg.checkpoint_minutes, cfg.log_every)
    return run_job(StepJob(step, save, iteration, elapsed), out, schedule, ["wasserstein", "gp"], status,
                   checkpoint=ckpt)


def load_sampler_checkpoint(path: Path) -> tuple[CodeGenerator, dict[str, Any]]:
    """The code generator of a run's ``sampler.pt`` and the checkpoint's metadata."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    gen = zoo.build_head("sampler", state["sampler_config"])
    gen.load_state_dict(state["generator"])
    return gen.eval(), state
