"""ONNX Runtime and PyTorch backends: same symbols, same images within rounding, a cache that heals."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gcodec
from conftest import photo_like
from gcodec import backends, zoo
from gcodec.backends import onnx_net
from gcodec.backends.onnx_net import OnnxNetwork
from gcodec.backends.torch_net import TorchNetwork
from gcodec.errors import GczInputError, GczModelError
from gcodec.imageio import to_unit

pytest.importorskip("onnxruntime")


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GCZ_CACHE", str(tmp_path / "cache"))
    onnx_net._loaded.clear()
    yield tmp_path / "cache"
    onnx_net._loaded.clear()


@pytest.mark.parametrize("channels", [2, 4, 8])
def test_encoder_symbols_match_torch_exactly(tiny_weights, channels):
    entry = zoo.find_model(f"gcz-c{channels}")
    image = to_unit(photo_like(96, 128, seed=channels))
    ort_syms = OnnxNetwork.load(entry).encode(image)
    torch_syms = TorchNetwork.load(entry).encode(image)
    assert ort_syms.dtype == np.int64 and np.array_equal(ort_syms, torch_syms)


def test_generator_matches_torch_within_rounding(tiny_weights):
    entry = zoo.find_model("gcz-c4")
    symbols = np.random.default_rng(0).integers(0, 5, (4, 6, 9))
    ort_net, torch_net = OnnxNetwork.load(entry), TorchNetwork.load(entry)
    a = ort_net.generate(ort_net.generator_input(symbols))
    b = torch_net.generate(torch_net.generator_input(symbols))
    assert a.shape == b.shape == (1, 3, 96, 144)
    assert np.abs(a - b).max() < 1e-3


def test_files_are_the_same_from_both_backends(tiny_weights):
    img = photo_like(80, 112)
    data = gcodec.compress(img, backend="onnxruntime")
    assert data == gcodec.compress(img, backend="torch")
    a = np.asarray(gcodec.decompress(data, backend="onnxruntime")).astype(int)
    b = np.asarray(gcodec.decompress(data, backend="torch")).astype(int)
    assert np.abs(a - b).max() <= 1


def test_cache_is_built_once_and_reused(tiny_weights, fresh_cache):
    entry = zoo.find_model("gcz-c2")
    folder = OnnxNetwork.load(entry).folder
    assert folder.parent.parent == fresh_cache
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["weights_sha256"] == entry.sha256
    stamp = (folder / "generator.onnx").stat().st_mtime_ns
    onnx_net._loaded.clear()
    assert OnnxNetwork.load(entry).folder == folder
    assert (folder / "generator.onnx").stat().st_mtime_ns == stamp  # not rebuilt


def test_damaged_cache_is_rebuilt(tiny_weights, fresh_cache):
    entry = zoo.find_model("gcz-c2")
    folder = OnnxNetwork.load(entry).folder
    good = (folder / "generator.onnx").read_bytes()
    (folder / "generator.onnx").write_bytes(good[:1000])  # truncated: the size check catches it
    onnx_net._loaded.clear()
    OnnxNetwork.load(entry)
    assert (folder / "generator.onnx").read_bytes() == good
    (folder / "generator.onnx").write_bytes(bytes(len(good)))  # right size, garbage: ONNX Runtime refuses
    onnx_net._loaded.clear()
    net = OnnxNetwork.load(entry)
    assert net.generate(net.generator_input(np.zeros((2, 2, 2), np.int64))).shape == (1, 3, 32, 32)


def test_unwritable_cache_still_decodes(tiny_weights, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GCZ_CACHE", str(blocker / "cache"))
    onnx_net._loaded.clear()
    try:
        net = OnnxNetwork.load(zoo.find_model("gcz-c2"))
        assert net.encode(to_unit(photo_like(32, 32))).shape == (1, 2, 2, 2)
    finally:
        onnx_net._loaded.clear()


def test_damaged_weights_are_refused_even_with_cached_graphs(tiny_weights, tmp_path, fresh_cache, monkeypatch):
    import shutil
    OnnxNetwork.load(zoo.find_model("gcz-c4"))  # graphs cached from the good weights
    onnx_net._loaded.clear()
    broken = tmp_path / "broken"
    shutil.copytree(tiny_weights, broken)
    data = bytearray((broken / "gcz-c4.pt").read_bytes())
    data[-5] ^= 1
    (broken / "gcz-c4.pt").write_bytes(bytes(data))
    monkeypatch.setenv("GCZ_WEIGHTS", str(broken))
    with pytest.raises(GczModelError, match="sha256"):
        OnnxNetwork.load(zoo.find_model("gcz-c4"))


def test_choose(tiny_weights):
    import dataclasses
    entry = zoo.find_model("gcz-c4")
    assert backends.choose(entry) == ("onnxruntime", "cpu")
    assert backends.choose(entry, "torch", "cpu") == ("torch", "cpu")
    assert backends.choose(entry, "auto", "cpu") == ("onnxruntime", "cpu")
    noisy = dataclasses.replace(entry, arch=dataclasses.replace(entry.arch, noise_channels=2))
    assert backends.choose(noisy, "auto", "cpu") == ("onnxruntime", "cpu")  # stochastic models run there too
    with pytest.raises(GczInputError, match="runs on the CPU"):
        backends.choose(entry, "onnxruntime", "cuda")
    with pytest.raises(GczInputError, match="unknown backend"):
        backends.choose(entry, "tensorflow")


@pytest.mark.parametrize("extra", [[], ["--realism", "0.4"], ["--seed", "5"]], ids=["plain", "realism", "seed"])
def test_cli_decompress_does_not_import_torch(tiny_weights, tmp_path, extra):
    from conftest import STOCHASTIC_MODEL

    model = STOCHASTIC_MODEL if "--seed" in extra else "gcz-c4"
    src = tmp_path / "x.gcz"
    src.write_bytes(gcodec.compress(photo_like(64, 64), model=model))
    OnnxNetwork.load(zoo.find_model(model))  # graphs cached, as after a first run
    code = ("import sys; from gcodec.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert 'rich' not in sys.modules, 'rich was imported'\n")
    result = subprocess.run([sys.executable, "-c", code, "decompress", str(src), "-o", str(tmp_path / "x.png"), *extra],
                            capture_output=True, env=os.environ.copy(), timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "x.png").is_file()


def test_stochastic_model_on_both_backends(tiny_weights):
    from conftest import STOCHASTIC_MODEL

    data = gcodec.compress(photo_like(64, 80, seed=4), model=STOCHASTIC_MODEL)
    outs = {(b, s): np.asarray(gcodec.decompress(data, seed=s, backend=b), dtype=np.int16)
            for b in ("onnxruntime", "torch") for s in (0, 1)}
    assert np.abs(outs["onnxruntime", 0] - outs["torch", 0]).max() <= 2
    assert not np.array_equal(outs["onnxruntime", 0], outs["onnxruntime", 1])  # the seed matters
    assert np.array_equal(np.asarray(gcodec.decompress(data, backend="onnxruntime"), dtype=np.int16),
                          outs["onnxruntime", 0])  # no seed = seed 0
