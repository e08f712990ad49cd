"""What the networks' graphs are called and what they take, shared by the exporter
(:mod:`gcodec.export`) and the backends that run them; numpy only, so the torch-free ONNX Runtime path
can import it."""
from __future__ import annotations

import numpy as np

from ..models.config import ArchConfig
from ..noise import latent_noise
from ..zoo import ModelEntry

#: The realism graph's file, built for models with a realism head.
REALISM_GRAPH = "generator_realism.onnx"


def graph_names(entry: ModelEntry) -> tuple[str, ...]:
    """The graph files of ``entry`` (what :func:`gcodec.export.export_onnx` writes)."""
    return ("encoder.onnx", "generator.onnx") + ((REALISM_GRAPH,) if entry.supports_realism else ())


def generator_input_name(entry: ModelEntry) -> str:
    """The generator graphs' image input: int64 ``symbols``, or the float ``latent`` (noise included)
    for models with a noise input."""
    return "latent" if entry.arch.noise_channels else "symbols"


def float_latent(symbols: np.ndarray, arch: ArchConfig, seed: int | None = None) -> np.ndarray:
    """The generator's float input (1, C + K, h, w): the quantizer centers of ``symbols`` (C, h, w),
    then, for a model with K noise channels, the noise of ``seed`` (:func:`gcodec.noise.latent_noise`).

    Noise is drawn once for the whole latent, so tiles cut the same noise."""
    latent = np.asarray(arch.centers, dtype=np.float32)[np.asarray(symbols)][None]
    if not arch.noise_channels:
        return latent
    return np.concatenate([latent, latent_noise(seed, arch.noise_channels, *latent.shape[2:])], axis=1)
