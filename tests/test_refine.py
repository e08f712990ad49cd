"""Encoder-side refinement (gcodec/refine.py): symbols chosen by gradient descent through the decoder."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import gcodec
import reference_decoder
from gcodec import codec, entropy, noise, refine, zoo
from gcodec.errors import GczInputError
from gcodec.imageio import LoadedImage, pad_image, to_unit
from gcodec.profile import EncodeProfile
from gcodec.models import GCModel, named_config
from conftest import HEADED_MODEL, STOCHASTIC_MODEL, photo_like

#: Pure distortion, no perceptual network: the tests' tiny models are about pixels only.
MSE_ONLY = refine.Objective(perceptual=0.0, lowpass=0.0, rate=0.0, learning_rate=0.1)


def _tiny(channels: int = 4, seed: int = 3) -> GCModel:
    """A tiny random model whose latent spreads over all levels and whose generator responds to it
    (at its random initialisation the output hardly depends on the latent)."""
    torch.manual_seed(seed)
    model = GCModel(named_config("tiny", channels)).eval()
    with torch.no_grad():
        model.encoder.net[-1][-1].weight.mul_(20.0)
        for layer in model.generator.modules():
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                layer.weight.mul_(2.0)
    return model


def _decoded_mse(model: GCModel, symbols: np.ndarray, padded: np.ndarray, height: int, width: int) -> float:
    out = model.decode_symbols(torch.from_numpy(symbols)[None])[0].numpy()
    return float(((out - to_unit(padded)[0]) ** 2)[:, :height, :width].mean())


def _bytes(symbols: np.ndarray, levels: int) -> int:
    tables = entropy.best_tables(symbols, levels)
    return len(entropy.encode(symbols, tables))


def test_zero_steps_are_the_encoders_symbols():
    model = _tiny()
    padded = pad_image(photo_like(64, 80), 16, 32)
    want = model.encode_symbols(torch.from_numpy(to_unit(padded)))[0].numpy()
    got = refine.refine_symbols(model, padded, 64, 80, 0)
    assert got.dtype == np.int64 and np.array_equal(got, want)


def test_refinement_brings_the_decode_closer_to_the_image():
    model = _tiny()
    pixels = photo_like(60, 90, seed=1)
    padded = pad_image(pixels, 16, 32)
    before = refine.refine_symbols(model, padded, 60, 90, 0)
    after = refine.refine_symbols(model, padded, 60, 90, 25, objective=MSE_ONLY)
    assert after.shape == before.shape and after.min() >= 0 and after.max() < model.config.levels
    assert (after != before).mean() > 0.01
    assert _decoded_mse(model, after, padded, 60, 90) < 0.97 * _decoded_mse(model, before, padded, 60, 90)
    assert all(p.grad is None for p in model.parameters())  # the network itself is never touched


def test_the_padding_is_not_scored(monkeypatch):
    """Pixels outside the image's own height x width never pull on the symbols."""
    model = _tiny()
    padded = pad_image(photo_like(40, 48, seed=2), 16, 64)  # 64 x 64: 24 rows and 16 columns of padding
    other = padded.copy()
    other[40:], other[:, 48:] = 0, 255
    with torch.no_grad():  # the encoder sees the padding: start both from the same latent
        start = model.encoder(torch.from_numpy(to_unit(padded)))
    monkeypatch.setattr(refine, "_encoder_latent", lambda *_: start.clone())
    a = refine.refine_symbols(model, padded, 40, 48, 10, objective=MSE_ONLY)
    b = refine.refine_symbols(model, other, 40, 48, 10, objective=MSE_ONLY)
    c = refine.refine_symbols(model, padded, 64, 64, 10, objective=MSE_ONLY)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_a_rate_weight_makes_the_file_smaller():
    model = _tiny(channels=8, seed=5)
    padded = pad_image(photo_like(64, 64, seed=3), 16, 32)
    plain = refine.refine_symbols(model, padded, 64, 64, 20, objective=MSE_ONLY)
    frugal = refine.refine_symbols(model, padded, 64, 64, 20, objective=dataclasses.replace(MSE_ONLY, rate=20.0))
    assert _bytes(frugal, model.config.levels) < _bytes(plain, model.config.levels)


def test_the_step_size_decays_by_a_half_cosine():
    objective = refine.Objective(learning_rate=0.2, final_fraction=0.1)
    sizes = [refine.step_size(objective, k, 30) for k in range(30)]
    assert sizes[0] == pytest.approx(0.2) and sizes[-1] == pytest.approx(0.02)
    assert sizes[14] == pytest.approx(0.2 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 14 / 29))))
    assert all(a > b for a, b in zip(sizes, sizes[1:]))
    assert refine.step_size(objective, 0, 1) == pytest.approx(0.2)  # one step: the full step size


