"""The shared training loop (gcodec.train.skeleton): schedule, checkpoints, signals, log, summary."""
from __future__ import annotations

import csv
import json
import os
import signal

import torch

from gcodec.train.skeleton import Schedule, StepJob, run_job


class CountingJob:
    """A job whose step is a counter; it can send itself SIGTERM at a chosen iteration."""

    def __init__(self, iteration: int = 0, terminate_at: int | None = None) -> None:
        self.iteration, self.elapsed = iteration, 0.0
        self.saved: list[int] = []
        self.terminate_at = terminate_at

    def step(self) -> dict[str, torch.Tensor]:
        if self.iteration + 1 == self.terminate_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return {"mse": torch.tensor(0.01 * (self.iteration + 1)), "loss": torch.tensor(float(self.iteration))}

    def save(self) -> None:
        self.saved.append(self.iteration)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_run_stops_at_its_iterations_logs_and_checkpoints(tmp_path):
    job = CountingJob()
    summary = run_job(job, tmp_path, Schedule(iterations=10, log_every=4), ["loss", "mse", "psnr"],
                      status=lambda s: None, checkpoint=tmp_path / "c.pt")
    assert job.iteration == 10 and job.saved == [10]
    rows = _rows(tmp_path / "log.csv")
    assert [int(r["iteration"]) for r in rows] == [1, 4, 8]
    assert float(rows[1]["psnr"]) == round(-10 * __import__("math").log10(0.04), 5)
    assert summary["session_iterations"] == 10 and summary["checkpoint"] == str(tmp_path / "c.pt")
    assert json.loads((tmp_path / "summary.json").read_text())["iteration"] == 10
    # a resumed run appends to the log, first logging its own first step
    again = CountingJob(iteration=10)
    run_job(again, tmp_path, Schedule(iterations=13, log_every=4), ["loss", "mse", "psnr"], status=lambda s: None,
            checkpoint=tmp_path / "c.pt")
    assert [int(r["iteration"]) for r in _rows(tmp_path / "log.csv")] == [1, 4, 8, 11, 12]


def test_sigterm_stops_after_the_step_with_a_checkpoint(tmp_path):
    previous = signal.getsignal(signal.SIGTERM)
    job = CountingJob(terminate_at=3)
    notes: list[str] = []
    run_job(job, tmp_path, Schedule(iterations=100), ["loss"], status=notes.append, checkpoint=tmp_path / "c.pt")
    assert job.iteration == 3 and job.saved == [3] and any("SIGTERM" in n for n in notes)
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler is put back


def test_a_time_budget_and_a_failing_step_still_checkpoint(tmp_path):
    job = CountingJob()
    run_job(job, tmp_path, Schedule(iterations=100, max_minutes=0.0), ["loss"], status=lambda s: None,
            checkpoint=tmp_path / "c.pt")
    assert job.iteration == 0 and job.saved == [0]

    def boom() -> dict:
        raise RuntimeError("out of memory")

    failing = StepJob(boom, lambda j: saves.append(j.iteration), iteration=7)
    saves: list[int] = []
    try:
        run_job(failing, tmp_path, Schedule(iterations=100), ["loss"], status=lambda s: None,
                checkpoint=tmp_path / "c.pt")
    except RuntimeError:
        pass
    assert saves == [7]


def test_an_older_log_gains_the_new_columns(tmp_path):
    (tmp_path / "log.csv").write_text("iteration,elapsed_s,loss\n5,1.0,0.5\n")
    run_job(CountingJob(iteration=5), tmp_path, Schedule(iterations=6), ["loss", "mse", "psnr"],
            status=lambda s: None, checkpoint=tmp_path / "c.pt")
    rows = _rows(tmp_path / "log.csv")
    assert list(rows[0]) == ["iteration", "elapsed_s", "loss", "mse", "psnr"]
    assert rows[0]["mse"] == "" and rows[1]["iteration"] == "6" and rows[1]["mse"] == "0.06"
