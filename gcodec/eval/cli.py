"""``gcz eval`` and ``gcz bench``: thin click commands over :mod:`.runner`, :mod:`.report` and :mod:`.bench`."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ..cli_common import encode_options, resolve_device, stderr_console, user_errors
from ..errors import GczInputError


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _channels(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in _csv(text))
    except ValueError:
        raise GczInputError(f"--channels takes comma-separated integers, not {text!r}") from None


@click.command("eval")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, help="Results folder (rerunning resumes).")
@click.option("-c", "--channels", default="2,4,8", show_default=True, help="gcz models, by latent channels.")
@click.option("--codecs", default="heic,avif,jxl,webp,jp2,jpeg", show_default=True, help="Peer codecs.")
@click.option("--match", "matches", default="same,double", show_default=True,
              help="Peer byte targets: gcz's bytes (same) and/or twice them (double).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto (gcz only).")
@click.option("--patch", type=int, default=256, show_default=True, help="Patch size for KID/FID (128-256).")
@click.option("--no-kid", is_flag=True, help="Skip the patch features (KID/FID).")
@click.option("--no-ssimulacra2", is_flag=True, help="Skip SSIMULACRA2 (about 1 s per image and codec).")
@click.option("--tolerance", type=float, default=0.05, show_default=True,
              help="Relative size error within which a peer reaches its byte target.")
@click.option("--split", default=None, help="Take a folder's images of this split of its index.json (e.g. val).")
@click.option("--max-side", type=int, default=None, help="Downscale images to this longer side first (e.g. 768).")
@click.option("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy machine).")
@encode_options
def eval_command(inputs: tuple[str, ...], out_dir: str, channels: str, codecs: str, matches: str, device: str,
                 patch: int, no_kid: bool, no_ssimulacra2: bool, tolerance: float, split: str | None,
                 max_side: int | None, threads: int | None, colour: bool, context: bool,
                 effort: int | None, refine_steps: int | None) -> None:
    """Compare gcz with engineered codecs at matched file sizes (folders or image files)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import metrics, report, runner

    with user_errors():
        if threads:
            import torch
            torch.set_num_threads(threads)
        if not 32 <= patch <= 1024:
            raise GczInputError("--patch must be between 32 and 1024")
        ssim2 = not no_ssimulacra2 and metrics.ssimulacra2_available()
        cfg = runner.EvalConfig(
            inputs=runner.collect_images(inputs, split), out=Path(out_dir), channels=_channels(channels),
            codecs=_csv(codecs), matches=_csv(matches), device=resolve_device(device), ssimulacra2=ssim2,
            kid=not no_kid, patch=patch, tolerance=tolerance, max_side=max_side,
            colour=colour, context=context, effort=effort, refine=refine_steps)
        if not no_ssimulacra2 and not ssim2:
            stderr_console().print("note: SSIMULACRA2 skipped (pip install ssimulacra2)", markup=False)
        progress = Progress(TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.description}"), TimeElapsedColumn(), console=stderr_console(),
                            transient=True)
        with progress:
            task = progress.add_task("", total=runner.total_units(cfg))
            outcome = runner.run_eval(cfg, lambda desc, n: progress.update(task, advance=n, description=desc))
        for note in outcome.notes:
            stderr_console().print(f"note: {note}", markup=False)
        command = " ".join(["gcz eval", *map(shlex.quote, inputs), *(["--split", split] if split else []),
                            *(["--max-side", str(max_side)] if max_side else []), "--channels", channels,
                            "--codecs", codecs, "--match", matches, "--patch", str(patch),
                            *(["--no-kid"] if no_kid else []),
                            *(["--no-ssimulacra2"] if no_ssimulacra2 else []), *([] if colour else ["--no-colour"]),
                            *([] if context else ["--no-context"]),
                            *(["--effort", str(effort)] if effort is not None else []),
                            *(["--refine", str(refine_steps)] if refine_steps is not None else []),
                            "--out", shlex.quote(out_dir)])
        rep = report.build_report(cfg.out, command=command)
        console = Console()
        (console if console.is_terminal else Console(width=200)).print(report.rich_table(rep.summary))
        stderr_console().print(f"{outcome.computed} rows computed, {outcome.skipped} resumed; "
                          f"open {rep.files['index']}", markup=False)


