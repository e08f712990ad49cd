"""The part every training run shares: budget, signals, checkpoint cadence, CSV log, progress, summary.

A run is a :class:`Job`: it knows how to take one optimisation step and how to
write its resumable state; :func:`run_job` drives it until its iteration
count or time budget is reached, writes a checkpoint every few minutes, on
SIGTERM and at the end, appends the step's losses to ``log.csv`` (upgrading an
older log's header so resumed rows line up) and returns the session's summary
(also ``summary.json``).  The GC/SC trainer (:mod:`.loop`), the ORP head
(:mod:`.realism`), the latent sampler (:mod:`.sampler`) and the amortised
encoder (:mod:`.encoder`) all run through it.
"""
from __future__ import annotations

import csv
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

LOG_NAME = "log.csv"


class Job(Protocol):
    """One resumable training run, as :func:`run_job` drives it."""

    #: Optimisation steps taken, over every session of the run.
    iteration: int
    #: Seconds spent in steps, over every session of the run.
    elapsed: float

    def step(self) -> Mapping[str, torch.Tensor | float]:
        """Take one optimisation step; return its detached losses (read only every ``log_every`` steps)."""

    def save(self) -> None:
        """Write the resumable state (atomically)."""


class StepJob:
    """A :class:`Job` made of two functions, for a run whose networks and optimisers live in a closure:
    ``step()`` takes a step and returns its losses, ``save(job)`` writes the state with ``job.iteration``
    and ``job.elapsed``."""

    def __init__(self, step: Callable[[], Mapping[str, torch.Tensor | float]], save: Callable[["StepJob"], None],
                 iteration: int = 0, elapsed: float = 0.0) -> None:
        self._step, self._save = step, save
        self.iteration, self.elapsed = iteration, elapsed

    def step(self) -> Mapping[str, torch.Tensor | float]:
        """One optimisation step (the closure's)."""
        return self._step()

    def save(self) -> None:
        """The closure's state, written by ``save(self)``."""
        self._save(self)


@dataclass(frozen=True)
class Schedule:
    """When a run stops, checkpoints and logs."""

    iterations: int
    max_minutes: float | None = None
    checkpoint_minutes: float = 2.0
    log_every: int = 25


