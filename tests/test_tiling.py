"""Tiled encoder / generator passes agree with the direct ones and leave no seams."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import gcodec
from conftest import photo_like
from gcodec import tiling
from gcodec.backends.torch_net import TorchNetwork, can_tile
from gcodec.imageio import from_unit, to_unit
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
    spans = tiling.spans(50, 16, 4)
    assert spans[0][0] == 0 and spans[-1][1] == 50
    assert all(b - a == 16 for a, b in spans)
    assert all(spans[i][1] - spans[i + 1][0] >= 4 for i in range(len(spans) - 1))
    assert tiling.spans(10, 16, 4) == [(0, 10)]


def test_blending_weights_sum_to_one_across_an_overlap():
    a = tiling._ramp(20, 0, 6)
    b = tiling._ramp(20, 6, 0)
    assert np.allclose(a[-6:] + b[:6], 1.0)


@pytest.mark.parametrize("length,tile,overlap", [(50, 16, 4), (125, 64, 4), (13, 6, 2), (7, 6, 2)])
def test_axis_weights_are_a_partition_of_unity(length, tile, overlap):
    spans = tiling.spans(length, tile, overlap)  # (125, 64, 4) puts three spans over some positions
    total = np.zeros(length * 2)
    for (a, _), w in zip(spans, tiling._axis_weights(spans, 2)):
        total[a * 2:a * 2 + w.size] += w
    assert np.allclose(total, 1.0)


def _net(model: GCModel) -> TorchNetwork:
    return TorchNetwork(model, "cpu")


def _direct_pixels(model: GCModel, symbols: torch.Tensor, seed=None) -> np.ndarray:
    return from_unit(model.decode_symbols(symbols, seed=seed).numpy())


def test_tiled_synthesis_matches_direct_decode():
    model = _model()
    symbols = torch.randint(0, 5, (1, 4, 13, 19))
    tiled = tiling.synthesize_tiled(_net(model).generate, _net(model).generator_input(symbols[0].numpy()),
                                    tile=6, overlap=2, margin=4)
    direct = _direct_pixels(model, symbols)
    assert tiled.dtype == np.uint8 and tiled.shape == direct.shape
    assert np.abs(tiled.astype(int) - direct.astype(int)).max() <= 1


def test_wide_images_get_shorter_tile_rows_with_the_same_result(monkeypatch):
    model = _model()
    symbols = torch.randint(0, 5, (1, 4, 20, 9))
    latent = _net(model).generator_input(symbols[0].numpy())
    full = tiling.synthesize_tiled(_net(model).generate, latent, tile=12, overlap=2, margin=4)
    shapes = []
    monkeypatch.setattr(tiling, "MIN_TILE_ROWS", 5)
    monkeypatch.setattr(tiling, "BAND_BUDGET_BYTES", 2 * 16 * 9 * 16 * 3 * 4 * 5)  # room for 5-row tiles

    def generate(x):
        shapes.append(x.shape[2])
        return _net(model).generate(x)

    short = tiling.synthesize_tiled(generate, latent, tile=12, overlap=2, margin=4)
    assert max(shapes) <= 5 + 2 * 4
    assert np.abs(short.astype(int) - full.astype(int)).max() <= 1


def test_no_seams_even_with_too_little_context():
    # margin 0: tile borders see reflection padding instead of neighbours; the cross-fade must keep
    # the error at tile boundaries small and smooth (no step), i.e. no visible seam.
    model = _model()
    symbols = torch.randint(0, 5, (1, 4, 12, 12))
    direct = _direct_pixels(model, symbols).astype(float)
    tiled = tiling.synthesize_tiled(_net(model).generate, _net(model).generator_input(symbols[0].numpy()),
                                    tile=6, overlap=2, margin=0).astype(float)
    col_err = np.abs(tiled - direct).mean(axis=(0, 2)) / 127.5  # per column, in [-1, 1] units
    assert col_err.max() < 0.1
    assert np.abs(col_err[1:] - col_err[:-1]).max() < 0.03  # no jump between neighbouring columns


def test_tiled_encoder_matches_direct():
    model = _model()
    pixels = photo_like(16 * 11, 16 * 14)
    direct = _net(model).encode(to_unit(pixels))[0]
    tiled = tiling.encode_tiled(_net(model).encode, pixels, tile=4, margin=4)
    assert tiled.shape == direct.shape and tiled.dtype == np.int64
    assert (tiled != direct).mean() < 0.01


def test_noise_is_drawn_for_the_whole_latent():
    model = _model(noise=2)
    symbols = torch.randint(0, 5, (1, 4, 10, 10))
    latent = _net(model).generator_input(symbols[0].numpy(), seed=7)
    tiled = tiling.synthesize_tiled(_net(model).generate, latent, tile=5, overlap=2, margin=4)
    assert np.abs(tiled.astype(int) - _direct_pixels(model, symbols, seed=7).astype(int)).max() <= 1


def test_instance_norm_models_are_tiled_only_with_fixed_statistics():
    model = _model(norm="instance")
    assert not can_tile(model)
    set_fixed_norm(model, True)
    assert can_tile(model)
    assert can_tile(_model())


def test_dispatch_by_size_keeps_small_images_on_the_direct_path(monkeypatch):
    model = _model()
    symbols = torch.randint(0, 5, (1, 4, 8, 8))
    latent = _net(model).generator_input(symbols[0].numpy())
    calls = []
    orig = tiling.synthesize_tiled
    monkeypatch.setattr(tiling, "synthesize_tiled", lambda *a, **k: calls.append(1) or orig(*a, **k))
    assert np.array_equal(tiling.synthesize(_net(model).generate, latent), _direct_pixels(model, symbols))
    assert not calls
    tiling.synthesize(_net(model).generate, latent, threshold=100)
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
    assert used == ["E", "G", "G"]  # encode, the encoder's own decode for its COLOUR fit, decode
    assert out.shape == reference.shape
    assert np.abs(out.astype(int) - reference.astype(int)).max() <= 2
