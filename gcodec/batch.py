"""Parallel batches on one machine: the same per-file work in N worker processes.

``gcz compress ... --jobs N`` (and ``decompress``) hands every input to a pool
of N processes forked from the command, each of which loads its networks
once (the model cache of :mod:`gcodec.zoo` lives per process) and runs with
an equal share of the CPU threads.  Each file's result is published
atomically by the worker (:func:`gcodec.files.write_output`), so a batch
that is killed leaves complete files and nothing half-written; rerun it with
``--skip-existing`` to do only the rest.  A failing file is reported and the
others go on.

Workers are forked (Linux and macOS: the per-file function is a closure of
the command's options) before any network runs in the parent.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from .cli_common import user_errors_record

JobT = TypeVar("JobT")
#: The per-item function of the pool's batch, set in the parent just before the workers are forked.
_WORK: Callable[[Any], dict[str, Any]] | None = None


def threads_per_worker(workers: int) -> int:
    """An equal share of the machine's CPU threads for each of ``workers`` processes (at least 1)."""
    return max(1, (os.cpu_count() or 1) // workers)


def _start_worker(threads: int) -> None:
    """In each worker: its share of the threads, and Ctrl-C left to the parent (which stops the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:  # not installed: nothing to limit (ONNX Runtime sessions size their own pools)
        pass


def _run_one(index: int, item: Any) -> tuple[int, dict[str, Any] | None, str | None]:
    """Run the batch's work on one item in a worker: (index, record, None) or (index, None, message)."""
    assert _WORK is not None
    with user_errors_record() as caught:
        return index, _WORK(item), None
    return index, None, caught.message


def run_parallel(items: list[JobT], work: Callable[[JobT], dict[str, Any]],
                 workers: int) -> Iterator[tuple[JobT, dict[str, Any] | None, str | None]]:
    """Yield ``(item, record, error)`` for every item as the pool finishes it (not in input order).

    ``work(item)`` runs in one of ``workers`` forked processes and returns a JSON-ready record or raises;
    its one-line error message comes back instead of the record.  If the caller stops iterating (an
    interrupt, a signal), the workers are terminated: each unwinds as on SIGTERM, removing its temporary
    files.
    """
    global _WORK
    _WORK = work
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                               initargs=(threads_per_worker(workers),))
    finished = False
    try:
        pending: set[Future] = {pool.submit(_run_one, i, item) for i, item in enumerate(items)}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    index, record, error = future.result()
                except Exception as exc:  # noqa: BLE001 - a worker that died (killed, out of memory)
                    raise RuntimeError(f"a worker process died: {exc}") from None
                yield items[index], record, error
        finished = True
    finally:
        _WORK = None
        if not finished:
            for process in list(getattr(pool, "_processes", {}).values()):
                if process.is_alive():
                    process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
