"""Where the networks run: ONNX Runtime on the CPU when it is installed, else PyTorch.

``gcz decompress`` spends most of a small image's time starting up: importing
PyTorch alone takes over a second on two cores, more than decoding the image.
ONNX Runtime imports in a tenth of that and runs these convolutions at least as
fast, so the coding path uses it whenever it can, from graphs exported once
per model and cached (:mod:`.onnx_net`).  PyTorch runs the networks when ONNX
Runtime is absent or a CUDA device is asked for.

ONNX Runtime also decodes byte-identically from one run to the next; PyTorch's
CPU convolutions with several threads were seen to differ in the last bit
between processes (1 to 4 runs in 12 on the tiny test models), which can move
a pixel by one level.  ``--seed N`` of a stochastic model therefore gives the
same bytes on every run with the default backend.

Every backend offers the same operations over numpy arrays, which is all
:mod:`gcodec.tiling` and :mod:`gcodec.codec` need.
"""
from __future__ import annotations

import importlib.util
from typing import Protocol

import numpy as np

from ..errors import GczInputError
from ..zoo import ModelEntry

#: Names accepted by ``--backend``.
BACKENDS = ("auto", "onnxruntime", "torch")
DEVICES = ("auto", "cpu", "cuda")


class Network(Protocol):
    """A model's encoder and generator behind one backend."""

    #: ``onnxruntime`` or ``torch``.
    backend: str
    #: ``cpu`` or ``cuda``.
    device: str
    #: Whether tiles agree with the whole image (no image-wide normalisation statistics).
    tileable: bool

    def encode(self, image: np.ndarray) -> np.ndarray:
        """float32 image (1, 3, H, W) in [-1, 1] -> int64 symbols (1, C, H/16, W/16)."""

    def generator_input(self, symbols: np.ndarray, seed: int | None = None) -> np.ndarray:
        """Symbols (C, h, w) -> what :meth:`generate` takes for them (1, C', h, w), noise included."""

    def generate(self, latent: np.ndarray) -> np.ndarray:
        """A crop of :meth:`generator_input`'s output -> float32 image (1, 3, 16h', 16w') in [-1, 1]."""

    def generate_realism(self, latent: np.ndarray, alpha: float) -> np.ndarray:
        """As :meth:`generate`, at realism ``alpha`` (models with a realism head, :mod:`gcodec.realism`)."""


def onnxruntime_installed() -> bool:
    """Whether ONNX Runtime can be imported (checked without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def choose(entry: ModelEntry, backend: str = "auto", device: str = "auto") -> tuple[str, str]:
    """The (backend, device) that will run ``entry`` for a ``--backend`` / ``--device`` request.

    ``auto`` prefers ONNX Runtime on the CPU; PyTorch is chosen when ONNX Runtime
    is missing or ``cuda`` is asked for.
    """
    if backend not in BACKENDS:
        raise GczInputError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise GczInputError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if backend == "onnxruntime":
        if device == "cuda":
            raise GczInputError("--backend onnxruntime runs on the CPU; use --backend torch for --device cuda")
        if not onnxruntime_installed():
            raise GczInputError("--backend onnxruntime: ONNX Runtime is not installed (pip install onnxruntime)")
        return "onnxruntime", "cpu"
    if backend == "auto" and device != "cuda" and onnxruntime_installed():
        return "onnxruntime", "cpu"
    return "torch", torch_device(device)


def torch_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` is checked to exist (imports torch)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise GczInputError("--device cuda requested but no CUDA device is available")
    return device


def load(entry: ModelEntry, backend: str = "auto", device: str = "auto") -> Network:
    """The network of ``entry`` on the backend :func:`choose` picks (loaded once per process)."""
    name, dev = choose(entry, backend, device)
    if name == "onnxruntime":
        from .onnx_net import OnnxNetwork
        return OnnxNetwork.load(entry)
    from .torch_net import TorchNetwork
    return TorchNetwork.load(entry, dev)
