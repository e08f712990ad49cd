"""Person segmentation for ``--preserve person``: MediaPipe's offline selfie segmentation (optional extra).

``pip install 'gcz[person]'`` installs ``mediapipe==0.10.14``: the last
release whose wheel ships the selfie-segmentation models (Apache-2.0,
250 kB ``.tflite`` files inside the package, so nothing is downloaded at run
time) without pinning numpy below 2.  Later releases ship no models, and
0.10.15-0.10.21 need numpy < 2.  It pins protobuf < 5, which moves onnx back
to 1.22 in the same environment; gcz works with either.

The segmenter runs at encode time only (the decoder reads the stored
heatmap), so its floating-point output need not be bit-exact across machines.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..errors import GczInputError

#: Confidence above which a pixel counts as person.
THRESHOLD = 0.5
#: MediaPipe model: 0 = general (256x256 input), 1 = landscape (144x256).
MODEL_SELECTION = 0


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what TensorFlow Lite's C++ code prints on file descriptor 2 (INFO/WARNING banners)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured): nothing to silence
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def available() -> bool:
    """Whether MediaPipe's selfie segmentation can be imported."""
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        return False
    return True


def person_mask(pixels: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """(H, W) bool mask of the people in an RGB uint8 image (H, W, 3).

    Raises GczInputError when the optional extra is not installed, or when no
    person is found (``--preserve person`` would preserve nothing).
    """
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import mediapipe as mp
        seg_module = mp.solutions.selfie_segmentation
    except (ImportError, AttributeError):
        raise GczInputError("'person' needs MediaPipe's selfie segmentation: pip install 'gcz[person]' "
                            "(mediapipe==0.10.14)") from None
    with _quiet_native_stderr(), seg_module.SelfieSegmentation(model_selection=MODEL_SELECTION) as segmenter:
        confidence = segmenter.process(np.ascontiguousarray(pixels)).segmentation_mask
    if confidence is None:
        raise GczInputError("person segmentation returned no mask")
    mask = np.asarray(confidence) > threshold
    if not mask.any():
        raise GczInputError("no person found in the image ('person' would preserve nothing)")
    return mask
