"""The adaptive integer coder shared by the side sections (gcodec/adaptive.py, format_spec.md 5.1)."""
from __future__ import annotations

import pytest

from gcodec import adaptive


def test_counts_halve_and_stay_positive():
    model = adaptive.AdaptiveModel(3)
    for _ in range(5000):
        model.update(0)
    assert sum(model.freqs) <= adaptive.MAX_TOTAL and min(model.freqs) >= 1


def test_integers_round_trip():
    values = [0, 1, -1, 7, -300, 2**20, -(2**23)]

    def fill(w: adaptive.Writer) -> None:
        for v in values:
            w.sint("v", v)
        w.nonzero("n", -5)
        w.symbol("s", 7, 6)
        w.uint("u", 12345)

    def read(r: adaptive.Reader) -> list[int]:
        return [r.sint("v") for _ in values] + [r.nonzero("n"), r.symbol("s", 7), r.uint("u")]

    assert adaptive.decode_with(adaptive.encode_with(fill), read) == values + [-5, 6, 12345]


def test_values_beyond_the_bit_limit_are_refused():
    with pytest.raises(ValueError):
        adaptive.encode_with(lambda w: w.uint("u", 1 << adaptive.MAX_BITS))

