"""The ONNX graph cache is verified: damaged or swapped graphs are rebuilt, interrupted builds removed."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gcodec
from gcodec import zoo
from gcodec.backends import onnx_net
from gcodec.backends.onnx_net import META_NAME, OWNER_NAME, OnnxNetwork, graph_dir, remove_stale_builds

from conftest import photo_like


@pytest.fixture
def fresh_onnx(tiny_weights):
    """No network loaded in this process (each test sees what is on disk)."""
    onnx_net._loaded.clear()
    yield
    onnx_net._loaded.clear()


def _decode(data: bytes) -> np.ndarray:
    onnx_net._loaded.clear()
    return np.asarray(gcodec.decompress(data, backend="onnxruntime"))


def test_damaged_cached_graph_is_rebuilt_not_used(fresh_onnx):
    data = gcodec.compress(photo_like(64, 64), model="gcz-c4", colour=False)
    reference = _decode(data)
    graph = graph_dir(zoo.find_model("gcz-c4")) / "generator.onnx"
    blob = bytearray(graph.read_bytes())
    rng = np.random.default_rng(0)
    for pos in rng.choice(len(blob) // 2, size=len(blob) // 20, replace=False) + len(blob) // 2:
        blob[pos] ^= 0xFF  # same size: the old size check passed this
    graph.write_bytes(bytes(blob))
    assert np.array_equal(_decode(data), reference)
    meta = json.loads((graph.parent / META_NAME).read_text())
    assert zoo.sha256_file(graph) == meta["sha256"]["generator.onnx"]


@pytest.fixture
def twin(fresh_onnx, tiny_weights, tmp_path, monkeypatch):
    """``gcz-c4-twin``: the architecture of gcz-c4 with other weights (graphs of the same sizes)."""
    from conftest import _register_tiny
    from gcodec.models import named_config

    folder = tmp_path / "twin"
    folder.mkdir()
    _register_tiny(folder, "gcz-c4-twin", named_config("tiny", 4), seed=99)
    monkeypatch.setenv("GCZ_WEIGHTS", f"{folder}{os.pathsep}{tiny_weights}")
    return zoo.find_model("gcz-c4-twin")


def test_graphs_swapped_from_another_model_are_rebuilt(twin):
    """gcz-c4's graphs copied over gcz-c4-twin's (same sizes): decoding and encoding still use the twin's."""
    image = photo_like(64, 64)
    data = gcodec.compress(image, model=twin.name, colour=False, backend="onnxruntime")
    reference = _decode(data)
    OnnxNetwork.load(zoo.find_model("gcz-c4"))
    mine, theirs = graph_dir(twin), graph_dir(zoo.find_model("gcz-c4"))
    for name in ("encoder.onnx", "generator.onnx"):
        assert (mine / name).stat().st_size == (theirs / name).stat().st_size
        (mine / name).write_bytes((theirs / name).read_bytes())
    onnx_net._loaded.clear()
    assert gcodec.compress(image, model=twin.name, colour=False, backend="onnxruntime") == data
    assert np.array_equal(_decode(data), reference)


def test_interrupted_builds_are_removed_by_the_next_build(tmp_path):
    parent = tmp_path / "onnx"
    dead = parent / ".abc-v3.dead"
    alive = parent / ".abc-v3.alive"
    unknown_old = parent / ".abc-v3.old"
    for folder in (dead, alive, unknown_old):
        folder.mkdir(parents=True)
        (folder / "generator.onnx").write_bytes(b"x" * 100)
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (dead / OWNER_NAME).write_text(child.stdout)  # that process has exited
    (alive / OWNER_NAME).write_text(f"{os.getpid()}\n")
    os.utime(unknown_old, (0, 0))
    removed = remove_stale_builds(parent)
    assert sorted(removed) == sorted([dead, unknown_old])
    assert alive.is_dir() and not dead.exists() and not unknown_old.exists()


def test_a_killed_build_leaves_only_what_the_next_run_removes(fresh_onnx, tmp_path, monkeypatch):
    """SIGTERM during the first-use export (simulated by the exception the CLI's handler raises)."""
    from gcodec.cli_common import Terminated
    from gcodec import export

    monkeypatch.setenv("GCZ_CACHE", str(tmp_path / "cache"))

    def killed(*args, **kwargs):
        raise Terminated(15)

    monkeypatch.setattr(export, "export_onnx", killed)
    with pytest.raises(Terminated):
        OnnxNetwork.load(zoo.find_model("gcz-c4"))
    onnx_dir = tmp_path / "cache" / "onnx"
    assert not onnx_dir.exists() or list(onnx_dir.iterdir()) == []