@click.command("bench")
@click.option("--out", "out_dir", default="bench", show_default=True, help="Folder for results.json / results.md.")
@click.option("-c", "--channels", type=int, default=4, show_default=True, help="Benchmark the default C model.")
@click.option("--quick", is_flag=True, help="Skip 4096x4096 (768x512 and 2048x2048 only).")
@click.option("--sizes", default=None, help="Override sizes, e.g. 768x512,4096x4096.")
@click.option("--backends", default="torch-cpu,onnx-cpu,torch-cuda", show_default=True)
@click.option("--codecs", default="heic,avif,jxl,webp,jp2,jpeg", show_default=True, help="Peers to time.")
@click.option("--threads", type=int, default=None, help="CPU threads for torch and ONNX Runtime.")
@click.option("--image", default=None, help="Photo resized to every size (default: examples/mountain.jpg).")
@click.option("--no-processes", is_flag=True, help="Skip whole-process timings (gcz CLI vs heif-convert).")
@click.option("--knobs", is_flag=True,
              help="Only the decode cost of realism and seeds (writes OUT/knobs.json and OUT/knobs.md).")
def bench_command(out_dir: str, channels: int, quick: bool, sizes: str | None, backends: str, codecs: str,
                  threads: int | None, image: str | None, no_processes: bool, knobs: bool) -> None:
    """Speed, peak memory and entropy-coding benchmarks (writes OUT/results.json)."""
    from . import bench, peers

    with user_errors():
        if knobs:
            from .knob_bench import bench_knobs

            with stderr_console().status("benchmarking realism and seeds"):
                bench_knobs(Path(out_dir))
            click.echo((Path(out_dir) / "knobs.md").read_text())
            return
        for name in _csv(codecs):
            peers.get_peer(name)
        chosen = _csv(backends)
        unknown = set(chosen) - {"torch-cpu", "onnx-cpu", "torch-cuda"}
        if unknown:
            raise GczInputError(f"unknown backend(s): {', '.join(sorted(unknown))}")
        chosen_sizes = bench.parse_sizes(sizes) if sizes else (bench.QUICK_SIZES if quick else bench.FULL_SIZES)
        cfg = bench.BenchConfig(
            out=Path(out_dir), channels=channels, sizes=chosen_sizes,
            backends=chosen, peers=_csv(codecs), threads=threads, image=Path(image) if image else None,
            processes=not no_processes,
            refine_sizes=tuple(s for s in chosen_sizes if s[0] * s[1] <= bench.REFINE_MAX_PIXELS))
        with stderr_console().status("benchmarking") as status:
            res = bench.run_bench(cfg, lambda s: status.update(s))
        console = Console()
        if console.is_terminal:
            from rich.markdown import Markdown
            console.print(Markdown(bench.markdown(res)))
        else:
            click.echo(bench.markdown(res))
        stderr_console().print(f"wrote {cfg.out / 'results.json'} and {cfg.out / 'results.md'}", markup=False)


@click.group("prefs")
def prefs_command() -> None:
    """Blind two-alternative preference tests (sheets for raters, key kept apart, scores)."""


@prefs_command.command("sheets")
@click.option("--original", required=True, help="Folder of originals.")
@click.option("--a", "method_a", required=True, help="Folder of reconstructions by method A (same file names).")
@click.option("--b", "method_b", required=True, help="Folder of reconstructions by method B.")
@click.option("--names", default="A,B", show_default=True, help="What A and B are (written to the key only).")
@click.option("--out", "out_dir", required=True, help="Writes OUT/sheets/ (for raters) and OUT/key.json (not).")
@click.option("--crop", type=int, default=384, show_default=True, help="Side of the 1:1 crop.")
@click.option("--seed", type=int, default=0, show_default=True)
def prefs_sheets(original: str, method_a: str, method_b: str, names: str, out_dir: str, crop: int,
                 seed: int) -> None:
    """Write one sheet per image: original on top, A and B below in random left/right order."""
    from .preference import make_sheets

    with user_errors():
        pair = tuple(_csv(names))
        if len(pair) != 2:
            raise GczInputError("--names takes two comma-separated names")
        key = make_sheets(Path(original), Path(method_a), Path(method_b), Path(out_dir), pair, crop, seed)
        click.echo(f"{len(key['sheets'])} sheets in {Path(out_dir) / 'sheets'}; key in {Path(out_dir) / 'key.json'} "
                   "(do not show it to raters)")


@prefs_command.command("score")
@click.argument("key")
@click.argument("answers", nargs=-1, required=True)
def prefs_score(key: str, answers: tuple[str, ...]) -> None:
    """Score answer files (lines '<sheet> left|right') against the key: preference rate, 95 % interval."""
    import json

    from .preference import score_files

    with user_errors():
        for row in score_files(Path(key), [Path(a) for a in answers]):
            click.echo(json.dumps(row))


@click.group("sweep")
def sweep_command() -> None:
    """Measure the decoder's knobs (realism, seeds, sampled codes) and selective compression."""


