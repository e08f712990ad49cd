"""Benchmark driver: run the fuzz targets for N inputs in total and write bench/fuzz.{md,json}.

Jobs run one after another, each a single libFuzzer process (one CPU core),
under ``nice``. New corpus entries and crash artifacts go to a scratch
directory (default ``$TMPDIR/gcz-fuzz``), never into the checked-in
``fuzz/corpus/``, which is only read as the seed corpus.

If a job crashes on an uncaught Python exception, the crash is recorded
(artifact, traceback) and the job resumes for its remaining inputs with that
exception class excluded (``GCZ_FUZZ_IGNORE``); hangs and out-of-memory
crashes are recorded and the job resumes as is, up to ``--max-restarts``.

Usage::

    python fuzz/run.py [--runs 1000000] [--scratch DIR] [--out bench] [--timeout 10]
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HARNESS = HERE / "fuzz_gcz.py"


@dataclass(frozen=True)
class Job:
    """One fuzzing job: a target, its CRC mode and its share of the total inputs."""

    name: str
    target: str
    crc: str
    share: float


#: The default split of the inputs (container with a repaired CRC gets most of the container share).
JOBS = (Job("container", "container", "fix", 0.30),
        Job("container-raw", "container", "raw", 0.05),
        Job("entropy", "entropy", "fix", 0.20),
        Job("image", "image", "raw", 0.30),
        Job("info", "info", "fix", 0.15))
#: Seed corpus folder of each target under fuzz/corpus/ (``info`` reads .gcz files, like ``container``).
SEED_DIRS = {"container": "container", "entropy": "entropy", "image": "image", "info": "container"}

STATUS_RE = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)")
STAT_RE = re.compile(r"^stat::(\w+):\s+(\d+)")
DONE_RE = re.compile(r"^Done (\d+) runs in (\d+) second")
ERROR_RE = re.compile(r"==\d+== ERROR: libFuzzer: (.+)$")
ARTIFACT_RE = re.compile(r"Test unit written to (\S+)")


@dataclass
class Crash:
    """One crash/hang/OOM that libFuzzer reported."""

    job: str
    kind: str
    artifact: str | None
    exception: str | None
    traceback: str


@dataclass
class Segment:
    """What one libFuzzer process reported."""

    runs: int = 0
    wall_s: float = 0.0
    cov: int | None = None
    ft: int | None = None
    corpus_units: int | None = None
    corpus_size: str | None = None
    stats: dict[str, int] = field(default_factory=dict)
    crash: Crash | None = None


@dataclass
class JobResult:
    """Totals of a job over all its segments (restarts after crashes)."""

    name: str
    target: str
    crc: str
    requested_runs: int
    runs: int = 0
    wall_s: float = 0.0
    exec_per_s: float = 0.0
    cov: int | None = None
    ft: int | None = None
    corpus_units: int | None = None
    corpus_size: str | None = None
    new_units_added: int = 0
    peak_rss_mb: int = 0
    slowest_unit_s: int = 0
    restarts: int = 0
    crashes: list[Crash] = field(default_factory=list)


# ---------------------------------------------------------------- log parsing
def _python_exception(lines: list[str]) -> tuple[str | None, str]:
    """The exception line and traceback of atheris' ``Uncaught Python exception`` block."""
    try:
        start = next(i for i, line in enumerate(lines) if "Uncaught Python exception" in line)
    except StopIteration:
        return None, ""
    block = []
    for line in lines[start + 1:]:
        if ERROR_RE.search(line):
            break
        block.append(line)
    text = "\n".join(block).strip()
    exception = block[0].strip() if block else None
    return exception, text


def parse_log(text: str, job: str) -> Segment:
    """Extract runs, coverage, final stats and any crash from libFuzzer's stderr."""
    seg = Segment()
    lines = text.splitlines()
    for line in lines:
        if m := STATUS_RE.match(line):
            seg.runs = int(m.group(1))
            seg.cov, seg.ft, seg.corpus_units = int(m.group(2)), int(m.group(3)), int(m.group(4))
            seg.corpus_size = m.group(5)
        elif m := STAT_RE.match(line):
            seg.stats[m.group(1)] = int(m.group(2))
        elif m := DONE_RE.match(line):
            seg.runs = int(m.group(1))
    seg.runs = seg.stats.get("number_of_executed_units", seg.runs)
    errors = [m.group(1) for line in lines if (m := ERROR_RE.search(line))]
    if errors:
        exception, tb = _python_exception(lines)
        artifacts = [m.group(1) for line in lines if (m := ARTIFACT_RE.search(line))]
        if not tb:
            start = next(i for i, line in enumerate(lines) if ERROR_RE.search(line))
            tb = "\n".join(lines[max(0, start - 5):start + 25])
        seg.crash = Crash(job, errors[0], artifacts[-1] if artifacts else None, exception, tb)
    return seg


