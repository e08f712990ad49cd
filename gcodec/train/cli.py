"""``gcz train`` and ``gcz publish``: thin click commands over :mod:`.loop` and :mod:`.publish`.

Also the entry point of ``torchrun -m gcodec.train.loop`` (through :func:`gcodec.train.loop.main`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..cli_common import stderr_console, user_errors
from ..errors import GczInputError


@click.command("train")
@click.option("--out-dir", default="runs/gcz", show_default=True, help="Run folder (checkpoint, log, plots).")
@click.option("--arch", default="cpu", show_default=True, help="Architecture: paper, cpu, tiny.")
@click.option("-c", "--channels", type=int, default=4, show_default=True)
@click.option("--noise-channels", type=int, default=0, show_default=True, help="Noise v concatenated to the latent.")
@click.option("--dataset", type=click.Choice(["bundled", "folder", "openimages", "cityscapes"]), default="bundled",
              show_default=True)
@click.option("--data-root", default="data/pool", show_default=True)
@click.option("--iterations", type=int, default=280_000, show_default=True)
@click.option("--max-minutes", type=float, default=None, help="Stop (with a checkpoint) after this long.")
@click.option("--batch-size", type=int, default=1, show_default=True)
@click.option("--crop", type=int, default=256, show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True)
@click.option("--stage1-iters", type=int, default=0, show_default=True,
              help="Two-stage schedule: distortion-only iterations before the GAN (E frozen afterwards).")
@click.option("--no-gan", is_flag=True, help="Train for distortion only (MSE + perceptual).")
@click.option("--lambda-mse", type=float, default=10.0, show_default=True)
@click.option("--lambda-fm", type=float, default=10.0, show_default=True)
@click.option("--lambda-perceptual", type=float, default=10.0, show_default=True)
@click.option("--fixed-norm-after", type=float, default=0.5, show_default=True,
              help="Fraction of iterations after which G uses fixed normalisation statistics (negative: never).")
@click.option("--disc-labels", is_flag=True, help="GC (D+): feed semantic label maps to D (cityscapes).")
@click.option("--vgg-weights", default=None, help="VGG19 state dict for the paper's perceptual loss.")
@click.option("--no-perceptual", is_flag=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--bf16", is_flag=True, help="bf16 autocast (CUDA).")
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--init-from", default=None, help="Warm start: a checkpoint, a compact folder or an installed model name (e.g. gcz-c4).")
@click.option("--no-compact", is_flag=True,
              help="Do not write OUT_DIR/compact/ (half-precision parts <= 15 MiB that resume on another machine).")
def train_command(**opts: Any) -> None:
    """Train a GC model (resumes automatically from OUT_DIR/checkpoint.pt)."""
    from .loop import Trainer, TrainConfig

    fixed = opts.pop("fixed_norm_after")
    cfg = TrainConfig(gan=not opts.pop("no_gan"), perceptual=not opts.pop("no_perceptual"),
                      compact=not opts.pop("no_compact"),
                      fixed_norm_after=None if fixed < 0 else fixed, **opts)
    with user_errors():
        try:
            trainer = Trainer(cfg, status=lambda s: stderr_console().print(s, markup=False))
        except ValueError as exc:  # unknown architecture, empty dataset, ...
            raise GczInputError(str(exc)) from None
        click.echo(json.dumps(trainer.run()))


@click.command("publish")
@click.argument("checkpoint")
@click.option("--name", required=True, help="Registry name, e.g. gcz-c4.")
@click.option("--weights-dir", default=str(Path(__file__).resolve().parent.parent.parent / "weights"), show_default=True)
@click.option("--data", "data_desc", default="bundled offline photo pool (train split)", show_default=True)
@click.option("--metrics", "metrics_json", default=None, help="JSON file of measured metrics to record.")
@click.option("--replace", is_flag=True, help="Replace an already published model of that name.")
@click.option("--no-default", is_flag=True, help="Do not make it the default model for its channel count.")
@click.option("--notes", default=None, help="Free-text training notes to record (warm starts, stages).")
def publish(checkpoint: str, name: str, weights_dir: str, data_desc: str, metrics_json: str | None,
            replace: bool, no_default: bool, notes: str | None) -> None:
    """Turn a training checkpoint into a shipped weight file (int8/fp16) + manifest entry."""
    from .publish import publish_checkpoint

    with user_errors():
        entry = publish_checkpoint(Path(checkpoint), name, Path(weights_dir), data_desc,
                                   json.loads(Path(metrics_json).read_text()) if metrics_json else None,
                                   replace=replace, default=not no_default, notes=notes)
        click.echo(json.dumps(entry))
