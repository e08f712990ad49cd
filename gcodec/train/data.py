"""Training data: the bundled photo pool, a folder, Open Images, Cityscapes.

Images are preprocessed once into memory (uint8); batches are random crops
with random horizontal flips, sampling images with probability proportional
to their area (few images, many pixels).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.index import bundled_files

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm"}


@dataclass
class Sample:
    """One preprocessed training image (and an optional label map for GC D+)."""

    pixels: np.ndarray            # (H, W, 3) uint8
    labels: np.ndarray | None = None  # (H, W) uint8 class ids


def resize_longer_side(img: Image.Image, longer: int) -> Image.Image:
    """Downscale (never upscale) so the longer side is at most ``longer`` pixels."""
    scale = longer / max(img.size)
    if scale >= 1:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.LANCZOS)


def openimages_keep(img: Image.Image, longer: int = 768) -> bool:
    """Paper's Open Images filter: downscaled >= 1.25x to ``longer`` and not highly saturated.

    Drops images whose mean saturation > 0.9 or mean value > 0.8 (HSV).
    """
    if max(img.size) < 1.25 * longer:
        return False
    hsv = np.asarray(img.convert("RGB").resize((64, 64)).convert("HSV"), dtype=np.float32) / 255.0
    return not (hsv[..., 1].mean() > 0.9 or hsv[..., 2].mean() > 0.8)


def list_images(root: Path) -> list[Path]:
    """All image files below ``root``, sorted."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_dataset(kind: str, root: Path, split: str = "train", longer_side: int = 1024,
                 limit: int | None = None) -> list[Sample]:
    """Load and preprocess a dataset into memory.

    Args:
        kind: ``bundled``, ``folder``, ``openimages`` or ``cityscapes``.
        root: data root directory.
        split: ``train`` or ``val`` (bundled, cityscapes).
        longer_side: images are downscaled to this longer side (openimages: 768).
        limit: keep at most this many images.
    """
    samples: list[Sample] = []
    if kind == "cityscapes":
        files = sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))[:limit]
        for f in files:
            label_path = root / "gtFine" / split / f.parent.name / f.name.replace("leftImg8bit", "gtFine_labelIds")
            img = Image.open(f).convert("RGB").resize((1024, 512), Image.LANCZOS)
            labels = None
            if label_path.is_file():
                labels = np.asarray(Image.open(label_path).resize((1024, 512), Image.NEAREST), dtype=np.uint8)
            samples.append(Sample(np.asarray(img), labels))
        return samples
    if kind == "bundled":
        files = bundled_files(root, split)
    elif kind in ("folder", "openimages"):
        files = list_images(root)
    else:
        raise ValueError(f"unknown dataset kind {kind!r}")
    for f in files:
        if limit is not None and len(samples) >= limit:
            break
        with Image.open(f) as im:
            img = im.convert("RGB")
        if kind == "openimages":
            if not openimages_keep(img):
                continue
            img = resize_longer_side(img, 768)
        else:
            img = resize_longer_side(img, longer_side)
        samples.append(Sample(np.asarray(img)))
    if not samples:
        raise ValueError(f"no usable images found for dataset {kind!r} under {root}")
    return samples


class CropSampler:
    """Random area-weighted crops with flips, as float batches in [-1, 1]."""

    def __init__(self, samples: list[Sample], crop: int, seed: int = 0) -> None:
        self.samples = samples
        self.crop = crop
        self.rng = random.Random(seed)
        self.weights = [s.pixels.shape[0] * s.pixels.shape[1] for s in samples]

    def _crop(self, s: Sample) -> tuple[np.ndarray, np.ndarray | None]:
        h, w = s.pixels.shape[:2]
        pad_h, pad_w = max(0, self.crop - h), max(0, self.crop - w)
        pix, lab = s.pixels, s.labels
        if pad_h or pad_w:
            pix = np.pad(pix, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")
            lab = None if lab is None else np.pad(lab, ((0, pad_h), (0, pad_w)), mode="symmetric")
            h, w = pix.shape[:2]
        y = self.rng.randint(0, h - self.crop)
        x = self.rng.randint(0, w - self.crop)
        pix = pix[y:y + self.crop, x:x + self.crop]
        lab = None if lab is None else lab[y:y + self.crop, x:x + self.crop]
        if self.rng.random() < 0.5:
            pix = pix[:, ::-1]
            lab = None if lab is None else lab[:, ::-1]
        return pix, lab

    def batch(self, size: int) -> tuple["torch.Tensor", "torch.Tensor | None"]:  # noqa: F821
        """A batch (N, 3, crop, crop) in [-1, 1] and labels (N, crop, crop) or None."""
        import torch
        picks = self.rng.choices(self.samples, weights=self.weights, k=size)
        crops = [self._crop(s) for s in picks]
        x = torch.from_numpy(np.stack([c[0] for c in crops])).permute(0, 3, 1, 2).float() / 127.5 - 1
        labels = None
        if all(c[1] is not None for c in crops):
            labels = torch.from_numpy(np.stack([c[1] for c in crops]).astype(np.int64))
        return x, labels
