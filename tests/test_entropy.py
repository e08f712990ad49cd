"""Frequency tables and the guarded range coder."""
from __future__ import annotations

import numpy as np
import pytest

from gcodec import entropy
from gcodec.errors import GczEntropyError


def random_case(rng: np.random.Generator):
    channels = int(rng.integers(1, 9))
    levels = int(rng.choice([2, 3, 5, 7]))
    h, w = int(rng.integers(0, 12)), int(rng.integers(1, 12))
    probs = rng.dirichlet(np.full(levels, rng.choice([0.1, 0.5, 2.0])), size=channels)
    symbols = np.stack([rng.choice(levels, size=(h, w), p=probs[c]) for c in range(channels)])
    return symbols, levels


def test_fuzz_round_trip_symbol_exact():
    rng = np.random.default_rng(1234)
    for _ in range(2000):
        symbols, levels = random_case(rng)
        precision = int(rng.integers(max(2, int(np.ceil(np.log2(levels)))), entropy.MAX_PRECISION + 1))
        tables = entropy.tables_for(symbols, levels, precision)
        payload = entropy.encode(symbols, tables)
        assert np.array_equal(entropy.decode(payload, tables, symbols.shape), symbols)


def test_mismatched_random_tables_round_trip():
    """Tables that do not match the data (any valid table) still code exactly."""
    rng = np.random.default_rng(7)
    for _ in range(500):
        symbols, levels = random_case(rng)
        precision = int(rng.integers(4, 17))
        freqs = np.stack([entropy.quantize_counts(rng.integers(0, 1000, levels), precision)
                          for _ in range(symbols.shape[0])])
        tables = entropy.FrequencyTables(precision, freqs)
        assert np.array_equal(entropy.decode(entropy.encode(symbols, tables), tables, symbols.shape), symbols)


def test_payload_close_to_cross_entropy():
    rng = np.random.default_rng(5)
    for channels in (2, 4, 8):
        probs = rng.dirichlet(np.ones(5), size=channels)
        symbols = np.stack([rng.choice(5, size=(32, 48), p=probs[c]) for c in range(channels)])
        tables = entropy.best_tables(symbols, 5)
        ideal = tables.cross_entropy_bits(symbols) / 8
        assert len(entropy.encode(symbols, tables)) <= ideal * 1.01 + 8


@pytest.mark.parametrize("precision", range(3, 17))
def test_quantize_counts_properties(precision):
    rng = np.random.default_rng(precision)
    for _ in range(50):
        counts = rng.integers(0, 10_000, 5) * rng.integers(0, 2, 5)
        freqs = entropy.quantize_counts(counts, precision)
        assert freqs.sum() == 2 ** precision
        assert freqs.min() >= 1
        # more frequent symbols never get smaller frequencies
        order = np.argsort(counts, kind="stable")
        assert np.all(np.diff(freqs[order]) >= -1)


def test_best_tables_picks_cheapest_precision():
    symbols = np.zeros((4, 8, 8), dtype=np.int64)
    tables = entropy.best_tables(symbols, 5)
    cost = entropy.table_bits(4, 5, tables.precision) + tables.cross_entropy_bits(symbols)
    for p in range(4, 17):
        other = entropy.tables_for(symbols, 5, p)
        assert cost <= entropy.table_bits(4, 5, p) + other.cross_entropy_bits(symbols) + 1e-9


def test_rejects_invalid_symbols_and_tables():
    tables = entropy.tables_for(np.zeros((1, 4), dtype=np.int64), 5, 8)
    with pytest.raises(GczEntropyError):
        entropy.encode(np.array([[0, -1, 2, 3]]), tables)
    with pytest.raises(GczEntropyError):
        entropy.encode(np.array([[0, 5, 2, 3]]), tables)
    with pytest.raises(GczEntropyError):
        entropy.encode(np.array([[0.5, 1, 2, 3]]), tables)
    with pytest.raises(GczEntropyError):
        entropy.encode(np.zeros((2, 4), dtype=np.int64), tables)
    with pytest.raises(GczEntropyError):
        entropy.FrequencyTables(17, np.array([[2 ** 17 - 4, 1, 1, 1, 1]]))
    with pytest.raises(GczEntropyError):
        entropy.FrequencyTables(8, np.array([[256, 0, 0, 0, 0]]))
    with pytest.raises(GczEntropyError):
        entropy.FrequencyTables(8, np.array([[100, 1, 1, 1, 1]]))


def test_decode_of_garbage_is_in_range():
    """A range decoder cannot detect damage, but its output must stay a valid symbol array."""
    rng = np.random.default_rng(3)
    tables = entropy.tables_for(rng.integers(0, 5, (4, 6, 6)), 5, 10)
    for n in range(0, 64):
        out = entropy.decode(rng.bytes(n), tables, (4, 6, 6))
        assert out.min() >= 0 and out.max() < 5


def test_no_temp_files_left(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    symbols = np.ones((2, 4, 4), dtype=np.int64)
    tables = entropy.tables_for(symbols, 5, 8)
    entropy.decode(entropy.encode(symbols, tables), tables, symbols.shape)
    assert list(tmp_path.iterdir()) == []