def _sweep_inputs(command: Any) -> Any:
    command = click.option("--max-side", type=int, default=768, show_default=True,
                           help="Downscale images to this longer side first.")(command)
    command = click.option("--split", default=None, help="Take a folder's images of this split (e.g. val).")(command)
    command = click.option("--out", "out_dir", required=True, help="Results folder.")(command)
    return click.argument("inputs", nargs=-1, required=True)(command)


def _print_json(summary: dict) -> None:
    import json

    click.echo(json.dumps(summary, indent=2))


@sweep_command.command("realism")
@_sweep_inputs
@click.option("-m", "--model", default="gcz-c4", show_default=True)
@click.option("--alphas", default="0,0.25,0.5,0.75,1", show_default=True, help="Realism values.")
@click.option("--patch", type=int, default=256, show_default=True, help="Patch size for KID/FID.")
@click.option("--no-kid", is_flag=True, help="Skip the patch features (KID/FID).")
def sweep_realism(inputs: tuple[str, ...], out_dir: str, split: str | None, max_side: int, model: str,
                  alphas: str, patch: int, no_kid: bool) -> None:
    """PSNR, MS-SSIM, KID/FID of one model at several realism values."""
    from . import runner, sweeps

    with user_errors():
        try:
            values = [float(a) for a in _csv(alphas)]
        except ValueError:
            raise GczInputError(f"--alphas takes comma-separated numbers, not {alphas!r}") from None
        images = runner.collect_images(inputs, split)
        _print_json(sweeps.realism_sweep(images, model, values, Path(out_dir), max_side, patch, not no_kid,
                                         progress=lambda s: stderr_console().print(s, markup=False)))


@sweep_command.command("seeds")
@_sweep_inputs
@click.option("-m", "--model", required=True, help="A stochastic model (see 'gcz models').")
@click.option("--seeds", type=click.IntRange(2, 256), default=16, show_default=True)
def sweep_seeds(inputs: tuple[str, ...], out_dir: str, split: str | None, max_side: int, model: str,
                seeds: int) -> None:
    """Conditional pixel variance of a model over many seeds of the same files."""
    from . import runner, sweeps

    with user_errors():
        images = runner.collect_images(inputs, split)
        _print_json(sweeps.seed_spread(images, model, seeds, Path(out_dir), max_side,
                                       progress=lambda s: stderr_console().print(s, markup=False)))


@sweep_command.command("selective")
@_sweep_inputs
@click.option("-m", "--model", default=None, help="SC model [default: the default SC model of C = 8].")
@click.option("--gc-model", default=None, help="GC model to compare inside the box [default: same C].")
@click.option("--areas", default="0,0.1,0.25,0.5,0.75,1", show_default=True,
              help="Preserved box areas (fractions of the image).")
def sweep_selective(inputs: tuple[str, ...], out_dir: str, split: str | None, max_side: int, model: str | None,
                    gc_model: str | None, areas: str) -> None:
    """Selective compression: bytes vs preserved area, label-map bytes, quality inside the box, seams."""
    from . import runner, selective_bench

    with user_errors():
        try:
            values = [float(a) for a in _csv(areas)]
        except ValueError:
            raise GczInputError(f"--areas takes comma-separated numbers, not {areas!r}") from None
        if any(not 0 <= v <= 1 for v in values):
            raise GczInputError("--areas must lie in 0..1")
        images = runner.collect_images(inputs, split)
        _print_json(selective_bench.selective_sweep(images, Path(out_dir), model, gc_model, max_side, values,
                                                    progress=lambda s: stderr_console().print(s, markup=False)))


@sweep_command.command("samples")
@_sweep_inputs
@click.option("-m", "--model", default="gcz-c4", show_default=True)
@click.option("-n", "count", type=int, default=32, show_default=True, help="Images per method.")
@click.option("--size", default="512x384", show_default=True, help="WIDTHxHEIGHT of each sampled image.")
@click.option("--patch", type=int, default=128, show_default=True, help="Patch size for KID/FID.")
def sweep_samples(inputs: tuple[str, ...], out_dir: str, split: str | None, max_side: int, model: str,
                  count: int, size: str, patch: int) -> None:
    """KID/FID of sampled images (trained sampler, uniform codes) against the real INPUTS."""
    from .. import sampling
    from . import runner, sweeps

    with user_errors():
        images = runner.collect_images(inputs, split)
        _print_json(sweeps.sample_quality(images, model, count, sampling.parse_size(size), Path(out_dir),
                                          max_side=max_side, patch=patch,
                                          progress=lambda s: stderr_console().print(s, markup=False)))
