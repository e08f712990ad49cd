"""Network architectures of gcz (inference side; the discriminator is training-only).

``config`` needs no torch; the networks are imported on first use, so
commands that run no network (``gcz info``, ``gcz models``) start fast.
"""
from __future__ import annotations

from typing import Any

from .config import CONFIGS, DOWNSAMPLING, ArchConfig, named_config

__all__ = ["ArchConfig", "CONFIGS", "DOWNSAMPLING", "GCModel", "count_parameters", "named_config"]


def __getattr__(name: str) -> Any:
    if name in ("GCModel", "count_parameters"):
        from . import gc
        return getattr(gc, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
