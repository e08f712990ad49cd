"""Compact checkpoints: small verified parts that resume a run on another machine."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from gcodec.errors import GczInputError
from gcodec.train import compact
from gcodec.train.loop import Trainer
from test_train import config, folder  # noqa: F401 - fixture


def test_round_trip_types_and_split(tmp_path, folder):  # noqa: F811
    trainer = Trainer(config(tmp_path, folder, iterations=2), status=lambda s: None)
    trainer.run()
    state = trainer.state()
    files = compact.save_compact(state, tmp_path / "c", max_part_bytes=20_000)  # smaller than some tensors
    parts = [f for f in files if f.name.startswith("part-")]
    assert len(parts) > 3 and all(f.stat().st_size <= 20_000 for f in parts)
    meta = json.loads((tmp_path / "c" / "compact.json").read_text())
    assert meta["iteration"] == 2 and meta["optimizer"] and meta["chunks"]
    back = compact.load_compact(tmp_path / "c")
    for key, value in state["model"].items():
        assert back["model"][key].dtype == value.dtype
        assert torch.allclose(back["model"][key], value, rtol=1e-3, atol=1e-4)
    adam = back["opt_g"]["state"][0]
    assert adam["step"] == state["opt_g"]["state"][0]["step"]  # step counts are kept exactly
    for name in ("exp_avg", "exp_avg_sq"):  # 8-bit blockwise: within a step of the block's largest value
        a, b = adam[name], state["opt_g"]["state"][0][name]
        assert a.shape == b.shape and a.dtype == b.dtype
        assert (a - b).abs().max() <= b.abs().max() / 100
    assert (adam["exp_avg_sq"] > 0).all()  # never restored as zero: m / sqrt(v) stays finite
    assert back["opt_g"]["param_groups"] == state["opt_g"]["param_groups"]
    assert torch.equal(back["torch_rng"], state["torch_rng"])
    assert back["config"] == state["config"] and back["arch"] == state["arch"]


def test_run_resumes_on_another_machine_from_the_compact_folder_alone(tmp_path, folder):  # noqa: F811
    first = Trainer(config(tmp_path, folder, iterations=2), status=lambda s: None)
    first.run()
    assert (tmp_path / "run" / "compact" / "compact.json").is_file()
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copytree(tmp_path / "run" / "compact", moved / "compact")  # only what comes back from a GPU burst
    second = Trainer(config(tmp_path, folder, out_dir=str(moved), iterations=4), status=lambda s: None)
    assert second.iteration == 2
    for key, value in first.model.state_dict().items():
        assert torch.allclose(second.model.state_dict()[key], value, rtol=1e-3, atol=1e-4)
    assert second.run()["iteration"] == 4


def test_damaged_part_is_refused(tmp_path, folder):  # noqa: F811
    trainer = Trainer(config(tmp_path, folder, iterations=1, compact=False), status=lambda s: None)
    trainer.run()
    assert not (tmp_path / "run" / "compact").exists()
    compact.save_compact(trainer.state(), tmp_path / "c", optimizer=False)
    assert "opt_g" not in compact.load_compact(tmp_path / "c")
    part = tmp_path / "c" / "part-000.pt"
    data = bytearray(part.read_bytes())
    data[100] ^= 1
    part.write_bytes(bytes(data))
    with pytest.raises(GczInputError, match="sha256"):
        compact.load_compact(tmp_path / "c")
    with pytest.raises(GczInputError, match="not a readable compact checkpoint"):
        compact.load_compact(tmp_path)


def test_warm_start_from_an_installed_model_name(tmp_path, folder, tiny_weights):  # noqa: F811
    from gcodec import zoo
    trainer = Trainer(config(tmp_path, folder, init_from="gcz-c2"), status=lambda s: None)
    shipped = zoo.load_model(zoo.find_model("gcz-c2")).state_dict()
    for key, value in shipped.items():
        assert torch.equal(trainer.model.state_dict()[key], value)
    with pytest.raises(GczInputError, match="no such checkpoint"):
        Trainer(config(tmp_path, folder, out_dir=str(tmp_path / "other"), init_from="nope"), status=lambda s: None)


def test_pack_split(tmp_path):
    import numpy as np
    from PIL import Image

    from gcodec.data.pack import pack_split
    root = tmp_path / "pool"
    (root / "photos").mkdir(parents=True)
    records = []
    for i, split in enumerate(["train", "train", "val"]):
        Image.fromarray(np.full((300, 1500, 3), 40 * i, np.uint8)).save(root / "photos" / f"p{i}.png")
        records.append({"file": f"p{i}.png", "split": split})
    (root / "index.json").write_text(json.dumps({"images": records}))
    summary = pack_split(root, tmp_path / "out", max_side=600)
    assert summary["files"] == 2 and sorted(p.name for p in (tmp_path / "out").glob("*.jpg")) == ["p0.jpg", "p1.jpg"]
    assert Image.open(tmp_path / "out" / "p0.jpg").size == (600, 120)
    with pytest.raises(GczInputError, match="gcz data fetch"):
        pack_split(tmp_path / "missing", tmp_path / "o2")


def test_moving_average_is_stored_as_an_8_bit_difference(tmp_path, folder):  # noqa: F811
    trainer = Trainer(config(tmp_path, folder, iterations=3, ema=0.5, compact=False), status=lambda s: None)
    trainer.run()
    state = trainer.state()
    compact.save_compact(state, tmp_path / "plain", optimizer=False)
    plain = dict(state)
    del plain["model_ema"], plain["ema_updates"]
    compact.save_compact(plain, tmp_path / "without", optimizer=False)
    meta = json.loads((tmp_path / "plain" / "compact.json").read_text())
    assert meta["format_version"] == compact.FORMAT_VERSION_EMA_DELTA and meta["deltas"]
    assert json.loads((tmp_path / "without" / "compact.json").read_text())["format_version"] == 1
    stored = {}
    for part in meta["parts"]:
        stored.update(torch.load(tmp_path / "plain" / part["file"], weights_only=True))
    averaged = {f"/model_ema/{k}": v for k, v in state["model_ema"].items() if v.is_floating_point() and v.numel() > 1}
    assert set(meta["deltas"]) == set(averaged)
    assert all(stored[key].dtype == torch.int8 for key in averaged)  # a byte per value, not float16's two
    back = compact.load_compact(tmp_path / "plain")
    for key, value in state["model_ema"].items():
        assert back["model_ema"][key].dtype == value.dtype
        if value.is_floating_point():  # finer than float16 of the value itself
            assert (back["model_ema"][key] - value).abs().max() <= max(1e-6, value.abs().max().item() / 2000)
    assert back["ema_updates"] == 3
    resumed = Trainer(config(tmp_path, folder, out_dir=str(tmp_path / "moved"), iterations=4, ema=0.5),
                      status=lambda s: None)
    assert resumed.iteration == 0  # nothing there yet; now carry the compact folder over
    shutil.copytree(tmp_path / "plain", tmp_path / "moved2" / "compact")
    resumed = Trainer(config(tmp_path, folder, out_dir=str(tmp_path / "moved2"), iterations=4, ema=0.5),
                      status=lambda s: None)
    assert resumed.iteration == 3 and resumed.ema_updates == 3
    for key, value in back["model_ema"].items():
        assert torch.equal(resumed.ema_model.state_dict()[key], value)
    manifest = tmp_path / "plain" / "compact.json"  # a difference against a weight that is not there
    meta["deltas"][next(iter(meta["deltas"]))] = "/model/no-such-weight"
    manifest.write_text(json.dumps(meta))
    with pytest.raises(GczInputError, match="does not match"):
        compact.load_compact(tmp_path / "plain")
    meta["format_version"] = 1
    manifest.write_text(json.dumps(meta))
    with pytest.raises(GczInputError, match="format version 2"):
        compact.load_compact(tmp_path / "plain")
