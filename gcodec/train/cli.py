"""``gcz train`` and ``gcz publish``: thin click commands over :mod:`.loop` and :mod:`.publish`.

Also the entry point of ``torchrun -m gcodec.train`` (:func:`main`, through ``gcodec/train/__main__.py``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..cli_common import stderr_console, user_errors
from ..errors import GczInputError
from ..zoo import SHIPPED_DIR

_WEIGHTS_DIR = str(SHIPPED_DIR)


@click.command("train")
@click.option("--out-dir", default="runs/gcz", show_default=True, help="Run folder (checkpoint, log, plots).")
@click.option("--mode", type=click.Choice(["gc", "sc"]), default="gc", show_default=True,
              help="gc: generative compression; sc: selective compression (1/8 latents, label-map encoder, "
                   "RI/RB heatmaps, distortion masked to the preserved region).")
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
@click.option("--freeze-encoder", is_flag=True, help="Keep E fixed throughout (fine-tune G of a trained model).")
@click.option("--distortion-pool", type=int, default=1, show_default=True,
              help="MSE between k x k average-pooled images: pins layout and colour, leaves texture to the GAN.")
@click.option("--lambda-lowpass", type=float, default=0.0, show_default=True,
              help="Weight of an extra MSE between the --lowpass-pool block means of x and x^: holds colours, "
                   "which the GAN and perceptual terms barely see (100 with the projected D).")
@click.option("--lowpass-pool", type=int, default=16, show_default=True,
              help="Block side of --lambda-lowpass (16 = one latent cell).")
@click.option("--lambda-diversity", type=float, default=0.0, show_default=True,
              help="Stochastic G (--noise-channels): reward two noise draws for differing.")
@click.option("--diversity-margin", type=float, default=0.06, show_default=True,
              help="Mean absolute difference (in [-1, 1] units) up to which two draws are rewarded.")
@click.option("--diversity-scale", type=int, default=1, show_default=True,
              help="Count only differences of k x k block means (k divides --distortion-pool): no pixel noise.")
@click.option("--disc", type=click.Choice(["patch", "projected"]), default="patch", show_default=True,
              help="patch: multi-scale PatchGAN on pixels (docs/method.md); projected: patch heads on randomly "
                   "projected features of the frozen perceptual network (Projected GANs), which reuses the "
                   "perceptual loss's features.")
@click.option("--disc-labels", is_flag=True, help="GC (D+): feed semantic label maps to D (cityscapes).")
@click.option("--num-classes", type=int, default=34, show_default=True,
              help="Label classes of datasets with label maps (D+, SC on cityscapes).")
@click.option("--sc-codebook", default=None,
              help="SC on unlabelled photos: label codebook JSON for automatic label maps (default: shipped).")
@click.option("--sc-instance-fraction", type=float, default=0.25, show_default=True,
              help="SC random-instance mode: share of label regions preserved.")
@click.option("--vgg-weights", default=None, help="VGG19 state dict for the paper's perceptual loss.")
@click.option("--no-perceptual", is_flag=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--bf16", is_flag=True, help="bf16 autocast (CUDA).")
@click.option("--channels-last", is_flag=True,
              help="Networks in channels-last memory layout (same values; on the CPU the projected-D stage "
                   "runs 6-27 % faster, the others about as fast: bench/train_speed.md).")
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--init-from", default=None, help="Warm start: a checkpoint, a compact folder or an installed model name (e.g. gcz-c4).")
@click.option("--ema", type=float, default=0.0, show_default=True,
              help="Keep a moving average of E/G's weights with this decay per step (e.g. 0.999; 0: none); "
                   "gcz publish ships the average, which smooths the GAN's step-to-step swings.")
@click.option("--upsample", type=click.Choice(["transposed", "resize"]), default="transposed", show_default=True,
              help="G's 2x upsampling: transposed convolutions (the paper's; they draw a 2-16 px grid) or resize "
                   "(nearest 2x, then a 3x3 convolution).  --init-from a transposed model with resize fits the new "
                   "layers to the old ones on training crops before the first step.")
@click.option("--lambda-grid", type=float, default=0.0, show_default=True,
              help="Weight of the grid penalty: log of the reconstruction's periodic energy at 2/4/8/16 px over "
                   "the original's, where above 1 (gcodec.grid).")
@click.option("--no-compact", is_flag=True,
              help="Do not write OUT_DIR/compact/ (half-precision parts <= 15 MiB that resume on another machine).")
def train_command(**opts: Any) -> None:
    """Train a GC or SC model (resumes automatically from OUT_DIR/checkpoint.pt)."""
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
@click.option("--weights-dir", default=_WEIGHTS_DIR, show_default=True)
@click.option("--data", "data_desc", default="bundled offline photo pool (train split)", show_default=True)
@click.option("--metrics", "metrics_json", default=None, help="JSON file of measured metrics to record.")
@click.option("--replace", is_flag=True, help="Replace an already published model of that name.")
@click.option("--no-default", is_flag=True, help="Do not make it the default model for its channel count.")
@click.option("--notes", default=None, help="Free-text training notes to record (warm starts, stages).")
@click.option("--weights", "which", type=click.Choice(["auto", "average", "current"]), default="auto",
              show_default=True, help="average: the run's moving average of the weights (gcz train --ema); "
                                      "current: the last step's; auto: the average where the run kept one.")
def publish(checkpoint: str, name: str, weights_dir: str, data_desc: str, metrics_json: str | None,
            replace: bool, no_default: bool, notes: str | None, which: str) -> None:
    """Turn a training checkpoint into a shipped weight file (int8/fp16) + manifest entry."""
    from .publish import publish_checkpoint

    with user_errors():
        entry = publish_checkpoint(Path(checkpoint), name, Path(weights_dir), data_desc,
                                   json.loads(Path(metrics_json).read_text()) if metrics_json else None,
                                   replace=replace, default=not no_default, notes=notes, weights=which)
        click.echo(json.dumps(entry))


@click.command("train-realism")
@click.option("-m", "--model", required=True, help="Installed model whose GAN decoder gets the head, e.g. gcz-c4.")
@click.option("--out-dir", required=True, help="Run folder (head.pt, log.csv); rerunning resumes.")
@click.option("--data-root", default="data/pool", show_default=True)
@click.option("--dataset", type=click.Choice(["bundled", "folder"]), default="bundled", show_default=True)
@click.option("--iterations", type=int, default=20_000, show_default=True)
@click.option("--max-minutes", type=float, default=None, help="Stop (with a checkpoint) after this long.")
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--crop", type=int, default=192, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
def train_realism_command(**opts: Any) -> None:
    """Train an ORP realism head (EGIC) for an installed model; E and G stay frozen."""
    from .realism import RealismTrainConfig, train_head

    with user_errors():
        try:
            click.echo(json.dumps(train_head(RealismTrainConfig(**opts),
                                             status=lambda s: stderr_console().print(s, markup=False))))
        except (ValueError, FileNotFoundError) as exc:
            raise GczInputError(str(exc)) from None


@click.command("train-encoder")
@click.option("-m", "--model", required=True, help="Installed model whose encoder is fine-tuned, e.g. gcz-c4-v2.")
@click.option("--out-dir", required=True, help="Run folder (encoder.pt, log.csv); rerunning resumes.")
@click.option("--data-root", default="data/pool", show_default=True)
@click.option("--dataset", type=click.Choice(["bundled", "folder"]), default="bundled", show_default=True)
@click.option("--iterations", type=int, default=50_000, show_default=True)
@click.option("--max-minutes", type=float, default=None, help="Stop (with a checkpoint) after this long.")
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--crop", type=int, default=256, show_default=True)
@click.option("--lr", type=float, default=3e-5, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
def train_encoder_command(**opts: Any) -> None:
    """Fine-tune a model's encoder on the encode-time refinement's objective (G frozen): an amortised
    encoder, shipped as the model's encoder head, so that fast encodes need few or no refinement steps."""
    from .encoder import EncoderTrainConfig, train_encoder

    with user_errors():
        try:
            click.echo(json.dumps(train_encoder(EncoderTrainConfig(**opts),
                                                status=lambda s: stderr_console().print(s, markup=False))))
        except (ValueError, FileNotFoundError) as exc:
            raise GczInputError(str(exc)) from None


