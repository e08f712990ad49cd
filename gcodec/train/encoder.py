"""Training an amortised encoder: E fine-tuned on the refinement's own objective, G frozen.

The shipped encoders learned their mapping in the rate-distortion stage,
against a generator that was later fine-tuned with E frozen, and never on the
objective that the encode-time refinement (:mod:`gcodec.refine`) optimises.
Here a copy of the model's encoder learns exactly that objective --
``10 MSE + 0.3 perceptual + 6 low-pass + 4 estimated bits per pixel``, the
bits estimated per context as the context code charges them
(:func:`gcodec.refine.context_bits`, counted over the batch) -- through the
frozen quantizer and generator, so one forward pass lands close to where the
refinement ends.  The generator, the quantizer and so every decoder and every
existing file stay valid: the trained encoder ships as the model's
``encoder`` head (``gcz publish-head``), which only the encode path reads.

The run folder holds ``encoder.pt`` (the resumable state: encoder, Adam,
iteration, RNG) and ``log.csv``; rerunning resumes.
"""
from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .. import noise, refine, zoo
from .data import CropSampler, load_dataset
from .skeleton import Schedule, atomic_save, run_job

ENCODER_CHECKPOINT = "encoder.pt"
LOG_FIELDS = ["loss", "mse", "psnr", "lowpass", "bpp"]


@dataclass
class EncoderTrainConfig:
    """One amortised-encoder run: the frozen model, data, and E's optimisation."""

    model: str = "gcz-c4-v2"
    out_dir: str = "runs/encoder-c4"
    data_root: str = "data/pool"
    dataset: str = "bundled"
    #: Photos are scaled to this longer side first: the size people compress and gcz is measured at.
    longer_side: int = 768
    crop: int = 256
    batch_size: int = 4
    lr: float = 3e-5
    iterations: int = 50_000
    max_minutes: float | None = None
    seed: int = 0
    threads: int | None = None
    checkpoint_minutes: float = 2.0
    log_every: int = 25


class EncoderJob:
    """The state of one run: the trainable encoder, the frozen decoder and feature network, Adam, data."""

    def __init__(self, cfg: EncoderTrainConfig, status: Callable[[str], None] = print) -> None:
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        self.entry = zoo.find_model(cfg.model)
        if self.entry.arch.selective:
            raise ValueError(f"{self.entry.name} is a selective-compression model; its encoder is not refined")
        model = zoo.load_model(self.entry, "cpu")
        self.quantizer = model.quantizer
        self.generator = refine.fast_layout(model.generator).requires_grad_(False)
        self.features = refine.fast_layout(zoo.load_features("cpu")).requires_grad_(False)
        self.encoder = copy.deepcopy(model.encoder).requires_grad_(True)
        self.objective = refine.objective_for(context=True)
        self.noise_channels = model.config.noise_channels
        self.opt = torch.optim.Adam(self.encoder.parameters(), lr=cfg.lr)
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.checkpoint = self.out / ENCODER_CHECKPOINT
        self.iteration, self.elapsed = 0, 0.0
        if self.checkpoint.is_file():
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=False)
            if state["model_sha256"] != self.entry.sha256:
                raise ValueError(f"{self.checkpoint} was trained for other weights of {self.entry.name}; "
                                 "use a new --out-dir")
            self.encoder.load_state_dict(state["encoder"])
            self.opt.load_state_dict(state["opt"])
            self.iteration, self.elapsed = state["iteration"], state["elapsed"]
            torch.set_rng_state(state["torch_rng"])
            status(f"resumed from {self.checkpoint} at iteration {self.iteration}")
        samples = load_dataset(cfg.dataset, Path(cfg.data_root), "train", longer_side=cfg.longer_side)
        self.photos = len(samples)
        self.sampler = CropSampler(samples, cfg.crop, seed=cfg.seed * 1000 + self.iteration)

    def step(self) -> dict[str, torch.Tensor]:
        """One Adam step of E on a batch of crops; the objective's terms, detached."""
        x, _ = self.sampler.batch(self.cfg.batch_size)
        terms = objective_terms(self.encoder, self.quantizer, self.generator, self.features, self.objective, x,
                                self.noise_channels)
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.opt.step()
        return {k: v.detach() for k, v in terms.items()}

    def save(self) -> None:
        """The resumable state, written atomically."""
        cfg = self.cfg
        atomic_save({"encoder": {k: v.contiguous() for k, v in self.encoder.state_dict().items()},
                     "opt": self.opt.state_dict(), "iteration": self.iteration, "elapsed": self.elapsed,
                     "torch_rng": torch.get_rng_state(), "model": self.entry.name,
                     "model_sha256": self.entry.sha256, "config": asdict(cfg), "photos": self.photos,
                     "pixels_seen": self.iteration * cfg.batch_size * cfg.crop ** 2}, self.checkpoint)


def objective_terms(encoder: torch.nn.Module, quantizer: torch.nn.Module, generator: torch.nn.Module,
                    features: torch.nn.Module, objective: refine.Objective, x: torch.Tensor,
                    noise_channels: int = 0) -> dict[str, torch.Tensor]:
    """The refinement's objective of ``encoder``'s symbols for the batch ``x`` (N, 3, H, W) in [-1, 1]:
    ``loss`` (differentiable in the encoder's weights, :func:`gcodec.refine.distortion` plus the rate
    term) and, detached and unweighted, ``mse``, ``lowpass`` and ``bpp`` (the estimated bits per pixel)."""
    latent = encoder(x)
    quantized = quantizer.straight_through(latent)
    if noise_channels:  # the decoder's noise of the default seed, as the refinement scores it
        shape = quantized.shape[-2:]
        extra = torch.from_numpy(noise.latent_noise(noise.DEFAULT_SEED, noise_channels, *shape))
        quantized = torch.cat([quantized, extra.expand(len(x), -1, -1, -1)], dim=1)
    out = generator(quantized)
    n, _, h, w = x.shape
    mask = torch.ones(n, 1, h, w)
    scored = torch.tensor(float(n * h * w))
    with torch.no_grad():
        target_features = features(x)
        error = (out - x) / 2
        logged = {"mse": (error ** 2).mean(),
                  "lowpass": torch.nn.functional.avg_pool2d(error, refine.LOWPASS_BLOCK).abs().mean()}
    loss = refine.distortion(out, x, mask, scored, objective, features, target_features)
    levels = quantizer.levels
    symbols = quantizer.symbols(latent.detach())
    bits = refine.context_bits(symbols, levels)
    own, local = zip(*(refine.local_bits(bits, symbols[i], levels) for i in range(n)))
    rate = refine.soft_context_bits(quantizer.assignment(latent), torch.stack(own), torch.stack(local)) / scored
    loss = loss + objective.rate * rate
    return {"loss": loss, **logged, "bpp": rate.detach()}


def train_encoder(cfg: EncoderTrainConfig, status: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or resume) an amortised encoder; returns the session's summary."""
    random.seed(cfg.seed)
    job = EncoderJob(cfg, status)
    schedule = Schedule(cfg.iterations, cfg.max_minutes, cfg.checkpoint_minutes, cfg.log_every)
    return run_job(job, job.out, schedule, LOG_FIELDS, status, checkpoint=job.checkpoint,
                   model=job.entry.name, photos=job.photos)


def load_encoder_checkpoint(path: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The encoder of a run's ``encoder.pt`` (eval mode) and the checkpoint's metadata."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    entry = zoo.find_model(state["model"])
    encoder = zoo.build_head("encoder", entry.arch.to_dict())
    encoder.load_state_dict(state["encoder"])
    return encoder.eval(), state
