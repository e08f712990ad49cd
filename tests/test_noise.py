"""Seeded noise of stochastic models: integer-derived, reproducible, as format_spec.md section 8 says."""
from __future__ import annotations

import numpy as np
import pytest

from gcodec import noise
from gcodec.errors import GczInputError


def test_spec_formula_and_pinned_values():
    v = noise.latent_noise(7, 2, 3, 4)
    assert v.shape == (1, 2, 3, 4) and v.dtype == np.float32
    raw = np.random.PCG64(7).random_raw(24)
    expected = np.array([(int(r) >> 40) / 2**23 - 1 for r in raw], dtype=np.float32).reshape(1, 2, 3, 4)
    assert np.array_equal(v, expected)
    # pinned: a change of the stream would change every stochastic decode
    assert v.flatten()[:3].tolist() == pytest.approx([0.2501908540725708, 0.7944275140762329, 0.5513713359832764],
                                                     abs=1e-7)


def test_range_default_and_distinct_seeds():
    v = noise.latent_noise(None, 4, 32, 32)
    assert np.array_equal(v, noise.latent_noise(noise.DEFAULT_SEED, 4, 32, 32))
    assert v.min() >= -1 and v.max() < 1 and abs(float(v.mean())) < 0.05
    assert not np.array_equal(v, noise.latent_noise(1, 4, 32, 32))


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_bad_seeds(seed):
    with pytest.raises(GczInputError, match="seed"):
        noise.check_seed(seed)
