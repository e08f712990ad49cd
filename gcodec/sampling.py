"""Images from no image at all: decoding sampled codes (docs/method.md section 1, Sampling).

Two sources of codes, so that they can be compared:

* ``sampler``: the model's trained latent sampler (a WGAN-GP generator of
  codes, :mod:`gcodec.models.sampler`), which turns G into an image generator;
* ``uniform``: every symbol independently uniform over the L levels, the
  paper's baseline, which decodes to a "soup" of domain patches.

Codes go through the same decoder as ``.gcz`` files (:mod:`gcodec.backends`,
:mod:`gcodec.tiling`), at any realism the model supports.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from . import limits, noise, zoo
from . import realism as realism_mod
from .container import latent_size
from .errors import GczInputError

METHODS = ("sampler", "uniform")
#: Most images one call may ask for.
MAX_COUNT = 100_000


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` -> (width, height), each 16..65535."""
    try:
        width, height = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise GczInputError(f"--size takes WIDTHxHEIGHT, e.g. 512x384, not {text!r}") from None
    if not (16 <= width <= 65535 and 16 <= height <= 65535):
        raise GczInputError(f"--size sides must be between 16 and 65535, not {width}x{height}")
    return width, height


def model_with_sampler(entry: zoo.ModelEntry) -> zoo.ModelEntry:
    """``entry`` if it has a trained latent sampler, else the installed model of its channels that has one
    (the most recently listed); a GczInputError naming ``--uniform`` when none has."""
    if entry.has_sampler:
        return entry
    same = [e for e in zoo.list_models() if e.has_sampler and not e.arch.selective
            and e.arch.latent_channels == entry.arch.latent_channels]
    if not same:
        raise GczInputError(f"no installed model with C = {entry.arch.latent_channels} has a trained latent "
                            "sampler: use --uniform codes, or another --channels")
    return same[-1]


def sample_symbols(entry: zoo.ModelEntry, method: str, width: int, height: int, seed: int) -> np.ndarray:
    """One code (C, h, w) of int64 symbols for a ``width`` x ``height`` image, reproducible from ``seed``."""
    h, w = latent_size(height, width, 16)
    levels = entry.arch.levels
    if method == "uniform":
        rng = np.random.Generator(np.random.PCG64(seed))
        return rng.integers(0, levels, size=(entry.arch.latent_channels, h, w), dtype=np.int64)
    if method != "sampler":
        raise GczInputError(f"unknown sampling method {method!r}; use one of {', '.join(METHODS)}")
    import torch

    from .models.sampler import draw_levels, noise_shape

    gen = zoo.load_head(entry, "sampler")
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn((1, *noise_shape(h, w, gen.config)), generator=rng)
    with torch.no_grad():
        levels = draw_levels(gen(z)[:, :, :, :h, :w], rng)
    return levels[0].argmax(dim=1).numpy().astype(np.int64)


def sample_images(entry: zoo.ModelEntry, count: int, width: int, height: int, seed: int = 0,
                  method: str = "sampler", realism: float | None = None, backend: str = "auto",
                  device: str = "auto", max_pixels: int | None = None) -> Iterator[np.ndarray]:
    """``count`` uint8 images (height, width, 3), image i decoded from the code of seed ``seed + i``.

    Every argument is checked before this returns (the images are made as the
    iterator is consumed).  Stochastic models draw their noise from the same
    seed.  The pixel limit (:mod:`gcodec.limits`) applies to ``width`` x ``height``.
    """
    from . import backends

    if not 1 <= count <= MAX_COUNT:
        raise GczInputError(f"-n must be between 1 and {MAX_COUNT}, not {count}")
    if method not in METHODS:
        raise GczInputError(f"unknown sampling method {method!r}; use one of {', '.join(METHODS)}")
    if not 0 <= seed <= noise.MAX_SEED - count:
        raise GczInputError(f"--seed must be between 0 and {noise.MAX_SEED - count} for {count} images")
    limits.check_pixels(width, height, max_pixels, "requested image")
    if method == "sampler":
        zoo.head_entry(entry, "sampler")
    alpha = realism_mod.resolve(entry, None, realism)
    net = backends.load(entry, backend, device)
    return _decode_samples(entry, net, realism_mod.generate_at(net, alpha), count, width, height, seed, method)


def _decode_samples(entry: zoo.ModelEntry, net: "backends.Network", generate: "tiling.GenerateFn",  # noqa: F821
                    count: int, width: int, height: int, seed: int, method: str) -> Iterator[np.ndarray]:
    from . import tiling

    for i in range(count):
        symbols = sample_symbols(entry, method, width, height, seed + i)
        latent = net.generator_input(symbols, seed + i if entry.stochastic else None)
        pixels = tiling.synthesize(generate, latent, None if net.tileable else math.inf)
        yield pixels[:height, :width]
