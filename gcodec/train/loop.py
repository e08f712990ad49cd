"""The training loop of ``gcz train``: GC objective, checkpoints, resume, logging, DDP.

Single process: ``gcz train ...``.  Data parallel over processes or nodes:
``torchrun --nproc-per-node N -m gcodec.train ...`` (gloo on CPU, nccl
on CUDA); each rank draws its own crops, gradients are averaged by DDP.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import os
import platform
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import GczError, GczInputError
from ..grid import grid_excess
from ..models.config import ArchConfig, named_config
from ..models.discriminator import MultiScaleDiscriminator
from ..models.gc import GCModel
from ..models.layers import set_fixed_norm
from ..models.upsampling import convert_generator_state, transposed_weight_keys
from . import losses
from .compact import is_compact, load_checkpoint, save_compact
from .data import CropSampler, load_dataset
from .skeleton import Schedule, atomic_save, run_job

CHECKPOINT_NAME = "checkpoint.pt"
#: Folder of the compact checkpoint (:mod:`.compact`) written beside the full one.
COMPACT_NAME = "compact"
LOG_NAME = "log.csv"
#: The columns of ``log.csv`` after the iteration and the step time.
LOG_FIELDS = ["loss", "mse", "psnr", "perc", "d", "g_adv", "fm", "div", "lowpass", "grid"]


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in its checkpoints)."""

    out_dir: str = "runs/gcz"
    mode: str = "gc"                  # "gc" or "sc" (selective compression, docs/method.md section 2)
    arch: str = "cpu"
    channels: int = 4
    noise_channels: int = 0
    dataset: str = "bundled"
    data_root: str = "data/pool"
    iterations: int = 280_000
    max_minutes: float | None = None
    batch_size: int = 1
    crop: int = 256
    lr: float = 2e-4
    stage1_iters: int = 0            # rate-distortion only (no GAN) for this many iterations
    freeze_encoder_in_gan: bool = True  # EGIC two-stage: E fixed once the GAN starts
    freeze_encoder: bool = False      # E fixed throughout (fine-tuning G of a trained model)
    gan: bool = True
    lambda_mse: float = 10.0
    lambda_fm: float = 10.0
    lambda_perceptual: float = 10.0
    fixed_norm_after: float | None = 0.5  # fraction of iterations after which G uses fixed statistics
    distortion_pool: int = 1          # MSE between avg-pooled images (k x k): pins layout, frees texture
    lambda_lowpass: float = 0.0       # an extra MSE between k x k block means (k = lowpass_pool): holds colour
    lowpass_pool: int = 16
    lambda_diversity: float = 0.0     # stochastic G: reward two noise draws for differing (losses.diversity_hinge)
    diversity_margin: float = 0.06
    diversity_scale: int = 1          # diversity counts detail above this many pixels (no pixel noise)
    disc: str = "patch"               # "patch": multi-scale PatchGAN on pixels; "projected": heads on frozen features
    disc_labels: bool = False         # GC (D+): semantic label maps fed to D
    num_classes: int = 34             # label classes (D+; SC on datasets with labels)
    sc_codebook: str | None = None    # SC on unlabelled photos: automatic labels from this codebook (default: shipped)
    sc_instance_fraction: float = 0.25  # SC RI mode: share of regions preserved
    vgg_weights: str | None = None
    perceptual: bool = True
    seed: int = 0
    device: str = "cpu"
    bf16: bool = False
    channels_last: bool = False       # networks in channels-last layout (CPU: projected-D steps 6-27 % faster)
    checkpoint_minutes: float = 5.0
    log_every: int = 10
    threads: int | None = None
    init_from: str | None = None      # warm start: weights of a checkpoint (any channel count)
    compact: bool = True              # also write OUT_DIR/compact/ (fp16/bf16 parts <= 15 MiB) at each checkpoint
    ema: float = 0.0                  # decay per step of a moving average of E/G's weights (0: none); published
    upsample: str = "transposed"      # G's upsampling: transposed (paper) or resize (no checkerboard)
    lambda_grid: float = 0.0          # penalty on grid energy above the original's (gcodec.grid.grid_excess)

    def arch_config(self) -> ArchConfig:
        """The architecture this run trains."""
        if self.mode not in ("gc", "sc"):
            raise GczInputError(f"--mode must be gc or sc, not {self.mode!r}")
        return dataclasses.replace(named_config(self.arch, self.channels), noise_channels=self.noise_channels,
                                   selective_classes=self.num_classes if self.mode == "sc" else 0,
                                   upsample=self.upsample)


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("GCZ_DDP_BACKEND") != "gloo" else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def warm_start(model: GCModel, state: dict[str, torch.Tensor]) -> None:
    """Load weights from a model of possibly different latent channels.

    Mismatching tensors (E's last conv, G's first conv) copy their overlapping slice.
    """
    own = model.state_dict()
    for key, value in state.items():
        if key not in own:
            continue
        target = own[key]
        if target.shape == value.shape:
            target.copy_(value)
        elif target.dim() == value.dim():
            idx = tuple(slice(0, min(a, b)) for a, b in zip(target.shape, value.shape))
            target[idx].copy_(value[idx])


