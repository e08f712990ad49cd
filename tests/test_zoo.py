"""Model registry: manifests, search order, checksum verification."""
from __future__ import annotations

import json

import pytest
import torch

from gcodec import zoo
from gcodec.errors import GczModelError
from gcodec.models import GCModel, named_config


def make_registry(tmp_path, name="m1"):
    model = GCModel(named_config("tiny", 2))
    path = tmp_path / f"{name}.pt"
    sha = zoo.save_weights(model, path)
    zoo.register_model(tmp_path, name, path.name, sha, model.config, info={"training": {"iterations": 5}})
    return model, path, sha


def test_register_find_load(tmp_path, monkeypatch):
    model, path, sha = make_registry(tmp_path)
    monkeypatch.setenv("GCZ_WEIGHTS", str(tmp_path))
    entry = zoo.find_model("m1")
    assert entry.sha256 == sha and entry.hash_prefix == bytes.fromhex(sha[:8])
    assert entry.info["training"]["iterations"] == 5
    assert zoo.find_model("m1", entry.hash_prefix) == entry
    loaded = zoo.load_model(entry)
    for k, v in model.state_dict().items():
        # int8 per output channel: error at most half a quantisation step of that channel
        step = v.abs().reshape(v.shape[0], -1).amax(dim=1) / 127 if v.dim() >= 2 else v.abs().max() / 1000
        shape = (-1,) + (1,) * (v.dim() - 1)
        tol = (step.reshape(shape) * 0.51 + 1e-3) if v.dim() >= 2 else 1e-2 * (1 + v.abs())
        assert torch.all((loaded.state_dict()[k] - v).abs() <= tol), k
    assert abs(entry.bpp_bound - 2 * 2.321928 / 256) < 1e-6


def test_compact_state_round_trip():
    torch.manual_seed(0)
    state = {"w": torch.randn(64, 32, 3, 3), "b": torch.randn(64), "n": torch.tensor(3)}
    compact = zoo.compact_state(state)
    assert compact["w"].dtype == torch.int8 and compact["b"].dtype == torch.float16
    back = zoo.expand_state(compact)
    assert set(back) == set(state) and back["n"] == 3
    rel = (back["w"] - state["w"]).abs().max() / state["w"].abs().max()
    assert rel < 0.005


def test_checksum_failure(tmp_path, monkeypatch):
    _, path, _ = make_registry(tmp_path, "m2")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    monkeypatch.setenv("GCZ_WEIGHTS", str(tmp_path))
    zoo._cache.clear()
    with pytest.raises(GczModelError, match="checksum"):
        zoo.load_model(zoo.find_model("m2"))


def test_missing_weight_file_and_bad_manifest(tmp_path, monkeypatch):
    _, path, _ = make_registry(tmp_path, "m3")
    path.unlink()
    monkeypatch.setenv("GCZ_WEIGHTS", str(tmp_path))
    zoo._cache.clear()
    with pytest.raises(GczModelError, match="unreadable"):
        zoo.load_model(zoo.find_model("m3"))
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(GczModelError, match="malformed"):
        zoo.list_models()


def test_user_dirs_shadow_shipped(tmp_path, monkeypatch):
    make_registry(tmp_path, "gcz-c4")
    monkeypatch.setenv("GCZ_WEIGHTS", str(tmp_path))
    assert zoo.find_model("gcz-c4").path.parent == tmp_path
    assert zoo.search_dirs()[0] == tmp_path and zoo.search_dirs()[-1] == zoo.SHIPPED_DIR


def test_unknown_model(tmp_path, monkeypatch):
    monkeypatch.setenv("GCZ_WEIGHTS", str(tmp_path))
    with pytest.raises(GczModelError, match="unknown model"):
        zoo.find_model("does-not-exist")


def test_manifest_schema(tmp_path):
    make_registry(tmp_path, "m4")
    doc = json.loads((tmp_path / "manifest.json").read_text())
    item = doc["models"]["m4"]
    assert doc["manifest_version"] == 1
    assert {"file", "sha256", "arch", "fixed_norm", "training"} <= set(item)


@pytest.mark.parametrize("name", ["../outside.pt", "/etc/passwd", "sub/dir.pt", "..", "a\\b.pt", ""])
def test_manifest_file_names_cannot_leave_their_folder(tmp_path, monkeypatch, name):
    (tmp_path / "manifest.json").write_text(json.dumps({"manifest_version": 1, "models": {"m": {
        "file": name, "sha256": "00" * 32, "arch": named_config("tiny", 4).to_dict()}}}))
    with pytest.raises(GczModelError, match="plain file name"):
        zoo.read_manifest(tmp_path)


def test_current_metrics_follow_the_manifests_pointer(tmp_path):
    arch = named_config("tiny", 2)
    entry = zoo.ModelEntry("m", tmp_path / "m.pt", "0" * 64, arch, info={"metrics": {"bpp": 0.03}})
    assert entry.current_metrics == {"bpp": 0.03}  # the publication's own measurement
    newer = {"bpp": 0.03, "with_context": {"bpp": 0.025}, "current": "with_context"}
    assert zoo.ModelEntry("m", tmp_path, "0" * 64, arch, info={"metrics": newer}).current_metrics == {"bpp": 0.025}
    for broken in ({"bpp": 0.03, "current": "missing"}, {"bpp": 0.03, "current": ["x"]}, {"bpp": 0.03, "current": "bpp"}):
        assert zoo.ModelEntry("m", tmp_path, "0" * 64, arch, info={"metrics": broken}).current_metrics == broken
    assert zoo.ModelEntry("m", tmp_path, "0" * 64, arch).current_metrics == {}

