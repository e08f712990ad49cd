"""What every benchmark shares: a test photo of any size and a description of the machine.

Used by ``gcz bench`` (:mod:`gcodec.eval.bench`), the realism-knob benchmark and
the training-speed table (:mod:`gcodec.train.speed`), so none of them imports
another's package.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

#: The photo benchmarks crop and resize when no other is given (a checkout's example).
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mountain.jpg"


def test_image(width: int, height: int, source: Path | None = None) -> np.ndarray:
    """A photo of exactly ``width`` x ``height``: ``source`` (or the bundled example) cropped and resized,
    or, without any photo, a deterministic photo-like synthetic image."""
    from PIL import Image, ImageOps

    src = source or EXAMPLE
    if src.is_file():
        with Image.open(src) as img:
            return np.asarray(ImageOps.fit(img.convert("RGB"), (width, height), Image.Resampling.LANCZOS))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([np.sin(xx / 37.0 + c) * np.cos(yy / 53.0 - c) for c in range(3)], axis=-1)
    return np.clip(127 + 90 * base + rng.normal(0, 10, (height, width, 3)), 0, 255).astype(np.uint8)



def machine_info() -> dict[str, Any]:
    """The machine, Python, torch and ONNX Runtime versions a benchmark ran on."""
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count(), "python": platform.python_version(),
                            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        import onnxruntime
        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        if names:
            info["processor"] = names[0]
    except OSError:
        pass
    return info