def ignore_entry(exception: str) -> str:
    """``Type:prefix`` for GCZ_FUZZ_IGNORE: the message up to its first digit or quote."""
    name, _, message = exception.partition(":")
    prefix = re.split(r"[0-9'\"(\[]", message.strip(), maxsplit=1)[0].strip()
    return f"{name.strip()}:{prefix}".replace(";", " ")


# ---------------------------------------------------------------- running
def fuzz_command(job: Job, runs: int, corpus: Path, artifacts: Path, args: argparse.Namespace) -> list[str]:
    """The nice'd single-process libFuzzer command line of one job segment."""
    return ["nice", "-n", str(args.nice), sys.executable, str(HARNESS),
            "--target", job.target, "--crc", job.crc,
            f"-runs={runs}", f"-timeout={args.timeout}", f"-rss_limit_mb={args.rss_limit_mb}",
            f"-max_len={args.max_len}", f"-artifact_prefix={artifacts}/", "-print_final_stats=1",
            str(corpus), str(HERE / "corpus" / SEED_DIRS[job.target])]


def run_segment(job: Job, runs: int, scratch: Path, ignore: list[str], args: argparse.Namespace,
                index: int) -> Segment:
    """Run one libFuzzer process; its stderr goes to ``scratch/logs``."""
    corpus, artifacts, logs = (scratch / d / job.name for d in ("corpus", "artifacts", "logs"))
    for d in (corpus, artifacts, logs):
        d.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GCZ_FUZZ_IGNORE=";".join(ignore), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    log = logs / f"segment-{index}.log"
    start = time.monotonic()
    with open(log, "w") as fh:
        subprocess.run(fuzz_command(job, runs, corpus, artifacts, args), stdout=fh,
                       stderr=subprocess.STDOUT, env=env, cwd=ROOT, check=False)
    seg = parse_log(log.read_text(errors="replace"), job.name)
    seg.wall_s = time.monotonic() - start
    return seg


def run_job(job: Job, runs: int, scratch: Path, args: argparse.Namespace) -> JobResult:
    """Run a job to ``runs`` inputs, restarting after crashes (see module docstring)."""
    result = JobResult(job.name, job.target, job.crc, runs)
    ignore: list[str] = []
    while result.runs < runs:
        seg = run_segment(job, runs - result.runs, scratch, ignore, args, result.restarts)
        result.runs += seg.runs
        result.wall_s += seg.wall_s
        result.cov, result.ft = seg.cov, seg.ft
        result.corpus_units, result.corpus_size = seg.corpus_units, seg.corpus_size
        result.new_units_added += seg.stats.get("new_units_added", 0)
        result.peak_rss_mb = max(result.peak_rss_mb, seg.stats.get("peak_rss_mb", 0))
        result.slowest_unit_s = max(result.slowest_unit_s, seg.stats.get("slowest_unit_time_sec", 0))
        print(f"[{job.name}] {result.runs}/{runs} inputs, {result.wall_s:.0f} s, cov {seg.cov}, "
              f"corpus {seg.corpus_units}" + (f", CRASH: {seg.crash.kind}" if seg.crash else ""), flush=True)
        if seg.crash is None:
            if seg.runs == 0:
                raise SystemExit(f"[{job.name}] libFuzzer ran nothing; see {scratch}/logs/{job.name}")
            break
        result.crashes.append(seg.crash)
        if seg.crash.exception:
            ignore.append(ignore_entry(seg.crash.exception))
        if result.restarts >= args.max_restarts:
            break
        result.restarts += 1
    result.exec_per_s = result.runs / result.wall_s if result.wall_s else 0.0
    return result


# ---------------------------------------------------------------- report
def environment() -> dict[str, str | int | None]:
    """Versions and machine facts for the report."""
    def version(pkg: str) -> str | None:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return None

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True, check=False).stdout.strip() or None
    return {"atheris": version("atheris"), "range-coder": version("range-coder"), "numpy": version("numpy"),
            "python": platform.python_version(), "cpu": cpu, "cpus_on_machine": os.cpu_count(),
            "cpus_used": 1, "git_commit": commit}