def test_the_best_step_is_kept_not_the_last():
    """A step size far too large scatters the iterates; what comes back is never worse, by the objective,
    than the encoder's own symbols (the best of the steps, the start among them)."""
    model = _tiny(seed=6)
    padded = pad_image(photo_like(48, 64, seed=5), 16, 32)
    start = refine.refine_symbols(model, padded, 48, 64, 0)
    wild = dataclasses.replace(MSE_ONLY, learning_rate=50.0, final_fraction=1.0)
    got = refine.refine_symbols(model, padded, 48, 64, 6, objective=wild)
    assert _decoded_mse(model, got, padded, 48, 64) <= _decoded_mse(model, start, padded, 48, 64) * (1 + 1e-6)
    # and where a step is better, it is taken: the same run with a sane step size improves on the start
    sane = refine.refine_symbols(model, padded, 48, 64, 6, objective=MSE_ONLY)
    assert _decoded_mse(model, sane, padded, 48, 64) < _decoded_mse(model, start, padded, 48, 64)


def test_the_fast_layout_is_a_channels_last_copy_with_the_same_outputs():
    model = _tiny()
    fast = refine.fast_layout(model.generator)
    assert fast is not model.generator
    weight = next(p for p in fast.parameters() if p.dim() == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert all(p.is_contiguous() for p in model.generator.parameters())  # the original is untouched
    latent = model.quantizer.dequantize(torch.randint(0, model.config.levels, (1, 4, 3, 5)))
    with torch.no_grad():
        assert torch.allclose(fast(latent), model.generator(latent), atol=1e-5)


def _block_error(model: GCModel, symbols: np.ndarray, padded: np.ndarray, height: int, width: int) -> float:
    """Mean absolute error of 8 x 8 block means (the low-pass term's measure)."""
    out = model.decode_symbols(torch.from_numpy(symbols)[None])[0].numpy()[:, :height, :width]
    error = (out - to_unit(padded)[0][:, :height, :width]).reshape(3, height // 8, 8, width // 8, 8)
    return float(np.abs(error.mean(axis=(2, 4))).mean())


def test_the_lowpass_term_trades_pixel_error_for_block_colours():
    """With the low-pass term the 8 x 8 block means come closer to the image's, at some cost in pixel MSE."""
    model = _tiny()
    padded = pad_image(photo_like(64, 80, seed=6), 16, 32)
    plain = refine.refine_symbols(model, padded, 64, 80, 20, objective=MSE_ONLY)
    lowpass = refine.refine_symbols(model, padded, 64, 80, 20, objective=dataclasses.replace(MSE_ONLY, lowpass=20.0))
    assert _block_error(model, lowpass, padded, 64, 80) < 0.99 * _block_error(model, plain, padded, 64, 80)
    assert _decoded_mse(model, lowpass, padded, 64, 80) > _decoded_mse(model, plain, padded, 64, 80)


def test_symbol_bits_follow_the_symbol_frequencies():
    model = _tiny(channels=2)
    centers = model.quantizer.centers
    latent = torch.stack([torch.full((4, 4), float(centers[0])), torch.full((4, 4), float(centers[2]))])[None]
    latent[0, 0, 0, :2] = centers[1]
    bits = refine._symbol_bits(model.quantizer, latent)
    counts = torch.tensor([[15.0, 3, 1, 1, 1], [1, 1, 17, 1, 1]])  # one extra of every symbol
    assert torch.allclose(bits, -torch.log2(counts / counts.sum(1, keepdim=True)))


def test_context_bits_follow_the_frequencies_in_each_context():
    model = _tiny(channels=1)
    centers = model.quantizer.centers
    latent = torch.full((1, 1, 3, 4), float(centers[2]))
    latent[0, 0, 1, 1] = centers[0]
    bits = refine.context_bits(model.quantizer.symbols(latent), model.quantizer.levels)
    assert bits.shape == (1, 25, 5)
    # context (W=2, N=2) holds the 0 and nine 2s (the 0's right and lower neighbours have other contexts);
    # the channel's counts plus one of every symbol start each context
    channel = torch.tensor([2.0, 1, 12, 1, 1]) / 17
    mixed = torch.tensor([1.0, 0, 9, 0, 0]) + refine.CONTEXT_PRIOR_SYMBOLS * channel
    assert torch.allclose(bits[0, 2 * 5 + 2], -torch.log2(mixed / mixed.sum()))
    unseen = refine.CONTEXT_PRIOR_SYMBOLS * channel  # a context no symbol has: the channel's frequencies
    assert torch.allclose(bits[0, 4 * 5 + 4], -torch.log2(unseen / unseen.sum()))


def test_local_bits_are_what_changing_one_symbol_costs():
    """A symbol is its right and lower neighbours' context: changing it changes their bits too."""
    import itertools

    rng = torch.Generator().manual_seed(0)
    symbols = torch.randint(0, 5, (2, 4, 6), generator=rng)
    bits = torch.rand(2, 25, 5, generator=rng)

    def total(grid: torch.Tensor) -> float:
        contexts = refine._contexts(grid, 5)
        return float(sum(bits[c, contexts[c, y, x], grid[c, y, x]]
                         for c, y, x in itertools.product(range(2), range(4), range(6))))

    own, local = refine.local_bits(bits, symbols, 5)
    for c, y, x in itertools.product(range(2), range(4), range(6)):
        totals = []
        for s in range(5):
            changed = symbols.clone()
            changed[c, y, x] = s
            totals.append(total(changed))
        for s in range(5):
            assert abs((totals[s] - totals[0]) - float(local[c, y, x, s] - local[c, y, x, 0])) < 1e-4
        context = refine._contexts(symbols, 5)[c, y, x]
        assert torch.allclose(own[c, y, x], bits[c, context])


def test_the_context_rate_makes_the_context_code_smaller():
    """The context estimate is a rate term: with it the context-coded file is smaller than without a rate."""
    from gcodec import payload

    model = _tiny(channels=8, seed=5)
    padded = pad_image(photo_like(128, 128, seed=3), 16, 32)
    free = refine.refine_symbols(model, padded, 128, 128, 20, objective=MSE_ONLY)
    frugal = refine.refine_symbols(model, padded, 128, 128, 20, objective=dataclasses.replace(MSE_ONLY, rate=20.0))
    assert refine.Objective().context_rate and not MSE_ONLY.rate

    def context_bytes(symbols: np.ndarray) -> int:
        code = payload.code_latent(symbols, model.config.levels)
        assert code.context_prior is not None
        return payload._bytes(code)

    assert context_bytes(frugal) < 0.7 * context_bytes(free)


def test_the_objective_follows_the_files_code():
    """--no-context files are refined as gcz 0.7.1 refined them, so they come out byte for byte as it wrote."""
    assert refine.objective_for(False) == refine.Objective(rate=4.0, context_rate=False)
    assert refine.objective_for(True) == refine.Objective(rate=4.0, context_rate=True)


def test_large_images_are_refined_window_by_window(monkeypatch):
    model = _tiny()
    pixels = photo_like(100, 140, seed=4)
    padded = pad_image(pixels, 16, 32)  # 112 x 144: latent 7 x 9
    monkeypatch.setattr(refine, "WINDOW_PIXELS", 64 * 64)
    monkeypatch.setattr(refine, "WINDOW_CORE", 4)
    monkeypatch.setattr(refine, "WINDOW_MARGIN", 1)
    seen = []
    window = refine._refine_window
    monkeypatch.setattr(refine, "_refine_window", lambda *a, **k: (seen.append(a[6]), window(*a, **k)))
    before = refine.refine_symbols(model, padded, 100, 140, 0)
    after = refine.refine_symbols(model, padded, 100, 140, 25, objective=MSE_ONLY)
    assert sorted(seen) == [(0, 4, 0, 4), (0, 4, 4, 8), (0, 4, 5, 9), (3, 7, 0, 4), (3, 7, 4, 8), (3, 7, 5, 9)]
    assert _decoded_mse(model, after, padded, 100, 140) < 0.97 * _decoded_mse(model, before, padded, 100, 140)


def test_reporting_counts_every_step_of_every_window(monkeypatch):
    model = _tiny()
    padded = pad_image(photo_like(100, 140, seed=4), 16, 32)  # latent 7 x 9: six windows of cores 4
    monkeypatch.setattr(refine, "WINDOW_PIXELS", 64 * 64)
    monkeypatch.setattr(refine, "WINDOW_CORE", 4)
    monkeypatch.setattr(refine, "WINDOW_MARGIN", 1)
    calls: list[tuple[int, int]] = []
    with refine.reporting(lambda done, total: calls.append((done, total))):
        refine.refine_symbols(model, padded, 100, 140, 3, objective=MSE_ONLY)
    assert calls == [(k, 18) for k in range(1, 19)]
    refine.refine_symbols(model, padded, 100, 140, 2, objective=MSE_ONLY)  # outside the block: no calls
    assert len(calls) == 18


def test_steps_in_force(monkeypatch):
    monkeypatch.delenv(refine.ENV_VAR, raising=False)
    assert refine.steps_in_force() == refine.DEFAULT_STEPS == 30
    assert refine.steps_in_force(0) == 0 and refine.steps_in_force(7) == 7
    monkeypatch.setenv(refine.ENV_VAR, " 12 ")
    assert refine.steps_in_force() == 12 and refine.steps_in_force(3) == 3
    for bad in ("-1", "x", "2.5", str(refine.MAX_STEPS + 1)):
        monkeypatch.setenv(refine.ENV_VAR, bad)
        with pytest.raises(GczInputError, match=refine.ENV_VAR):
            refine.steps_in_force()


def test_the_default_encode_refines_as_its_effort_level_says(tiny_weights, monkeypatch):
    from gcodec import effort

    monkeypatch.delenv(refine.ENV_VAR, raising=False)
    monkeypatch.delenv(effort.ENV_VAR, raising=False)
    calls = []
    monkeypatch.setattr(refine, "refine_symbols", lambda *a, **k: calls.append(a[4]) or np.zeros((4, 2, 2), np.int64))
    gcodec.compress(photo_like(32, 32), channels=4, colour=False)
    default_steps = effort.DEFAULT_SEARCH.steps
    assert default_steps > 0 and calls == [default_steps]
    monkeypatch.setenv(refine.ENV_VAR, "0")  # the expert setting, from the environment: no refinement
    gcodec.compress(photo_like(32, 32), channels=4, colour=False)
    assert calls == [default_steps]


@pytest.mark.parametrize("bad", [-1, refine.MAX_STEPS + 1, 2.5, True, "3", None])
def test_bad_step_counts_are_refused(bad):
    with pytest.raises(GczInputError, match="refinement steps"):
        refine.check_steps(bad)


def test_refined_files_are_ordinary_gcz_files(tiny_weights):
    pixels = photo_like(80, 96, seed=6)
    plain = gcodec.compress(pixels, channels=4, colour=False)
    refined = gcodec.compress(pixels, channels=4, colour=False, refine_steps=4)
    a, b = gcodec.read_header(plain), gcodec.read_header(refined)
    assert (a.width, a.height, a.model_name, a.channels) == (b.width, b.height, b.model_name, b.channels)
    assert codec.decode_symbols(a).shape == codec.decode_symbols(b).shape
    assert not np.array_equal(codec.decode_symbols(a), codec.decode_symbols(b))
    _, channels = reference_decoder.decode_symbols(refined)  # the independent decoder reads it alike
    assert np.array_equal(np.array(channels).reshape(codec.decode_symbols(b).shape), codec.decode_symbols(b))
    assert np.asarray(gcodec.decompress(refined)).shape == (80, 96, 3)


def test_refinement_looks_at_the_decode_the_file_asks_for(tiny_weights, monkeypatch):
    """A stored realism refines through the realism head; a stochastic model with the default noise."""
    calls = []
    real = refine.refine_symbols
    monkeypatch.setattr(refine, "refine_symbols", lambda *a, **k: (calls.append(a), real(*a, **k))[1])
    pixels = photo_like(48, 64, seed=7)
    entry = zoo.find_model(HEADED_MODEL)
    data = codec.compress_loaded(LoadedImage(pixels), entry, EncodeProfile(realism=0.25, colour=False, refine_steps=2))
    assert gcodec.read_header(data).realism == 25
    generate = calls[-1][5]
    model = zoo.load_model(entry)
    latent = torch.zeros(1, model.config.latent_channels, 3, 4)
    with torch.no_grad():
        assert not torch.allclose(generate(latent), model.generator(latent))  # the head's residual is added
    stochastic = zoo.find_model(STOCHASTIC_MODEL)
    codec.compress_loaded(LoadedImage(pixels), stochastic, EncodeProfile(colour=False, refine_steps=2))
    assert calls[-1][5] is None and calls[-1][6] == noise.DEFAULT_SEED


def test_refinement_runs_the_shipped_feature_network(tiny_weights):
    """The default objective (perceptual term on) loads the shipped, checksummed feature network."""
    pixels = photo_like(64, 64, seed=8)
    data = gcodec.compress(pixels, channels=2, colour=True, refine_steps=2)
    assert gcodec.read_header(data).width == 64


def test_bf16_refinement_runs_where_native_and_is_float32_elsewhere(tiny_weights, monkeypatch):
    model = zoo.load_model(zoo.find_model("gcz-c4"))
    padded = pad_image(photo_like(64, 64, seed=9), 16, codec.MIN_PADDED_SIDE)
    exact = refine.refine_symbols(model, padded, 64, 64, 3, objective=refine.Objective(perceptual=0.0))
    monkeypatch.setattr(refine, "bf16_native", lambda device: False)
    assert np.array_equal(exact, refine.refine_symbols(model, padded, 64, 64, 3, bf16=True,
                                                       objective=refine.Objective(perceptual=0.0)))
    monkeypatch.setattr(refine, "bf16_native", lambda device: True)  # autocast works on any CPU, if slowly
    fast = refine.refine_symbols(model, padded, 64, 64, 3, bf16=True, objective=refine.Objective(perceptual=0.0))
    assert fast.shape == exact.shape and fast.dtype == exact.dtype
    assert isinstance(refine.bf16_native(torch.device("cpu")), bool)