@click.command("train-sampler")
@click.option("-m", "--model", required=True, help="Installed model whose codes are learned, e.g. gcz-c4.")
@click.option("--out-dir", required=True, help="Run folder (sampler.pt, codes.pt, log.csv); rerunning resumes.")
@click.option("--data-root", default="data/pool", show_default=True)
@click.option("--dataset", type=click.Choice(["bundled", "folder"]), default="bundled", show_default=True)
@click.option("--iterations", type=int, default=20_000, show_default=True, help="Generator steps.")
@click.option("--max-minutes", type=float, default=None, help="Stop (with a checkpoint) after this long.")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--crop", type=int, default=16, show_default=True, help="Latent window side (x16 image pixels).")
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
def train_sampler_command(**opts: Any) -> None:
    """Train a latent sampler (WGAN-GP on the model's codes of the training photos)."""
    from .sampler import SamplerTrainConfig, train_sampler

    with user_errors():
        try:
            click.echo(json.dumps(train_sampler(SamplerTrainConfig(**opts),
                                                status=lambda s: stderr_console().print(s, markup=False))))
        except (ValueError, FileNotFoundError) as exc:
            raise GczInputError(str(exc)) from None


@click.command("publish-head")
@click.argument("run_dir")
@click.option("--weights-dir", default=_WEIGHTS_DIR, show_default=True)
@click.option("--data", "data_desc", default="bundled offline photo pool (train split)", show_default=True)
@click.option("--metrics", "metrics_json", default=None, help="JSON file of measured metrics to record.")
@click.option("--notes", default=None, help="Free-text training notes to record.")
def publish_head_command(run_dir: str, weights_dir: str, data_desc: str, metrics_json: str | None,
                         notes: str | None) -> None:
    """Ship a train-realism / train-sampler run beside its model (fp16 file + manifest entry)."""
    from .publish import publish_head

    with user_errors():
        metrics = json.loads(Path(metrics_json).read_text()) if metrics_json else None
        click.echo(json.dumps(publish_head(Path(run_dir), Path(weights_dir), data_desc, metrics, notes)))


