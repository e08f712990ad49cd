"""The realism slider through the library API: stored defaults, overrides, models without a head."""
from __future__ import annotations

import numpy as np
import pytest

import gcodec
from gcodec import container, realism, zoo
from gcodec.errors import GczInputError, GczModelError

from conftest import HEADED_MODEL, photo_like


def test_resolve_order(tiny_weights):
    headed, plain = zoo.find_model(HEADED_MODEL), zoo.find_model("gcz-c8")
    assert realism.resolve(headed, None, None) == 1.0
    assert realism.resolve(headed, 25, None) == 0.25
    assert realism.resolve(headed, 25, 0.75) == 0.75
    assert realism.resolve(plain, None, 1.0) == 1.0
    with pytest.raises(GczModelError, match="no realism head"):
        realism.resolve(plain, None, 0.5)
    with pytest.raises(GczModelError, match="stored realism"):
        realism.resolve(plain, 50, None)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "x"])
def test_bad_alpha(bad):
    with pytest.raises(GczInputError, match="realism"):
        realism.check_alpha(bad)


def test_file_without_realism_is_unchanged(tiny_weights):
    img = photo_like(64, 80, seed=1)
    plain = gcodec.compress(img, channels=4, colour=False)
    assert gcodec.read_header(plain).realism is None
    assert container.SEC_REALISM not in [s.type for s in container.read_sections(plain)]
    stored = gcodec.compress(img, channels=4, realism=0.3, colour=False)
    assert gcodec.read_header(stored).realism == 30
    assert stored[:len(plain) - 4] == plain[:-4]  # the same sections, then REALISM: no symbol changes
    full = np.asarray(gcodec.decompress(plain))
    assert np.array_equal(np.asarray(gcodec.decompress(plain, realism=1.0)), full)
    assert np.array_equal(np.asarray(gcodec.decompress(stored, realism=1.0)), full)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_alpha_moves_the_output(tiny_weights, backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    img = photo_like(64, 80, seed=2)
    data = gcodec.compress(img, channels=4, realism=0.3)
    by_alpha = {a: np.asarray(gcodec.decompress(data, realism=a, backend=backend), dtype=np.int16)
                for a in (0.0, 0.3, 0.6, 1.0)}
    assert np.array_equal(np.asarray(gcodec.decompress(data, backend=backend), dtype=np.int16), by_alpha[0.3])
    assert not np.array_equal(by_alpha[0.0], by_alpha[1.0])
    # x' = G + (1 - alpha) R is linear in alpha: away from clipping and rounding, 0.3 lies between
    lo, hi = np.minimum(by_alpha[0.0], by_alpha[1.0]), np.maximum(by_alpha[0.0], by_alpha[1.0])
    assert np.mean((by_alpha[0.6] >= lo - 1) & (by_alpha[0.6] <= hi + 1)) > 0.99


def test_backends_agree_on_realism(tiny_weights):
    pytest.importorskip("onnxruntime")
    data = gcodec.compress(photo_like(48, 64, seed=3), channels=4)
    a = np.asarray(gcodec.decompress(data, realism=0.2, backend="torch"), dtype=np.int16)
    b = np.asarray(gcodec.decompress(data, realism=0.2, backend="onnxruntime"), dtype=np.int16)
    assert np.abs(a - b).max() <= 2


def test_models_without_head_refuse_realism(tiny_weights):
    with pytest.raises(GczModelError, match="no realism head"):
        gcodec.compress(photo_like(32, 32), channels=8, realism=0.5)
    data = gcodec.compress(photo_like(32, 32), channels=8)
    with pytest.raises(GczModelError, match="no realism head"):
        gcodec.decompress(data, realism=0.0)
    assert gcodec.decompress(data, realism=1.0).size == (32, 32)


def test_damaged_head_is_refused(tiny_weights, tmp_path, monkeypatch):
    import shutil

    from conftest import make_tiny_weights

    folder = tmp_path / "w"
    make_tiny_weights(folder)
    head = zoo.find_model(HEADED_MODEL).heads["realism"].path
    shutil.copy(head, folder / head.name)
    blob = bytearray((folder / head.name).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (folder / head.name).write_bytes(bytes(blob))
    monkeypatch.setenv("GCZ_WEIGHTS", str(folder))
    zoo._cache.clear()
    data = gcodec.compress(photo_like(32, 32), channels=4, backend="torch")
    try:
        with pytest.raises(GczModelError, match="realism head .* sha256"):
            gcodec.decompress(data, realism=0.5, backend="torch")
    finally:
        zoo._cache.clear()
