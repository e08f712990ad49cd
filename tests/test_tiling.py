"""Tiled encoder / generator passes agree with the direct ones and leave no seams."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import gcodec
from conftest import photo_like
from gcodec import tiling
from gcodec.models import GCModel, named_config
from gcodec.models.layers import set_fixed_norm


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _model(channels: int = 4, norm: str = "none", noise: int = 0) -> GCModel:
    import dataclasses
    torch.manual_seed(0)
    cfg = dataclasses.replace(named_config("tiny", channels), norm=norm, noise_channels=noise)
    model = GCModel(cfg).eval()
    with torch.no_grad():  # non-trivial residual branches
        for p in model.generator.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def test_spans_cover_everything_with_overlap():
    spans = tiling._spans(50, 16, 4)
    assert spans[0][0] == 0 and spans[-1][1] == 50
    assert all(b - a == 16 for a, b in spans)
    assert all(spans[i][1] - spans[i + 1][0] >= 4 for i in range(len(spans) - 1))
    assert tiling._spans(10, 16, 4) == [(0, 10)]


def test_blending_weights_sum_to_one_across_an_overlap():
    a = tiling._ramp(20, 0, 6)
    b = tiling._ramp(20, 6, 0)
    assert torch.allclose(a[-6:] + b[:6], torch.ones(6))


def test_tiled_synthesis_matches_direct_decode():
    model = _model()
    symbols = torch.randint(0, 5, (1, 4, 13, 19))
    direct = model.decode_symbols(symbols)
    tiled = tiling.synthesize_tiled(model, symbols, tile=6, overlap=2, margin=4)
    assert tiled.shape == direct.shape
    assert (tiled - direct).abs().max() < 1e-4


def test_no_seams_even_with_too_little_context():
    # margin 0: tile borders see reflection padding instead of neighbours; the cross-fade must keep
    # the error at tile boundaries small and smooth (no step), i.e. no visible seam.
    model = _model()
    symbols = torch.randint(0, 5, (1, 4, 12, 12))
    direct = model.decode_symbols(symbols)
    tiled = tiling.synthesize_tiled(model, symbols, tile=6, overlap=2, margin=0)
    err = (tiled - direct).abs().mean(dim=(0, 1))  # (H, W)
    col_err = err.mean(dim=0)
    assert col_err.max() < 0.1
    assert (col_err[1:] - col_err[:-1]).abs().max() < 0.02  # no jump between neighbouring columns


def test_tiled_encoder_matches_direct():
    model = _model()
    x = torch.rand(1, 3, 16 * 11, 16 * 14) * 2 - 1
    direct = model.encode_symbols(x)
    tiled = tiling.encode_tiled(model, x, tile=4, margin=4)
    assert tiled.shape == direct.shape and tiled.dtype == direct.dtype
    assert (tiled != direct).float().mean() < 0.01


def test_noise_is_drawn_for_the_whole_latent():
    model = _model(noise=2)
    symbols = torch.randint(0, 5, (1, 4, 10, 10))
    direct = model.decode_symbols(symbols, seed=7)
    tiled = tiling.synthesize_tiled(model, symbols, tile=5, overlap=2, margin=4, seed=7)
    assert (tiled - direct).abs().max() < 1e-4


def test_instance_norm_models_are_tiled_only_with_fixed_statistics():
    model = _model(norm="instance")
    assert not tiling.can_tile(model)
    set_fixed_norm(model, True)
    assert tiling.can_tile(model)
    assert tiling.can_tile(_model())


def test_dispatch_by_size_keeps_small_images_on_the_direct_path(monkeypatch):
    model = _model()
    symbols = torch.randint(0, 5, (1, 4, 8, 8))
    calls = []
    monkeypatch.setattr(tiling, "synthesize_tiled", lambda *a, **k: calls.append(1) or model.decode_symbols(a[1]))
    assert torch.equal(tiling.decode_symbols(model, symbols), model.decode_symbols(symbols))
    assert not calls
    tiling.decode_symbols(model, symbols, threshold=100)
    assert calls


def test_codec_uses_tiles_for_large_images(tiny_weights, monkeypatch):
    """Lower the threshold so a small image takes the tiled path through compress/decompress."""
    img = photo_like(160, 208)
    reference = np.asarray(gcodec.decompress(gcodec.compress(img, channels=4)))
    for name, value in (("TILE_THRESHOLD_PIXELS", 64 * 64), ("DEFAULT_TILE", 4), ("DEFAULT_OVERLAP", 1),
                        ("DEFAULT_MARGIN", 4)):
        monkeypatch.setattr(tiling, name, value)
    used = []
    orig_synth, orig_enc = tiling.synthesize_tiled, tiling.encode_tiled
    monkeypatch.setattr(tiling, "synthesize_tiled", lambda *a, **k: used.append("G") or orig_synth(*a, **k))
    monkeypatch.setattr(tiling, "encode_tiled", lambda *a, **k: used.append("E") or orig_enc(*a, **k))
    out = np.asarray(gcodec.decompress(gcodec.compress(img, channels=4)))
    assert used == ["E", "G"]
    assert out.shape == reference.shape
    assert np.abs(out.astype(int) - reference.astype(int)).max() <= 2