@click.command("train-bench")
@click.option("--out", "out_dir", default="bench", show_default=True,
              help="Folder for train_speed.json / train_speed.md.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="cpu times the CPU recipes; cuda the GPU recipe (batch 32 of 256 px, bf16) and alternatives.")
@click.option("--steps", type=int, default=20, show_default=True, help="Timed steps per setup.")
@click.option("--warmup", type=int, default=3, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
def train_bench_command(out_dir: str, device: str, steps: int, warmup: int, threads: int | None) -> None:
    """Training throughput per setup: ms per step, it/h, training Mpx/s (a benchmark, not a test)."""
    from .speed import bench_training, markdown

    with user_errors():
        if steps < 1 or warmup < 0:
            raise GczInputError("--steps must be >= 1 and --warmup >= 0")
        if device == "cuda":
            import torch
            if not torch.cuda.is_available():
                raise GczInputError("--device cuda: no CUDA device here")
        with stderr_console().status("timing training steps") as status:
            result = bench_training(Path(out_dir), device, steps, warmup, threads, status=status.update)
        click.echo(markdown(result))


@click.command("gpu-kit")
@click.option("--out", "out_dir", default=".gpu-kit", show_default=True, help="Kit folder (replaced; git-ignored).")
@click.option("--pool", default="data/pool", show_default=True, help="The photo pool (gcz data fetch).")
@click.option("--run", "run_dir", default=None, help="Run folder whose compact checkpoint a burst continues "
                                                     "(e.g. runs/gpu-c4); without it the burst warm-starts.")
@click.option("--no-wheels", is_flag=True, help="Skip downloading the wheels the GPU image lacks.")
def gpu_kit_command(out_dir: str, pool: str, run_dir: str | None, no_wheels: bool) -> None:
    """Prepare what a GPU burst carries (wheels, feature weights, photos, resume point) and check it fits."""
    from .gpu_kit import TRANSFER_LIMIT, build_kit

    with user_errors():
        if run_dir is not None and not Path(run_dir).is_dir():
            raise GczInputError(f"--run {run_dir}: no such run folder")
        with stderr_console().status("building the GPU kit") as status:
            summary = build_kit(Path(out_dir), Path(pool), Path(run_dir) if run_dir else None, repo=Path("."),
                                wheels=not no_wheels, status=status.update)
        click.echo(json.dumps(summary))
        if not summary.get("fits", True):
            stderr_console().print(
                f"warning: the tree and the kit are {summary['transfer_bytes'] / 2**20:.1f} MiB, over the device's "
                f"{TRANSFER_LIMIT // 2**20} MiB: run 'make device-slim' first (docs/training.md, Training on GPU bursts)",
                markup=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point for ``torchrun -m gcodec.train`` (same options as ``gcz train``)."""
    train_command.main(args=argv, prog_name="gcz train", standalone_mode=True)