class Trainer:
    """Holds models, optimizers and state of one run; ``run()`` trains until done or out of time."""

    def __init__(self, cfg: TrainConfig, status: Callable[[str], None] = print) -> None:
        self.cfg = cfg
        self.status = status
        if cfg.lambda_lowpass > 0 and not 1 <= cfg.lowpass_pool <= cfg.crop:
            raise GczInputError(f"--lowpass-pool must be between 1 and --crop ({cfg.crop}), not {cfg.lowpass_pool}")
        if not 0 <= cfg.ema < 1:
            raise GczInputError(f"--ema must be at least 0 and below 1, not {cfg.ema}")
        self.rank, self.world = _distributed()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(cfg.device if cfg.device != "cuda" or torch.cuda.is_available() else "cpu")
        torch.manual_seed(cfg.seed + self.rank)
        random.seed(cfg.seed + self.rank)
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.codebook = None
        if cfg.mode == "sc" and cfg.dataset != "cityscapes":
            from ..selective import autolabel
            self.codebook = autolabel.load_codebook(Path(cfg.sc_codebook) if cfg.sc_codebook else None)
            cfg.num_classes = self.codebook.classes
        self.arch = cfg.arch_config()
        if self.arch.selective:
            from ..models.sc import SCModel
            self.model: nn.Module = SCModel(self.arch).to(self.device)
        else:
            self.model = GCModel(self.arch).to(self.device)
        self.use_perceptual = cfg.perceptual and cfg.lambda_perceptual > 0
        self.perceptual = None  # the frozen feature network: perceptual loss and/or projected D
        if self.use_perceptual or cfg.disc == "projected":
            from .perceptual import PerceptualLoss
            self.perceptual = PerceptualLoss(Path(cfg.vgg_weights) if cfg.vgg_weights else None).to(self.device)
        self.disc = self._build_disc().to(self.device)
        if cfg.channels_last:  # the same values, another layout: checkpoints load either way
            for network in (self.model, self.disc, self.perceptual):
                if network is not None:
                    network.to(memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.iteration = 0
        self.elapsed = 0.0  # training seconds over all sessions of this run
        #: The moving average of E/G's weights (:meth:`_update_ema`), or None without ``cfg.ema``.
        self.ema_model: nn.Module | None = None
        self.ema_updates = 0  # steps averaged into ema_model
        self.ddp_model: nn.Module = self.model
        self.ddp_disc: nn.Module = self.disc
        #: the warm start, when its G upsamples with transposed convolutions and this run's with resize
        self._upsampling_source: GCModel | None = None
        ema_state = self._resume_or_init()
        if cfg.ema:
            self.ema_model = copy.deepcopy(self.model).requires_grad_(False)
            if ema_state is not None:  # else the average starts at the weights the run starts from
                self.ema_model.load_state_dict(ema_state)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = DDP(self.model, device_ids=ids, find_unused_parameters=True)
            self.ddp_disc = DDP(self.disc, device_ids=ids)
        samples = load_dataset(cfg.dataset, Path(cfg.data_root), "train")
        if self.codebook is not None:
            from .selective import attach_auto_labels
            attach_auto_labels(samples, self.codebook)
        self.sampler = CropSampler(samples, cfg.crop, seed=cfg.seed * 1000 + self.rank + self.iteration)
        if self._upsampling_source is not None:
            self._carry_upsampling(self._upsampling_source)
            self._upsampling_source = None  # only needed for the fit
        self.status(f"rank {self.rank}/{self.world}: {len(samples)} training images, "
                    f"arch {cfg.arch} C={cfg.channels}, starting at iteration {self.iteration}")

    def _build_disc(self) -> nn.Module:
        """The discriminator ``cfg.disc`` names (see :mod:`.projected` for the projected one)."""
        cfg = self.cfg
        if cfg.disc == "patch":
            extra = cfg.num_classes if cfg.disc_labels else 0
            return MultiScaleDiscriminator(self.arch, extra_channels=extra)
        if cfg.disc != "projected":
            raise GczInputError(f"--disc must be patch or projected, not {cfg.disc!r}")
        if cfg.disc_labels:
            raise GczInputError("--disc projected does not take --disc-labels (label maps go to a patch D)")
        from .projected import ProjectedDiscriminator
        with torch.no_grad():
            probe = self.perceptual.net(torch.zeros(1, 3, 64, 64, device=self.device))
        return ProjectedDiscriminator([f.shape[1] for f in probe], width=max(8, round(64 * self.arch.disc_width)),
                                      seed=cfg.seed)

    # ------------------------------------------------------------ state
    def _resume_or_init(self) -> dict[str, torch.Tensor] | None:
        """Load the checkpoint of OUT_DIR, else warm-start from ``cfg.init_from``; returns the checkpoint's
        moving average of E/G's weights, if it has one (its step count goes to ``ema_updates``)."""
        ckpt = self.out / CHECKPOINT_NAME
        if not ckpt.is_file() and is_compact(self.out / COMPACT_NAME):
            ckpt = self.out / COMPACT_NAME  # a run carried over from another machine
        if ckpt.is_file() or ckpt.is_dir():
            state = load_checkpoint(ckpt, map_location=self.device)
            if state["arch"] != self.arch.to_dict():
                raise GczInputError(f"{ckpt} was trained with another architecture; use a new --out-dir")
            trained_disc = state.get("config", {}).get("disc", "patch")
            if trained_disc != self.cfg.disc:
                raise GczInputError(f"{ckpt} was trained with --disc {trained_disc}; "
                                    f"resume with it or use a new --out-dir")
            self.model.load_state_dict(state["model"])
            self.disc.load_state_dict(state["disc"])
            if "opt_g" in state and "opt_d" in state:
                self.opt_g.load_state_dict(state["opt_g"])
                self.opt_d.load_state_dict(state["opt_d"])
                for opt in (self.opt_g, self.opt_d):  # a resumed run may change the learning rate
                    for group in opt.param_groups:
                        group["lr"] = self.cfg.lr
            else:  # a compact checkpoint written without optimizer state (the smallest carry)
                self.status(f"{ckpt} holds no optimizer state: Adam starts afresh")
            self.iteration = state["iteration"]
            self.elapsed = state["elapsed"]
            torch.set_rng_state(state["torch_rng"])
            self._truncate_log()
            self.status(f"resumed from {ckpt} at iteration {self.iteration}")
            self.ema_updates = int(state.get("ema_updates", 0))
            return state.get("model_ema")
        if self.cfg.init_from:
            state = self._init_state(self.cfg.init_from)
            weights = state["model"]
            source_arch = ArchConfig.from_dict(state["arch"]) if state.get("arch") else None
            if source_arch is not None and source_arch.upsample != self.arch.upsample:
                # the transposed kernels become resize kernels of the right shape (fitted on photos once
                # the sampler is up, _carry_upsampling), so warm_start copies every tensor whole
                self._upsampling_source = self._transposed_source(source_arch, weights)
                weights = convert_generator_state(weights, transposed_weight_keys(self._upsampling_source))
            if self.arch.selective and not (source_arch or ArchConfig()).selective:
                from ..models.sc import warm_start_from_gc
                warm_start_from_gc(self.model, weights)
            else:
                warm_start(self.model, weights)
            if "disc" in state and state.get("config", {}).get("disc", "patch") == self.cfg.disc:
                self.disc.load_state_dict(state["disc"], strict=False)
            self.status(f"warm start from {self.cfg.init_from}")
        return None

    def _transposed_source(self, source_arch: ArchConfig, weights: dict[str, torch.Tensor]) -> GCModel:
        """The warm start as a model (transposed upsampling), when this run's G upsamples with resize."""
        if source_arch.upsample != "transposed" or self.arch.upsample != "resize" or self.arch.selective:
            raise GczInputError(f"--init-from upsamples with {source_arch.upsample}: only transposed -> resize "
                                f"GC generators can be carried over")
        old = GCModel(source_arch).to(self.device).eval()
        old.load_state_dict(weights)
        return old

    def _carry_upsampling(self, old: GCModel) -> None:
        """Fit the resize upsampling of G to the warm start's transposed one on crops of the training photos."""
        from .upsample_fit import FIT_CROPS, fit_resize_upsampling
        x, _ = self.sampler.batch(FIT_CROPS)
        with torch.no_grad():
            latents = [old.quantizer(old.encoder(x[i:i + 1].to(self.device))) for i in range(FIT_CROPS)]
        residuals = fit_resize_upsampling(old.generator, self.model.generator, latents, seed=self.cfg.seed)
        self.status("resize upsampling fitted to the warm start's transposed one (residual per layer "
                    + ", ".join(f"{r:.2f}" for r in residuals) + ")")

    def _init_state(self, source: str) -> dict[str, Any]:
        """Warm-start weights: a checkpoint file, a compact folder, or an installed model's name."""
        if Path(source).exists():
            return load_checkpoint(Path(source), map_location=self.device)
        from .. import zoo
        try:
            entry = zoo.find_model(source)
            return {"model": zoo.load_model(entry, "cpu").state_dict(), "arch": entry.arch.to_dict()}
        except GczError as exc:
            raise GczInputError(f"--init-from {source}: no such checkpoint, and {exc}") from None

    def _truncate_log(self) -> None:
        """Drop log rows written after the checkpoint we resume from (they will be redone)."""
        log_path = self.out / LOG_NAME
        if self.rank != 0 or not log_path.is_file():
            return
        with open(log_path, newline="") as fh:
            rows = list(csv.reader(fh))
        kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= self.iteration]
        if len(kept) != len(rows):
            tmp = log_path.with_suffix(".csv.tmp")
            with open(tmp, "w", newline="") as fh:
                csv.writer(fh).writerows(kept)
            os.replace(tmp, log_path)

    def state(self) -> dict[str, Any]:
        """Everything needed to resume (and to export weights)."""
        return {"model": self.model.state_dict(), "disc": self.disc.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "iteration": self.iteration, "elapsed": self.elapsed, "arch": self.arch.to_dict(),
                "config": dataclasses.asdict(self.cfg), "torch_rng": torch.get_rng_state(),
                "fixed_norm": self._fixed_norm_now(),
                **({"model_ema": self.ema_model.state_dict(), "ema_updates": self.ema_updates}
                   if self.ema_model is not None else {}),
                "hardware": f"{platform.machine()} {platform.processor() or ''} "
                            f"{torch.get_num_threads()} threads, {self.device.type}, world {self.world}".strip()}

    def save(self) -> None:
        """Write the checkpoint atomically, and the compact one if configured (rank 0 only)."""
        if self.rank == 0:
            state = self.state()
            atomic_save(state, self.out / CHECKPOINT_NAME)
            if self.cfg.compact:
                save_compact(state, self.out / COMPACT_NAME)

    # ------------------------------------------------------------ schedule
    def _gan_active(self) -> bool:
        return self.cfg.gan and self.iteration >= self.cfg.stage1_iters

    def _fixed_norm_now(self) -> bool:
        f = self.cfg.fixed_norm_after
        return f is not None and self.iteration >= f * self.cfg.iterations

    # ------------------------------------------------------------ one step
    def _disc_input(self, img: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if not self.cfg.disc_labels or labels is None:
            return img
        onehot = F.one_hot(labels.clamp(0, self.cfg.num_classes - 1), self.cfg.num_classes)
        return torch.cat([img, onehot.permute(0, 3, 1, 2).float().to(img.device)], dim=1)

    def _disc_batch(self, x: torch.Tensor, x_hat: torch.Tensor, labels: torch.Tensor | None,
                    feats: tuple[list[torch.Tensor], list[torch.Tensor]] | None) -> Any:
        """D's input for its own loss: the real and the (detached) generated batch, concatenated."""
        if self.cfg.disc == "projected":
            pred, target = feats
            return [torch.cat([t, p.detach()]) for t, p in zip(target, pred)]
        return torch.cat([self._disc_input(x, labels), self._disc_input(x_hat, labels)])

    def _disc_fake(self, x_hat: torch.Tensor, labels: torch.Tensor | None,
                   feats: tuple[list[torch.Tensor], list[torch.Tensor]] | None) -> Any:
        """D's input for G's adversarial and feature-matching terms (differentiable in ``x_hat``)."""
        return feats[0] if self.cfg.disc == "projected" else self._disc_input(x_hat, labels)

    def _split_disc(self, both: list[list[torch.Tensor]], n: int) -> tuple[list[list[torch.Tensor]], ...]:
        """Per-scale, per-layer outputs of D on ``cat([a, b])`` split back into those of ``a`` and ``b``."""
        return ([[f[:n] for f in scale] for scale in both], [[f[n:] for f in scale] for scale in both])

    def step(self) -> dict[str, torch.Tensor]:
        """One optimisation step of D (if the GAN is active) and of E/G.

        Returns detached scalar tensors: nothing here waits for the device, so
        the host syncs only when the caller logs (every ``log_every`` steps).
        D sees the real and the generated batch in one pass (its instance norm
        is per sample, so this equals two passes), and those real features,
        detached, are the targets of the feature-matching loss: D runs on the
        real image once per step.
        """
        cfg = self.cfg
        x, labels = self.sampler.batch(cfg.batch_size)
        x = x.to(self.device, non_blocking=True)
        gan = self._gan_active()
        set_fixed_norm(self.model.generator, self._fixed_norm_now())
        freeze_e = cfg.freeze_encoder or (gan and cfg.freeze_encoder_in_gan and cfg.stage1_iters > 0)
        self.model.encoder.requires_grad_(not freeze_e)
        self.model.train()
        logs: dict[str, torch.Tensor] = {}
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.bf16)
        keep = None  # SC: preserved-pixel mask of the distortion loss
        with autocast:
            if self.arch.selective:
                from .selective import heatmaps, pixel_mask
                heat = heatmaps(labels, self.sampler.rng, cfg.sc_instance_fraction).to(self.device)
                labels = labels.to(self.device)
                x_hat, w_hat = self.ddp_model(x, labels, heat)
                keep = pixel_mask(heat)
            else:
                x_hat, w_hat = self.ddp_model(x)
            second = None
            if cfg.lambda_diversity > 0 and self.arch.noise_channels:  # a second noise draw of the same code
                second = self.model.synthesize(w_hat).float()
        x_hat = x_hat.float()
        n = x.shape[0]
        feats = None  # (features of x_hat, of x) from the frozen network, shared by perceptual loss and projected D
        if self.perceptual is not None and (self.use_perceptual or gan):
            with autocast:
                feats = self.perceptual.features(x_hat, x)
        if gan:
            with autocast:
                both = self.ddp_disc(self._disc_batch(x, x_hat.detach(), labels, feats))
                real, fake = self._split_disc(both, n)
                loss_d = losses.lsgan_d_loss(real, fake)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            logs["d"] = loss_d.detach()
            real_features = [[f.detach() for f in scale] for scale in real]
        mse = losses.masked_mse(x_hat, x, keep)
        logs["mse"] = mse.detach()
        if cfg.distortion_pool > 1:
            loss = cfg.lambda_mse * losses.block_mse(x_hat, x, cfg.distortion_pool, keep)
        else:
            loss = cfg.lambda_mse * mse
        if cfg.lambda_lowpass > 0:  # block means are what the latent fixes: the GAN terms barely see colour
            lowpass = losses.block_mse(x_hat, x, cfg.lowpass_pool, keep)
            loss = loss + cfg.lambda_lowpass * lowpass
            logs["lowpass"] = lowpass.detach()
        if cfg.lambda_grid > 0:  # periodic energy above the original's: the checkerboard of a generator
            grid = grid_excess(x_hat, x)
            loss = loss + cfg.lambda_grid * grid
            logs["grid"] = grid.detach()
        if second is not None:
            div = losses.diversity_hinge(x_hat, second, cfg.diversity_margin, cfg.distortion_pool, cfg.diversity_scale)
            loss = loss + cfg.lambda_diversity * div
            logs["div"] = div.detach()
        if self.use_perceptual:
            perc = self.perceptual.distance(*feats)
            loss = loss + cfg.lambda_perceptual * perc
            logs["perc"] = perc.detach()
        if gan:
            self.disc.requires_grad_(False)
            with autocast:
                fake = self.ddp_disc(self._disc_fake(x_hat, labels, feats))
                g_adv = losses.lsgan_g_loss(fake)
                fm = losses.feature_matching_loss(real_features, fake)
            self.disc.requires_grad_(True)
            loss = loss + g_adv + cfg.lambda_fm * fm
            logs["g_adv"] = g_adv.detach()
            logs["fm"] = fm.detach()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        if self.ema_model is not None:
            self._update_ema()
        logs["loss"] = loss.detach()
        return logs

    @torch.no_grad()
    def _update_ema(self) -> None:
        """Move the average of E/G's weights towards the current ones.

        The decay is ``cfg.ema``, lower over the first steps of the average
        (``(1 + n) / (10 + n)`` after n steps, as TensorFlow's
        ExponentialMovingAverage with ``num_updates``), so a new average is not
        dominated by the weights it started from; buffers (normalisation
        statistics) are copied, not averaged.
        """
        self.ema_updates += 1
        decay = min(self.cfg.ema, (1 + self.ema_updates) / (10 + self.ema_updates))
        torch._foreach_lerp_(list(self.ema_model.parameters()), list(self.model.parameters()), 1 - decay)
        for averaged, current in zip(self.ema_model.buffers(), self.model.buffers()):
            averaged.copy_(current)

    # ------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        """Train until ``iterations`` or ``max_minutes``; checkpoint regularly; return a summary."""
        cfg = self.cfg
        schedule = Schedule(cfg.iterations, cfg.max_minutes, cfg.checkpoint_minutes, cfg.log_every)
        return run_job(self, self.out, schedule, LOG_FIELDS, self.status, main_process=self.rank == 0,
                       checkpoint=self.out / CHECKPOINT_NAME)


if __name__ == "__main__":  # ``torchrun -m gcodec.train.loop``, the entry point before 0.5
    import runpy

    runpy.run_module("gcodec.train", run_name="__main__", alter_sys=True)
