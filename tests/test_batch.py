"""Parallel batches (gcodec.batch): --jobs N gives the sequential run's bytes, failures stay per file,
--skip-existing resumes a stopped batch, and a signal leaves only complete files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gcodec
from gcodec.batch import threads_per_worker

from conftest import photo_like


def gcz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gcodec.cli", *args], capture_output=True, text=True)


@pytest.fixture
def photos(tmp_path, tiny_weights) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for i in range(5):
        path = folder / f"p{i}.png"
        Image.fromarray(photo_like(48 + 16 * (i % 2), 64, seed=i)).save(path)
        paths.append(path)
    return paths


def _outputs(folder: Path, suffix: str = ".gcz") -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob(f"*{suffix}"))}


def test_parallel_compress_writes_the_sequential_bytes(photos, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    assert gcz("compress", *map(str, photos), "-c", "4", "-o", str(one)).returncode == 0
    done = gcz("compress", *map(str, photos), "-c", "4", "-o", str(two), "--jobs", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert _outputs(one) == _outputs(two) and len(_outputs(two)) == len(photos)
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(r["input"] for r in records) == sorted(map(str, photos))
    decoded = tmp_path / "decoded"
    decoded.mkdir()
    back = gcz("decompress", *map(str, sorted(two.glob("*.gcz"))), "-o", str(decoded), "--jobs", "2")
    assert back.returncode == 0, back.stderr
    for name, data in _outputs(two).items():
        png = decoded / name.replace(".gcz", ".png")
        assert np.array_equal(np.asarray(Image.open(png)), np.asarray(gcodec.decompress(data)))


def test_a_failing_file_is_reported_and_the_others_go_on(photos, tmp_path):
    bad = photos[0].parent / "broken.png"
    bad.write_bytes(b"not an image at all")
    out = tmp_path / "out"
    out.mkdir()
    done = gcz("compress", str(bad), *map(str, photos), "-c", "4", "-o", str(out), "--jobs", "2")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("gcz: error:")]
    assert len(errors) == 1 and str(bad) in errors[0] and "Traceback" not in done.stderr
    assert len(_outputs(out)) == len(photos)


def test_skip_existing_does_only_the_rest(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert gcz("compress", *map(str, photos), "-c", "4", "-o", str(out)).returncode == 0
    first = _outputs(out)
    (out / "p1.gcz").unlink()
    (out / "p3.gcz").unlink()
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.gcz")}
    again = gcz("compress", *map(str, photos), "-c", "4", "-o", str(out), "--skip-existing", "--jobs", "2", "--json")
    assert again.returncode == 0, again.stderr
    assert "3 of 5 outputs exist already" in again.stderr
    assert sorted(json.loads(line)["input"] for line in again.stdout.splitlines()) == [str(photos[1]), str(photos[3])]
    assert _outputs(out) == first
    assert all(out.joinpath(name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())
    refused = gcz("compress", *map(str, photos), "-o", str(out), "--skip-existing", "--force")
    assert refused.returncode == 1 and "contradict" in refused.stderr


def test_a_terminated_batch_leaves_complete_files_and_resumes(tiny_weights, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    inputs = []
    for i in range(24):
        path = folder / f"q{i:02d}.png"
        Image.fromarray(photo_like(128, 160, seed=i)).save(path)
        inputs.append(str(path))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "GCZ_REFINE_STEPS": "6"}  # slow enough to be stopped part way
    process = subprocess.Popen([sys.executable, "-m", "gcodec.cli", "compress", *inputs, "-c", "4", "-o", str(out),
                                "--jobs", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.gcz")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    partial = _outputs(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(partial)  # no temporary or half-written file
    for data in partial.values():
        gcodec.read_header(data)  # each is a complete, CRC-checked file
    rest = subprocess.run([sys.executable, "-m", "gcodec.cli", "compress", *inputs, "-c", "4", "-o", str(out),
                           "--jobs", "2", "--skip-existing"], env=env, capture_output=True, text=True)
    assert rest.returncode == 0, rest.stderr
    assert len(_outputs(out)) == len(inputs) and {k: v for k, v in _outputs(out).items() if k in partial} == partial


def test_workers_share_the_threads():
    assert threads_per_worker(1) == (os.cpu_count() or 1)
    assert threads_per_worker(10_000) == 1
