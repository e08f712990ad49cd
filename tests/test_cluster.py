"""Large jobs on Dask (gcodec.cluster, gcz batch): a local cluster of 2 workers started here, one killed
mid-job; every input ends with exactly one complete output and one manifest record."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import gcodec
from gcodec import cluster

from conftest import photo_like

distributed = pytest.importorskip("distributed")


@pytest.fixture
def tree(tmp_path, tiny_weights) -> Path:
    root = tmp_path / "photos"
    for i in range(10):
        folder = root / ("a" if i % 2 else "b" / Path("deep"))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo_like(64, 96, seed=i)).save(folder / f"p{i}.png")
    (root / "notes.txt").write_text("not a photo")
    return root


def test_plan_mirrors_the_tree_and_reads_lists(tree, tmp_path):
    tasks = cluster.plan(tree, tmp_path / "out", decompress=False)
    assert len(tasks) == 10 and all(t.target.endswith(".gcz") for t in tasks)
    assert str(tmp_path / "out" / "b" / "deep" / "p0.gcz") in {t.target for t in tasks}
    listing = tmp_path / "list.txt"
    listing.write_text(f"photos/a/p1.png\nfile://{tree / 'a' / 'p3.png'}\n\n")
    assert [Path(t.source).name for t in cluster.plan(listing, tmp_path / "o", False)] == ["p1.png", "p3.png"]
    listing.write_text("s3://bucket/p.png\n")
    with pytest.raises(gcodec.GczError, match="file://"):
        cluster.plan(listing, tmp_path / "o", False)


def test_a_batch_survives_a_killed_worker_and_resumes(tree, tmp_path):
    out = tmp_path / "out"
    manifest = out / cluster.MANIFEST_NAME
    tasks = cluster.plan(tree, out, decompress=False)
    options = {"encode": {"channels": 4, "refine_steps": 8, "device": "cpu"}}  # slow enough to kill mid-job
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local, distributed.Client(local) as client:
        pids = list(client.run(os.getpid).values())
        killed = []

        def kill_one(record: dict) -> None:
            if not killed:  # after the first record: the other tasks are queued or running on both workers
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        counts = cluster.run_batch(tasks, client, manifest, False, options, retries=3, on_record=kill_one)
    assert killed and counts == {"done": 10, "failed": 0, "lost": 0}
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert sorted(r["input"] for r in records) == sorted(t.source for t in tasks)  # one record per input
    outputs = sorted(out.rglob("*.gcz"))
    assert len(outputs) == 10 and not [p for p in out.rglob("*") if p.is_file() and p.suffix not in (".gcz", ".jsonl")]
    for record in records:
        data = Path(record["output"]).read_bytes()
        assert gcodec.read_header(data).width == 96 and record["bytes"] == len(data)
    assert cluster.pending(tasks, manifest) == []
    Path(records[0]["output"]).unlink()  # a lost output is redone on the next run
    assert [t.source for t in cluster.pending(tasks, manifest)] == [records[0]["input"]]


def test_gcz_batch_runs_a_local_cluster_and_resumes(tree, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "gcodec.cli", "batch", str(tree), str(out), "--workers", "2", "-c", "4"]
    first = subprocess.run(command + ["--json"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert len([json.loads(line) for line in first.stdout.splitlines()]) == 10
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "10 inputs, 10 done already" in again.stderr
    back = subprocess.run([sys.executable, "-m", "gcodec.cli", "batch", str(out), str(tmp_path / "png"),
                           "--decompress", "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert back.returncode == 0, back.stderr
    assert len(list((tmp_path / "png").rglob("*.png"))) == 10
