"""The latent's code chosen per file (gcodec.payload): static or context-adaptive, whichever is smaller."""
from __future__ import annotations

import numpy as np

from gcodec import entropy, payload

from test_context import correlated_symbols


def test_correlated_latents_take_the_context_code():
    symbols = correlated_symbols(0, (4, 32, 48))
    code = payload.code_latent(symbols, 5)
    static = payload.code_latent(symbols, 5, use_context=False)
    assert code.context_prior is not None and code.tables.precision == payload.CONTEXT_PRECISION
    assert payload._bytes(code) < 0.8 * payload._bytes(static)
    assert np.array_equal(payload.decode_latent(code.payload, code.tables, symbols.shape, code.context_prior), symbols)


def test_without_context_the_static_code_is_unchanged():
    """--no-context writes exactly gcz 0.7.1's tables and payload."""
    symbols = correlated_symbols(1, (8, 10, 12))
    code = payload.code_latent(symbols, 5, use_context=False)
    tables = entropy.best_tables(symbols, 5)
    assert code.context_prior is None and np.array_equal(code.tables.freqs, tables.freqs)
    assert code.payload == entropy.encode(symbols, tables)


def test_the_static_code_is_kept_where_contexts_do_not_pay():
    """Independent symbols: the context models cannot win back their section's bytes."""
    symbols = np.random.default_rng(2).integers(0, 5, size=(4, 3, 3))
    code = payload.code_latent(symbols, 5)
    assert code.context_prior is None
    assert np.array_equal(payload.decode_latent(code.payload, code.tables, symbols.shape, None), symbols)


def test_selective_positions_both_ways():
    symbols = correlated_symbols(3, (8, 20, 16))
    coded = np.zeros((20, 16), bool)
    coded[3:17, 2:12] = True
    expected = np.where(coded, symbols, 2)
    for use_context in (True, False):
        code = payload.code_latent(symbols, 5, coded, use_context)
        assert (code.context_prior is not None) == use_context
        back = payload.decode_latent(code.payload, code.tables, symbols.shape, code.context_prior, coded)
        assert np.array_equal(back, expected)
    empty = np.zeros((20, 16), bool)
    code = payload.code_latent(symbols, 5, empty)
    assert code.context_prior is None
    assert np.array_equal(payload.decode_latent(code.payload, code.tables, symbols.shape, None, empty),
                          np.full(symbols.shape, 2))