def write_reports(results: list[JobResult], env: dict, args: argparse.Namespace, wall_s: float) -> None:
    """bench/fuzz.json and bench/fuzz.md."""
    total = sum(r.runs for r in results)
    crashes = [c for r in results for c in r.crashes]
    data = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "environment": env, "total_runs": total, "wall_s": round(wall_s, 1),
            "settings": {"timeout_s": args.timeout, "rss_limit_mb": args.rss_limit_mb,
                         "max_len": args.max_len, "nice": args.nice},
            "jobs": [asdict(r) | {"wall_s": round(r.wall_s, 1), "exec_per_s": round(r.exec_per_s, 1)}
                     for r in results],
            "crashes_found": len(crashes)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fuzz.json").write_text(json.dumps(data, indent=1) + "\n")
    rows = [f"| {r.name} | {r.target} | {r.crc} | {r.runs:,} | {r.wall_s:.0f} | {r.exec_per_s:.0f} | "
            f"{r.cov} | {r.ft} | {r.corpus_units} ({r.corpus_size}) | {r.new_units_added} | {r.peak_rss_mb} | "
            f"{len(r.crashes)} |" for r in results]
    md = [
        "# gcz fuzzing (atheris / libFuzzer)", "",
        f"{data['date']}, gcz@{env['git_commit']}, atheris {env['atheris']}, range-coder {env['range-coder']}, "
        f"Python {env['python']}, {env['cpu']}: 1 of {env['cpus_on_machine']} cores (single process, nice "
        f"{args.nice}).", "",
        f"**{total:,} inputs in {wall_s / 60:.1f} min, {len(crashes)} crash(es) / hang(s) found.** "
        f"Command: `python fuzz/run.py --runs {args.runs}`; harness `fuzz/fuzz_gcz.py`, seed corpus "
        f"`fuzz/corpus/` (built by `fuzz/make_corpus.py`).", "",
        "| job | target | CRC | inputs | wall s | exec/s | cov | ft | corpus (units, bytes) | new units "
        "| peak RSS MiB | crashes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|", *rows, "",
        "- `container`: bytes -> `container.read`; a parsed file is re-written and re-read (fields must "
        "survive), its payload entropy-decoded when the latent has <= 65536 symbols, and header and symbols "
        "compared with `tests/reference_decoder.py` (the independent decoder written from format_spec.md) up to "
        "4096 symbols. CRC `fix`: the harness replaces the last 4 bytes with a valid CRC32 so mutations reach "
        "the section parser; `raw`: bytes as given (envelope / CRC paths).",
        "- `entropy`: bytes -> (channels 1..8, levels 2..9, precision 1..17, tables, shape <= 4096 symbols, "
        "payload) -> `entropy.decode`, which must not fail on valid tables, must agree with the reference "
        "decoder, and must round-trip through `entropy.encode` exactly.",
        "- `image`: bytes -> `imageio.load_image` (the compress path, pixel limit 2^20), "
        "`imageio.mask_from_bytes` (`--preserve-mask`) and `labelmaps.load_label_image` (`--labels`); seeds: "
        "small PNG (every mode), JPEG (EXIF), TIFF, GIF, BMP, WebP, PPM files; Pillow's format parsers are "
        "instrumented too. A header above the pixel limit must be refused before decoding.",
        "- `info`: bytes (CRC repaired) -> `gcz info`'s record (`cli.info_record`) and its rich table "
        "(`cli.info_table`, file name `fuzz[/i].gcz`): only `GczError`, and the model and file names must "
        "appear literally (no markup).",
        "- Failure = any exception other than `GczError`, a failed invariant, a hang over "
        f"{args.timeout} s or RSS over {args.rss_limit_mb} MiB. `cov`/`ft`/corpus: libFuzzer's last status "
        "line: Python edges of the instrumented `gcodec` modules plus the harness's `coverage_hints` (payload "
        "length and symbol variety as loop-count features, since the C range coder is not instrumented).", "",
    ]
    if crashes:
        md += ["## Crashes", ""]
        for c in crashes:
            md += [f"### {c.job}: {c.kind}", "", f"artifact: `{c.artifact}`", "", "```", c.traceback, "```", ""]
    (args.out / "fuzz.md").write_text("\n".join(md))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs in total over all jobs")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "gcz-fuzz",
                        help="new corpus entries, crash artifacts and logs (wiped unless --keep)")
    parser.add_argument("--keep", action="store_true", help="resume from the scratch corpus of a previous run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench", help="where fuzz.md / fuzz.json go")
    parser.add_argument("--timeout", type=int, default=10, help="libFuzzer -timeout (a hang), seconds")
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument("--max-len", type=int, default=4096)
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--max-restarts", type=int, default=10)
    parser.add_argument("--jobs", nargs="+", choices=[j.name for j in JOBS], default=[j.name for j in JOBS])
    args = parser.parse_args()
    if args.scratch.exists() and not args.keep:
        shutil.rmtree(args.scratch)
    jobs = [j for j in JOBS if j.name in args.jobs]
    shares = sum(j.share for j in jobs)
    start = time.monotonic()
    results = [run_job(j, max(1, round(args.runs * j.share / shares)), args.scratch, args) for j in jobs]
    write_reports(results, environment(), args, time.monotonic() - start)
    print(f"wrote {args.out / 'fuzz.md'} and {args.out / 'fuzz.json'}; scratch: {args.scratch}")
    sys.exit(1 if any(r.crashes for r in results) else 0)


if __name__ == "__main__":
    main()
