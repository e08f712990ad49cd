"""Training throughput per configuration: ``gcz train-bench`` (a benchmark, never a timed test).

Each setup builds a real :class:`~gcodec.train.loop.Trainer` on synthetic
photo-like images (so it runs anywhere, without the photo pool), runs a few
warm-up steps, then times ``steps`` full optimisation steps (D and E/G, the
whole objective) with one device synchronisation at each end.  Reported per
setup: milliseconds per step, iterations per hour and training megapixels per
second (batch x crop^2 per step).  Writes ``train_speed.json`` and
``train_speed.md``.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

#: Synthetic training photos written for the benchmark (side, count).
PHOTO_SIDE = 320
PHOTO_COUNT = 4


@dataclass(frozen=True)
class StepSetup:
    """One configuration to time."""

    label: str
    disc: str = "patch"
    batch_size: int = 4
    crop: int = 128
    bf16: bool = False
    arch: str = "cpu"
    channels: int = 4
    gan: bool = True
    perceptual: bool = True
    freeze_encoder: bool = False
    channels_last: bool = False


#: What the CPU recipes run (``make train``'s two stages, and stage 2 with the projected D).
_CPU_RECIPES = (
    StepSetup("stage 1: rate-distortion only", gan=False, perceptual=False),
    StepSetup("stage 2: patch D + perceptual 0.1, E frozen", freeze_encoder=True),
    StepSetup("stage 2: projected D + perceptual 0.1, E frozen", disc="projected", freeze_encoder=True),
)
#: ... and each of them again with ``--channels-last``.
CPU_SETUPS = _CPU_RECIPES + tuple(replace(s, label=f"{s.label}, channels-last", channels_last=True)
                                  for s in _CPU_RECIPES)
#: What ``make train-gpu`` runs, and the alternatives measured beside it.
CUDA_SETUPS = (
    StepSetup("gpu recipe: patch D", batch_size=32, crop=256, bf16=True),
    StepSetup("gpu recipe: projected D", disc="projected", batch_size=32, crop=256, bf16=True),
    StepSetup("gpu recipe: patch D, channels-last", batch_size=32, crop=256, bf16=True, channels_last=True),
    StepSetup("paper arch, patch D", arch="paper", batch_size=8, crop=256, bf16=True),
)


def _write_photos(root: Path) -> None:
    from ..benchkit import test_image

    for i in range(PHOTO_COUNT):
        pixels = test_image(PHOTO_SIDE + 16 * i, PHOTO_SIDE)
        Image.fromarray(np.ascontiguousarray(pixels)).save(root / f"{i}.png")


def time_setup(setup: StepSetup, device: str, steps: int, warmup: int, threads: int | None,
               data_root: Path, run_dir: Path) -> dict[str, Any]:
    """Time ``steps`` training steps of one setup (its run folder: ``run_dir``); returns its row of the benchmark."""
    import torch

    from .loop import Trainer, TrainConfig

    cfg = TrainConfig(out_dir=str(run_dir), arch=setup.arch,
                      channels=setup.channels, dataset="folder", data_root=str(data_root), iterations=10**9,
                      batch_size=setup.batch_size, crop=setup.crop, lr=2e-4, gan=setup.gan,
                      perceptual=setup.perceptual, lambda_perceptual=0.1, disc=setup.disc, device=device,
                      freeze_encoder=setup.freeze_encoder,
                      bf16=setup.bf16, channels_last=setup.channels_last, threads=threads, fixed_norm_after=None,
                      compact=False, checkpoint_minutes=1e9)
    trainer = Trainer(cfg, status=lambda s: None)

    def sync() -> None:
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        trainer.step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    sync()
    per_step = (time.perf_counter() - start) / steps
    pixels = setup.batch_size * setup.crop ** 2
    return {**asdict(setup), "device": trainer.device.type, "threads": torch.get_num_threads(),
            "steps": steps, "ms_per_step": round(per_step * 1000, 1),
            "iterations_per_hour": round(3600 / per_step), "megapixels_per_s": round(pixels / per_step / 1e6, 3),
            "disc_parameters": sum(p.numel() for p in trainer.disc.parameters())}


def bench_training(out: Path, device: str = "cpu", steps: int = 20, warmup: int = 3, threads: int | None = None,
                   setups: tuple[StepSetup, ...] | None = None,
                   status: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Time every setup for ``device`` and write ``out/train_speed.json`` and ``out/train_speed.md``."""
    from ..benchkit import machine_info

    chosen = setups if setups is not None else (CUDA_SETUPS if device == "cuda" else CPU_SETUPS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data_root = Path(tmp) / "photos"
        data_root.mkdir()
        _write_photos(data_root)
        for i, setup in enumerate(chosen):
            status(f"timing {setup.label}")
            rows.append(time_setup(setup, device, steps, warmup, threads, data_root, Path(tmp) / f"run{i}"))
    result = {"machine": machine_info(), "device": device, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "train_speed.md").write_text(markdown(result))
    return result


def markdown(result: dict[str, Any]) -> str:
    """The benchmark as a Markdown table."""
    m = result["machine"]
    lines = [f"# Training throughput ({result['device']})", "",
             f"{m['processor']}, {m['cpu_count']} cores, torch {m['torch']}"
             + (f", {m['cuda']}" if m.get("cuda") else ""), "",
             "Full optimisation steps (D and E/G) on synthetic photos, after warm-up; "
             "`gcz train-bench` (gcodec/train/speed.py).", "",
             "| setup | arch | batch x crop | bf16 | channels-last | threads | ms/step | it/h | Mpx/s | D params |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['label']} | {r['arch']} C={r['channels']} | {r['batch_size']} x {r['crop']}² | "
                     f"{'yes' if r['bf16'] else 'no'} | {'yes' if r.get('channels_last') else 'no'} | "
                     f"{r['threads']} | {r['ms_per_step']} | "
                     f"{r['iterations_per_hour']:,} | {r['megapixels_per_s']} | {r['disc_parameters']:,} |")
    return "\n".join(lines) + "\n"