def run_job(job: Job, out: Path, schedule: Schedule, log_fields: list[str],
            status: Callable[[str], None] = print, main_process: bool = True,
            **summary_extra: Any) -> dict[str, Any]:
    """Train ``job`` until ``schedule.iterations`` or ``schedule.max_minutes``; return the session summary.

    ``log_fields`` are the CSV columns after ``iteration`` and ``elapsed_s`` (a step's losses, and
    ``psnr`` derived from ``mse``); only the main process (``main_process``) writes the log and the
    summary.  The checkpoint is written every ``checkpoint_minutes``, after SIGTERM (the step in
    progress finishes first) and when the loop ends, whatever ended it.
    """
    start = last_checkpoint = time.monotonic()
    session_start = job.iteration
    fields = ["iteration", "elapsed_s", *log_fields]
    log_path = out / LOG_NAME
    log_fh = None
    writer = None
    if main_process:
        new_log = not log_path.is_file()
        if not new_log:
            upgrade_log_columns(log_path, fields)
        log_fh = open(log_path, "a", newline="")
        writer = csv.DictWriter(log_fh, fieldnames=fields, extrasaction="ignore")
        if new_log:
            writer.writeheader()
    progress = Progress(schedule.iterations, job.iteration, enabled=main_process, status=status)
    stop = StopFlag()
    last_logs: dict[str, float] = {}
    try:
        while job.iteration < schedule.iterations:
            if schedule.max_minutes is not None and time.monotonic() - start > schedule.max_minutes * 60:
                status("time budget reached")
                break
            if stop.requested:
                status("stop requested (SIGTERM): writing checkpoint")
                break
            t0 = time.monotonic()
            step_logs = job.step()
            job.iteration += 1
            job.elapsed += time.monotonic() - t0
            if job.iteration % schedule.log_every == 0 or job.iteration == session_start + 1:  # the only host sync
                last_logs = scalar_logs(step_logs)
                if writer is not None:
                    writer.writerow({"iteration": job.iteration, "elapsed_s": round(job.elapsed, 1),
                                     **{k: round(v, 5) for k, v in last_logs.items()}})
                    log_fh.flush()
                progress.update(job.iteration, last_logs, job.iteration - session_start, time.monotonic() - start)
            if time.monotonic() - last_checkpoint > schedule.checkpoint_minutes * 60:
                job.save()
                last_checkpoint = time.monotonic()
    finally:
        stop.restore()
        progress.close()
        job.save()
        if log_fh is not None:
            log_fh.close()
    if not main_process:
        return {"iteration": job.iteration}
    plot_losses(log_path, out / "losses.png")
    return session_summary(out, job.iteration, session_start, start, last_losses=last_logs, **summary_extra)


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename over ``path``."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def session_summary(out: Path, iteration: int, session_start: int, started: float, checkpoint: Path,
                    **extra: Any) -> dict[str, Any]:
    """The summary of one training session (iterations, throughput, checkpoint), also written to
    ``out/summary.json``."""
    wall = time.monotonic() - started
    its = iteration - session_start
    summary = {"iteration": iteration, "session_iterations": its, "session_seconds": round(wall, 1),
               "iterations_per_hour": round(its / wall * 3600, 1) if wall > 0 else None,
               **extra, "checkpoint": str(checkpoint)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def upgrade_log_columns(log_path: Path, fields: list[str]) -> None:
    """Rewrite a CSV log written by an older version (fewer columns) under the header ``fields``, so
    that the rows a resumed run appends line up with their column names (old rows get empty cells)."""
    with open(log_path, newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if header == fields or not set(header) <= set(fields):
            return
        rows = list(reader)
    tmp = log_path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, log_path)


def scalar_logs(step_logs: Mapping[str, torch.Tensor | float]) -> dict[str, float]:
    """Floats of a step's detached losses, plus the PSNR of its MSE (on the [0, 1] scale)."""
    logs = {k: float(v) for k, v in step_logs.items()}
    if "mse" in logs:
        logs["psnr"] = -10 * math.log10(max(logs["mse"], 1e-10))
    return logs


class StopFlag:
    """SIGTERM asks the loop to stop after the current step (so a checkpoint is written)."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def restore(self) -> None:
        """Put back the SIGTERM handler that was there before."""
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


class Progress:
    """rich progress bar on a terminal, periodic plain lines otherwise."""

    def __init__(self, total: int, done: int, enabled: bool, status: Callable[[str], None]) -> None:
        self.enabled = enabled
        self.status = status
        self.tty = enabled and sys.stderr.isatty()
        self.last_line = 0.0
        self.bar = None
        if self.tty:
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress
            self.bar = RichProgress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                    TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
            self.task = self.bar.add_task("train", total=total, completed=done, info="")
            self.bar.start()
        self.total = total

    def update(self, it: int, logs: dict[str, float], session_its: int, session_s: float) -> None:
        """Show iteration ``it``, its losses and the session's rate."""
        if not self.enabled:
            return
        rate = session_its / session_s * 3600 if session_s > 0 else 0.0
        info = f"{rate:,.0f} it/h " + " ".join(f"{k}={v:.4g}" for k, v in logs.items())
        if self.bar is not None:
            self.bar.update(self.task, completed=it, info=info)
        elif time.monotonic() - self.last_line > 30:
            eta_h = (self.total - it) / rate if rate else float("inf")
            self.status(f"it {it}/{self.total} ETA {eta_h:.1f} h {info}")
            self.last_line = time.monotonic()

    def close(self) -> None:
        """Stop the bar, if any."""
        if self.bar is not None:
            self.bar.stop()


def plot_losses(log_path: Path, png_path: Path) -> bool:
    """Plot every loss column of the CSV log to a PNG; False if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    with open(log_path) as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return False
    keys = [k for k in rows[0] if k not in ("iteration", "elapsed_s") and any(r[k] for r in rows)]
    if not keys:
        return False
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.8 * len(keys)), sharex=True, squeeze=False)
    its = [int(r["iteration"]) for r in rows]
    for ax, key in zip(axes[:, 0], keys):
        pts = [(i, float(r[key])) for i, r in zip(its, rows) if r[key]]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=0.8)
        ax.set_ylabel(key)
    axes[-1, 0].set_xlabel("iteration")
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
    return True
