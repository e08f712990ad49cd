"""Context-adaptive coding of the latent (gcodec.context, format_spec.md 3.10 and 5.2)."""
from __future__ import annotations

import numpy as np
import pytest

from gcodec import container, context, entropy
from gcodec.errors import GczEntropyError, GczFormatError

import reference_decoder
from conftest import older_reader


def correlated_symbols(seed: int, shape: tuple[int, int, int]) -> np.ndarray:
    """Symbols 0..4 of a smooth random field per channel (neighbours agree, as in real latents)."""
    rng = np.random.default_rng(seed)
    field = rng.normal(size=shape).cumsum(axis=1).cumsum(axis=2)
    field /= np.maximum(field.std(axis=(1, 2), keepdims=True), 1e-9)
    return np.clip(np.round(field * 1.2) + 2, 0, 4).astype(np.int64)


def context_file(symbols: np.ndarray, width: int, height: int, prior: int = context.DEFAULT_PRIOR,
                 precision: int = 4) -> bytes:
    """A plain file whose PAYLOAD is coded with the context models."""
    tables = entropy.tables_for(symbols, 5, precision)
    gcz = container.GczFile(width, height, "gcz-c4", bytes.fromhex("0a1b2c3d"), symbols.shape[0], 5, 16, tables,
                            context.encode(symbols, tables, prior), context_prior=prior)
    return container.write(gcz)


@pytest.mark.parametrize("seed,shape", [(0, (4, 5, 6)), (1, (2, 2, 2)), (2, (8, 33, 17)), (3, (1, 64, 64))])
def test_round_trip(seed, shape):
    symbols = correlated_symbols(seed, shape)
    tables = entropy.best_tables(symbols, 5)
    for prior in (0, 1, context.DEFAULT_PRIOR, 255):
        payload = context.encode(symbols, tables, prior)
        assert np.array_equal(context.decode(payload, tables, shape, prior), symbols)


def test_round_trip_with_a_heatmap():
    """Selective files code only the heatmap's positions; neighbours outside it read as the centre symbol."""
    symbols = correlated_symbols(4, (8, 12, 10))
    coded = np.random.default_rng(4).random((12, 10)) < 0.5
    tables = entropy.best_tables(symbols[:, coded], 5)
    payload = context.encode(symbols, tables, 100, coded)
    assert np.array_equal(context.decode(payload, tables, symbols.shape, 100, coded), np.where(coded, symbols, 2))
    # the symbols outside the heatmap do not matter to the encoder
    other = symbols.copy()
    other[:, ~coded] = 0
    assert context.encode(other, tables, 100, coded) == payload


def test_beats_the_static_code_on_correlated_symbols():
    symbols = correlated_symbols(5, (4, 32, 48))
    tables = entropy.best_tables(symbols, 5)
    static = len(entropy.encode(symbols, tables))
    adaptive = len(context.encode(symbols, tables))
    assert adaptive < 0.8 * static
    assert abs(context.code_bits(symbols, tables) / 8 - adaptive) < 8  # the coder is within bytes of ideal


def test_models_halve_above_max_total():
    """A long run in one context drives the model past 1024 and it halves (spec 5.2); the reference
    decoder, written from the spec, agrees symbol for symbol."""
    symbols = np.full((1, 40, 40), 3, np.int64)
    symbols[0, ::7, ::5] = 1
    data = context_file(symbols, 640, 640)
    header, decoded = reference_decoder.decode_symbols(data)
    assert np.array_equal(np.array(decoded).reshape(symbols.shape), symbols)
    cum = context.initial_cumulative(np.array([1, 1, 12, 1, 1]), 4, 100)
    assert cum == [0, 7, 14, 90, 97, 104]  # 1 + floor(100 * f / 16)
    for _ in range(40):
        context._update(cum, 2)
    # without halving the total would be 104 + 40 * 24 = 1064; it halved once on passing 1024
    assert cum[-1] < 104 + 40 * context.INCREMENT and cum[-1] <= context.MAX_TOTAL + context.INCREMENT
    assert cum[1] - cum[0] == 4  # 7 halved, rounding up


@pytest.mark.parametrize("seed", range(8))
def test_reference_decoder_agrees(seed):
    """format_spec.md 5.2 is complete: the independent decoder reads the same symbols."""
    rng = np.random.default_rng(seed)
    channels = [2, 4, 8][seed % 3]
    height, width = int(rng.integers(17, 400)), int(rng.integers(17, 400))
    shape = (channels,) + container.latent_size(height, width, 16)
    symbols = correlated_symbols(seed, shape)
    data = context_file(symbols, width, height, prior=int(rng.integers(0, 256)), precision=int(rng.integers(3, 17)))
    header, decoded = reference_decoder.decode_symbols(data)
    assert np.array_equal(np.array(decoded).reshape(shape), symbols)


def test_random_payloads_decode_to_valid_symbols_or_fail_cleanly():
    tables = entropy.tables_for(correlated_symbols(0, (4, 6, 6)), 5, 4)
    rng = np.random.default_rng(0)
    for n in (0, 1, 3, 40):
        out = context.decode(rng.bytes(n), tables, (4, 6, 6), 100)
        assert out.shape == (4, 6, 6) and out.min() >= 0 and out.max() <= 4


def test_bad_arguments():
    symbols = correlated_symbols(0, (4, 6, 6))
    tables = entropy.best_tables(symbols, 5)
    with pytest.raises(GczEntropyError, match="prior"):
        context.encode(symbols, tables, 256)
    with pytest.raises(GczEntropyError, match="0..4"):
        context.encode(symbols + 5, tables)
    with pytest.raises(GczEntropyError, match="shape"):
        context.encode(symbols[:2], tables)
    with pytest.raises(GczEntropyError, match="heatmap"):
        context.decode(b"", tables, (4, 6, 6), 100, np.ones((5, 6), bool))


def test_context_section_round_trip():
    symbols = correlated_symbols(1, (4, 5, 6))
    data = context_file(symbols, 96, 80, prior=37)
    gcz = container.read(data)
    assert gcz.context_prior == 37
    section = [s for s in container.read_sections(data) if s.type == container.SEC_CONTEXT]
    assert [(s.critical, s.body) for s in section] == [(True, bytes([37]))]
    assert container.write(gcz) == data
    gcz.context_prior = 256
    with pytest.raises(GczFormatError, match="prior"):
        container.write(gcz)


@pytest.mark.parametrize("body", [b"", b"\x10\x10"])
def test_bad_context_sections(body):
    from test_container import _with_sections, make_file

    data, _ = make_file()
    with pytest.raises(GczFormatError, match="CONTEXT"):
        container.read(_with_sections(data, container.Section(container.SEC_CONTEXT, 1, body)))
    sec = container.Section(container.SEC_CONTEXT, 1, b"\x10")
    with pytest.raises(GczFormatError, match="duplicate CONTEXT"):
        container.read(_with_sections(data, sec, sec))


def test_old_readers_refuse_context_files():
    """gcz 0.7 did not know 0x0A: the section being critical, it refuses instead of decoding wrong symbols."""
    data = context_file(correlated_symbols(2, (4, 5, 6)), 96, 80)
    with pytest.raises(GczFormatError, match="0x0a.*upgrade"), older_reader(container.SEC_CONTEXT):
        container.read(data)
