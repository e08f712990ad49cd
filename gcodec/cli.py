"""The ``gcz`` command line: parse arguments, call the library, print with rich.

Every failure the user can cause ends as one ``gcz: error: ...`` line on
stderr and a non-zero exit; set ``GCZ_DEBUG=1`` to see tracebacks.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import GczError, GczInputError

err_console = Console(stderr=True, highlight=False)
STDIO = "-"


def fail(message: str, code: int = 1) -> None:
    """Print one error line and exit."""
    err_console.print(f"gcz: error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn library and OS errors into one-line messages at the CLI boundary."""
    try:
        yield
    except GczError as exc:
        fail(str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except (click.exceptions.Exit, click.ClickException, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - never show a traceback to users
        if os.environ.get("GCZ_DEBUG"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc} (GCZ_DEBUG=1 shows details)", 2)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``."""
    if device != "auto":
        if device == "cuda":
            import torch
            if not torch.cuda.is_available():
                raise GczInputError("--device cuda requested but no CUDA device is available")
        return device
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


# ------------------------------------------------------------------ files
def read_input(name: str) -> bytes:
    """Bytes of a file, or of stdin for ``-``."""
    if name == STDIO:
        return sys.stdin.buffer.read()
    path = Path(name)
    if not path.exists():
        raise GczInputError(f"{name}: no such file")
    if path.is_dir():
        raise GczInputError(f"{name}: is a directory")
    try:
        return path.read_bytes()
    except PermissionError:
        raise GczInputError(f"{name}: permission denied") from None


def output_path(inp: str, output: str | None, suffix: str, many: bool) -> str:
    """Where the result of ``inp`` goes: ``-``, a file, or ``DIR/<stem><suffix>``."""
    if output == STDIO:
        return STDIO
    stem = "stdin" if inp == STDIO else Path(inp).stem
    if output is None:
        return STDIO if inp == STDIO else str(Path(inp).with_name(stem + suffix))
    if many or Path(output).is_dir() or output.endswith(os.sep):
        return str(Path(output) / (stem + suffix))
    return output


def check_writable(target: str, force: bool) -> None:
    """Refuse to overwrite without ``--force``; check the folder exists."""
    if target == STDIO:
        return
    path = Path(target)
    if path.exists() and not force:
        raise GczInputError(f"{target} exists (use --force to overwrite)")
    if path.is_dir():
        raise GczInputError(f"{target} is a directory")
    if not path.parent.exists():
        raise GczInputError(f"{path.parent}: no such directory")


def write_output(target: str, data: bytes) -> None:
    """Write atomically (temp file + rename), or to stdout; no partial file is ever left."""
    if target == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    path = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give outputs the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass
class Job:
    """One input to process and where its result goes."""

    source: str
    target: str


def plan_jobs(inputs: tuple[str, ...], output: str | None, suffix: str, force: bool) -> list[Job]:
    """Resolve every input's target and check all targets before any work starts."""
    many = len(inputs) > 1
    if inputs.count(STDIO) > 1:
        raise GczInputError("stdin ('-') can be given only once")
    if many and output == STDIO:
        raise GczInputError("-o - (stdout) takes a single input")
    if many and output is not None and not Path(output).is_dir():
        raise GczInputError(f"with several inputs, -o must be an existing directory: {output}")
    jobs = [Job(i, output_path(i, output, suffix, many)) for i in inputs]
    targets = [j.target for j in jobs if j.target != STDIO]
    if len(set(targets)) != len(targets):
        raise GczInputError("several inputs would write the same output file")
    for job in jobs:
        check_writable(job.target, force)
    return jobs


def run_jobs(jobs: list[Job], work: Callable[[Job], dict[str, Any]], as_json: bool, title: str) -> None:
    """Run jobs with a progress bar (several inputs), a summary table or JSON lines; exit 1 on any failure."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    records: list[dict[str, Any]] = []
    failures = 0
    show_bar = len(jobs) > 1 and err_console.is_terminal
    progress = Progress(TextColumn(f"[bold]{title}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TimeElapsedColumn(), console=err_console, transient=True, disable=not show_bar)
    with progress:
        task = progress.add_task(title, total=len(jobs))
        for job in jobs:
            try:
                with user_errors_record() as caught:
                    record = work(job)
                    records.append(record)
                    if as_json:
                        click.echo(json.dumps(record))
            finally:
                progress.advance(task)
            if caught.message:
                failures += 1
                if not caught.message.startswith(job.source):
                    caught.message = f"{job.source}: {caught.message}"
                err_console.print(f"gcz: error: {caught.message}", markup=False, highlight=False, soft_wrap=True)
                if as_json:
                    click.echo(json.dumps({"input": job.source, "error": caught.message}))
    if len(jobs) > 1 and not as_json and records:
        table = Table(title=f"gcz {title}")
        for key in records[0]:
            table.add_column(key, justify="right" if key not in ("input", "output", "model") else "left")
        for rec in records:
            table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in rec.values()))
        err_console.print(table)
    if failures:
        sys.exit(1)


class _Caught:
    message: str | None = None


@contextmanager
def user_errors_record() -> Iterator[_Caught]:
    """Like :func:`user_errors` but records the message so a batch can go on."""
    caught = _Caught()
    try:
        yield caught
    except GczError as exc:
        caught.message = str(exc)
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        caught.message = f"{where}{exc.strerror or exc}"
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("GCZ_DEBUG"):
            raise
        caught.message = f"internal error: {type(exc).__name__}: {exc}"


# ------------------------------------------------------------------ commands
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gcz")
def main() -> None:
    """gcz: generative image compression at extreme bitrates (0.02-0.1 bpp)."""


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output file, directory, or - for stdout.")
@click.option("-c", "--channels", type=int, default=None, help="Latent channels: 2, 4 (default) or 8.")
@click.option("-m", "--model", help="Model name (see 'gcz models'); overrides --channels' default.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON record per file.")
def compress(inputs: tuple[str, ...], output: str | None, channels: int | None, model: str | None,
             device: str, force: bool, as_json: bool) -> None:
    """Compress images to .gcz files."""
    from .codec import compress_loaded, resolve_model
    from .imageio import load_image

    with user_errors():
        if as_json and output == STDIO:
            raise GczInputError("--json cannot be combined with -o - (stdout carries the file)")
        entry = resolve_model(channels, model)
        dev = resolve_device(device)
        jobs = plan_jobs(inputs, output, ".gcz", force)

    def work(job: Job) -> dict[str, Any]:
        raw = read_input(job.source)
        image = load_image(raw if job.source == STDIO else Path(job.source))
        for note in image.notes:
            err_console.print(f"gcz: warning: {job.source}: {note}", markup=False)
        t0 = time.perf_counter()
        data = compress_loaded(image, entry, dev)
        seconds = time.perf_counter() - t0
        write_output(job.target, data)
        return {"input": job.source, "output": job.target, "width": image.width, "height": image.height,
                "bytes": len(data), "bpp": len(data) * 8 / (image.width * image.height),
                "model": entry.name, "seconds": round(seconds, 3)}

    with user_errors():
        run_jobs(jobs, work, as_json, "compress")


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output file, directory, or - for stdout.")
@click.option("--format", "fmt", default=None, help="Image format: png (default), jpg, webp, bmp, tiff, ppm.")
@click.option("--seed", type=int, default=None, help="Noise seed for models with a noise input.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON record per file.")
def decompress(inputs: tuple[str, ...], output: str | None, fmt: str | None, seed: int | None,
               device: str, force: bool, as_json: bool) -> None:
    """Decompress .gcz files to images."""
    from .codec import decompress as decode
    from .imageio import SAVE_FORMATS, encode_image

    with user_errors():
        if as_json and output == STDIO:
            raise GczInputError("--json cannot be combined with -o - (stdout carries the image)")
        if fmt is None:
            suffix = Path(output).suffix.lower().lstrip(".") if output and output != STDIO and len(inputs) == 1 else ""
            fmt = suffix if suffix in SAVE_FORMATS else "png"
        if fmt.lower() not in SAVE_FORMATS:
            raise GczInputError(f"unknown output format {fmt!r}; use one of {', '.join(SAVE_FORMATS)}")
        dev = resolve_device(device)
        jobs = plan_jobs(inputs, output, "." + fmt.lower(), force)

    def work(job: Job) -> dict[str, Any]:
        data = read_input(job.source)
        t0 = time.perf_counter()
        image = decode(data, device=dev, seed=seed)
        seconds = time.perf_counter() - t0
        write_output(job.target, encode_image(image, fmt))
        return {"input": job.source, "output": job.target, "width": image.width, "height": image.height,
                "seconds": round(seconds, 3)}

    with user_errors():
        run_jobs(jobs, work, as_json, "decompress")


@main.command()
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(file: str, as_json: bool) -> None:
    """Show a .gcz file's header and sections (runs no network)."""
    from . import container, zoo

    with user_errors():
        data = read_input(file)
        gcz = container.read(data)
        sections = container.read_sections(data)
        try:
            entry = zoo.find_model(gcz.model_name, gcz.model_hash)
            installed = True
        except GczError:
            entry, installed = None, False
        pixels = gcz.width * gcz.height
        record = {
            "file": file, "format_version": data[len(container.MAGIC)], "bytes": len(data),
            "bpp": len(data) * 8 / pixels, "width": gcz.width, "height": gcz.height,
            "model": f"{gcz.model_name}@{gcz.model_hash.hex()}", "model_installed": installed,
            "channels": gcz.channels, "levels": gcz.levels, "downsampling": gcz.downsampling,
            "latent_shape": list(gcz.latent_shape), "table_precision": gcz.tables.precision,
            "payload_bytes": len(gcz.payload),
            "sections": [{"type": s.type, "name": s.name, "critical": s.critical, "bytes": len(s.body)}
                         for s in sections],
        }
        if entry is not None:
            record["bpp_bound"] = entry.bpp_bound
        if as_json:
            click.echo(json.dumps(record))
            return
        table = Table(show_header=False, title=file)
        for key, value in record.items():
            if key == "sections":
                value = ", ".join(f"{s['name']}({s['bytes']} B{', critical' if s['critical'] else ''})"
                                  for s in value)
            table.add_row(key, f"{value:.5f}" if isinstance(value, float) else str(value))
        Console().print(table)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(as_json: bool) -> None:
    """List installed models."""
    from . import zoo

    with user_errors():
        rows = []
        for e in zoo.list_models():
            size = e.path.stat().st_size if e.path.is_file() else None
            rows.append({"name": e.name, "id": f"{e.name}@{e.hash_prefix.hex()}", "channels": e.arch.latent_channels,
                         "bpp_bound": round(e.bpp_bound, 4), "size_bytes": size,
                         "iterations": e.info.get("training", {}).get("iterations"),
                         "measured_bpp": e.info.get("metrics", {}).get("bpp"), "path": str(e.path)})
        if as_json:
            click.echo(json.dumps(rows))
            return
        table = Table(title="gcz models")
        for col in ("id", "channels", "bpp bound", "measured bpp", "size", "iterations"):
            table.add_column(col)
        for r in rows:
            size = f"{r['size_bytes'] / 2**20:.1f} MiB" if r["size_bytes"] else "missing"
            table.add_row(r["id"], str(r["channels"]), f"{r['bpp_bound']:.4f}",
                          "-" if r["measured_bpp"] is None else f"{r['measured_bpp']:.4f}", size,
                          str(r["iterations"] or "-"))
        Console().print(table)


@main.command()
@click.option("--onnx", "onnx_dir", required=True, help="Directory for encoder.onnx and generator.onnx.")
@click.option("-c", "--channels", type=int, default=None, help="Export the default model of C channels.")
@click.option("-m", "--model", help="Model name.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing files.")
def export(onnx_dir: str, channels: int | None, model: str | None, force: bool) -> None:
    """Export a model's encoder and generator as ONNX."""
    from .codec import resolve_model
    from .export import export_onnx

    with user_errors():
        entry = resolve_model(channels, model)
        paths = export_onnx(entry, Path(onnx_dir), force=force)
        for p in paths:
            click.echo(str(p))


@main.group()
def data() -> None:
    """Training data: fetch the offline photo pool."""


@data.command("fetch")
@click.option("--root", default="data/pool", show_default=True, help="Where the pool goes.")
@click.option("--cache", default=None, help="Folder for downloaded .deb files (default ROOT/debs).")
def data_fetch(root: str, cache: str | None) -> None:
    """Download and extract the offline training photos (Debian packages)."""
    from .data import fetch_photo_pool

    with user_errors():
        summary = fetch_photo_pool(Path(root), cache=Path(cache) if cache else None,
                                   progress=lambda s: err_console.print(s, markup=False))
        click.echo(json.dumps(summary))


@main.command("train")
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
@click.option("--init-from", default=None, help="Warm start from a checkpoint (any channel count).")
def train_command(**opts: Any) -> None:
    """Train a GC model (resumes automatically from OUT_DIR/checkpoint.pt)."""
    from .train.loop import Trainer, TrainConfig

    fixed = opts.pop("fixed_norm_after")
    cfg = TrainConfig(gan=not opts.pop("no_gan"), perceptual=not opts.pop("no_perceptual"),
                      fixed_norm_after=None if fixed < 0 else fixed, **opts)
    with user_errors():
        try:
            trainer = Trainer(cfg, status=lambda s: err_console.print(s, markup=False))
        except ValueError as exc:  # unknown architecture, empty dataset, ...
            raise GczInputError(str(exc)) from None
        click.echo(json.dumps(trainer.run()))


@main.command()
@click.argument("checkpoint")
@click.option("--name", required=True, help="Registry name, e.g. gcz-c4.")
@click.option("--weights-dir", default=str(Path(__file__).resolve().parent.parent / "weights"), show_default=True)
@click.option("--data", "data_desc", default="bundled offline photo pool (train split)", show_default=True)
@click.option("--metrics", "metrics_json", default=None, help="JSON file of measured metrics to record.")
@click.option("--replace", is_flag=True, help="Replace an already published model of that name.")
@click.option("--no-default", is_flag=True, help="Do not make it the default model for its channel count.")
@click.option("--notes", default=None, help="Free-text training notes to record (warm starts, stages).")
def publish(checkpoint: str, name: str, weights_dir: str, data_desc: str, metrics_json: str | None,
            replace: bool, no_default: bool, notes: str | None) -> None:
    """Turn a training checkpoint into a shipped weight file (int8/fp16) + manifest entry."""
    from .train.publish import publish_checkpoint

    with user_errors():
        entry = publish_checkpoint(Path(checkpoint), name, Path(weights_dir), data_desc,
                                   json.loads(Path(metrics_json).read_text()) if metrics_json else None,
                                   replace=replace, default=not no_default, notes=notes)
        click.echo(json.dumps(entry))


def _register_optional_commands() -> None:
    """Attach commands that live in their own packages (evaluation, benchmarks)."""
    try:
        from .eval.cli import bench_command, eval_command
    except ImportError:
        return
    main.add_command(eval_command, "eval")
    main.add_command(bench_command, "bench")


_register_optional_commands()

if __name__ == "__main__":
    main()
