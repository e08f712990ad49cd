"""The noise input of stochastic models, drawn reproducibly from a seed.

Stochastic decoders (``noise_channels > 0``) take noise v from the uniform
prior on [-1, 1) beside the latent.  At decode time v is a pure function of
the seed, computed from integers only, so ``gcz decompress --seed N`` gives
the same noise on every machine and with every backend (format_spec.md
section 8):

    raw  = the first K outputs of numpy's PCG64 bit generator seeded with N
           (``PCG64(N).random_raw(K)``, a stream numpy keeps stable)
    v[i] = (raw[i] >> 40) / 2**23 - 1   (24 bits; exact in float32)

with K = channels * h * w in (channel, row, column) order.  Training draws
from the same uniform prior (:func:`uniform_like`).
"""
from __future__ import annotations

import numpy as np

from .errors import GczInputError

#: Seed used when the user gives none: decoding stays deterministic by default.
DEFAULT_SEED = 0
#: Largest accepted seed (PCG64 takes any non-negative integer; this keeps it a u64).
MAX_SEED = 2**64 - 1


def check_seed(seed: int | None) -> int:
    """The seed to use: ``DEFAULT_SEED`` for None; GczInputError outside 0..2^64-1."""
    if seed is None:
        return DEFAULT_SEED
    if not 0 <= seed <= MAX_SEED:
        raise GczInputError(f"--seed must be between 0 and {MAX_SEED}, not {seed}")
    return int(seed)


def latent_noise(seed: int | None, channels: int, height: int, width: int) -> np.ndarray:
    """float32 noise (1, channels, height, width), uniform on [-1, 1), reproducible from ``seed``."""
    raw = np.random.PCG64(check_seed(seed)).random_raw(channels * height * width)
    values = (raw >> np.uint64(40)).astype(np.float32) / np.float32(2 ** 23) - np.float32(1)
    return values.reshape(1, channels, height, width)


def uniform_like(reference: "torch.Tensor", channels: int, generator: "torch.Generator | None" = None) -> "torch.Tensor":  # noqa: F821
    """Training-time noise (N, channels, h, w) from the same uniform prior, on ``reference``'s device."""
    import torch

    n, _, h, w = reference.shape
    return torch.rand((n, channels, h, w), generator=generator, device=reference.device,
                      dtype=reference.dtype) * 2 - 1
