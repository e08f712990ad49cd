"""Large jobs on a Dask cluster: ``gcz batch SRC DST --scheduler ADDRESS``.

A batch compresses (or decompresses) a directory tree, or a list of paths
(one per line; ``file://`` URIs too), into ``DST`` with the same relative
layout, across the workers of a `Dask distributed <https://distributed.dask.org>`_
cluster (an existing scheduler, or a local cluster of N worker processes).

* Each worker process loads the networks once (gcz's model cache is per
  process) and publishes each output atomically (:func:`gcodec.files.write_output`):
  a file is either complete or absent, never half-written.
* The driver appends one JSON line per finished input to ``DST/gcz-batch.jsonl``
  (bytes, bpp, seconds, worker, or the error), flushed and synced as it goes.
* Rerunning the same command resumes: inputs with a record and an output are
  left out.  An interrupted driver loses at most the records in flight, whose
  outputs are then redone (they are the same bytes).
* A worker that dies mid-job (killed, out of memory) loses nothing: the
  scheduler hands its tasks to the other workers (``retries`` more times).

Dask was chosen over Ray because it is a pure-Python wheel with no server
binaries, runs the same code on a laptop's processes or an HPC/cloud
cluster (dask-jobqueue, dask-kubernetes), and its scheduler re-runs the tasks
of a lost worker by itself.
"""
from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .errors import GczInputError

#: The record file of a batch, in its destination folder.
MANIFEST_NAME = "gcz-batch.jsonl"
#: Image suffixes a compress batch takes from a directory tree.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm")


@dataclass(frozen=True)
class Task:
    """One input and where its output goes."""

    source: str
    target: str


def _local_path(entry: str, listing: Path) -> Path:
    """A path of a list file: plain (relative to the list's folder) or a ``file://`` URI."""
    if "://" in entry:
        uri = urlparse(entry)
        if uri.scheme != "file":
            raise GczInputError(f"{listing}: only local paths and file:// URIs are supported, not {entry!r}")
        return Path(unquote(uri.path))
    path = Path(entry)
    return path if path.is_absolute() else listing.parent / path


def plan(source: Path, destination: Path, decompress: bool, image_format: str = "png") -> list[Task]:
    """The tasks of a batch: every image (or ``.gcz`` file) under ``source``, or every path its list names,
    with its output under ``destination`` at the same relative place (a list's entries by file name)."""
    suffix = "." + image_format if decompress else ".gcz"
    wanted = (".gcz",) if decompress else IMAGE_SUFFIXES
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in wanted)
        pairs = [(p, p.relative_to(source).with_suffix(suffix)) for p in files]
    elif source.is_file():
        entries = [line.strip() for line in source.read_text().splitlines() if line.strip()]
        paths = [_local_path(e, source) for e in entries]
        pairs = [(p, Path(p.name).with_suffix(suffix)) for p in paths]
    else:
        raise GczInputError(f"{source}: no such directory or list file")
    targets = [str(destination / rel) for _, rel in pairs]
    if len(set(targets)) != len(targets):
        raise GczInputError("several inputs would write the same output file (same name in the list)")
    return [Task(str(p), t) for (p, _), t in zip(pairs, targets)]


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """The last record of each input in a batch's manifest (a torn last line is ignored)."""
    records: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return records
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "input" in record:
            records[record["input"]] = record
    return records


def pending(tasks: list[Task], manifest: Path) -> list[Task]:
    """The tasks still to do: those without a successful record whose output exists."""
    done = read_manifest(manifest)
    return [t for t in tasks if "error" in done.get(t.source, {"error": ""}) or not Path(t.target).is_file()]


def run_task(task: Task, decompress: bool, options: dict[str, Any]) -> dict[str, Any]:
    """Do one task on a worker; returns its record (``error`` set on a gcz error, which is not retried)."""
    from . import codec
    from .errors import GczError
    from .files import read_input, write_output

    started = time.perf_counter()
    base = {"input": task.source, "output": task.target, "worker": f"{socket.gethostname()}:{os.getpid()}"}
    try:
        target = Path(task.target)
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in target.parent.glob(f".{target.name}.*.part"):  # left by a worker killed while writing
            stale.unlink(missing_ok=True)
        if decompress:
            from .imageio import encode_image
            data = read_input(task.source, "gcz")
            image = codec.decompress(data, **options.get("decode", {}))
            write_output(task.target, encode_image(image, options.get("format", "png")), True)
            record = {"width": image.width, "height": image.height}
        else:
            data = codec.compress(read_input(task.source, "image"), **options.get("encode", {}))
            write_output(task.target, data, True)  # a redone task writes the same bytes again
            header = codec.read_header(data)
            record = {"bytes": len(data), "bpp": round(len(data) * 8 / (header.width * header.height), 6),
                      "width": header.width, "height": header.height, "model": header.model_name}
    except GczError as exc:
        return {**base, "error": str(exc)}
    return {**base, **record, "seconds": round(time.perf_counter() - started, 3)}


def run_batch(tasks: list[Task], client: Any, manifest: Path, decompress: bool, options: dict[str, Any],
              retries: int = 3, on_record: Callable[[dict[str, Any]], None] | None = None) -> dict[str, int]:
    """Run ``tasks`` on a Dask ``client``, appending each record to ``manifest`` as it arrives.

    Returns counts: ``done``, ``failed`` (gcz errors), ``lost`` (tasks that failed ``retries`` + 1 times
    for another reason, e.g. every worker that ran them died)."""
    from distributed import as_completed

    counts = {"done": 0, "failed": 0, "lost": 0}
    manifest.parent.mkdir(parents=True, exist_ok=True)
    futures = client.map(run_task, tasks, decompress=decompress, options=options, retries=retries, pure=False,
                         key=[f"gcz-{i}-{os.path.basename(t.source)}" for i, t in enumerate(tasks)])
    source_of = {f.key: t.source for f, t in zip(futures, tasks)}
    with open(manifest, "a") as fh:
        for future in as_completed(futures):
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - the task itself crashed or its workers kept dying
                record = {"input": source_of[future.key], "error": f"lost: {type(exc).__name__}: {exc}"}
                counts["lost"] += 1
            else:
                counts["failed" if "error" in record else "done"] += 1
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            if on_record is not None:
                on_record(record)
    return counts
