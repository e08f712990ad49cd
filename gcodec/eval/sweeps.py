"""Measurements of the decoder's steering knobs, each over one axis:

* :func:`realism_sweep`: PSNR, MS-SSIM and patch KID/FID of one model's
  reconstructions at several realism values alpha (EGIC's ORP);
* :func:`seed_spread`: the conditional pixel variance of a stochastic model
  (DPLC's PV: the variance of one file's decodings over many seeds);
* :func:`sample_quality`: patch KID/FID of images decoded from sampled codes
  (the trained sampler and uniform codes) against real photos.

Each returns a JSON-ready summary and writes a picture strip to look at.
KID/FID use EfficientNet-Lite1 features (:mod:`.metrics`), a different
network from the one in the training loss.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import codec, sampling, zoo
from . import metrics
from .runner import choose_crop, load_pixels

ProgressFn = Callable[[str], None]
#: Side of the crops in the strips (shown at 1:1).
STRIP_CROP = 256
GAP = 4
#: The sweeps measure the decoder's knobs on the encoder network's own symbols (as every record before gcz 0.7.0):
#: the refinement (:mod:`gcodec.refine`) optimises the file's default decode, not the other settings swept.
SWEEP_REFINE_STEPS = 0


def _strip(tiles: Sequence[np.ndarray]) -> np.ndarray:
    """Tiles (same height) side by side with a white gap."""
    h = tiles[0].shape[0]
    gap = np.full((h, GAP, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for i, tile in enumerate(tiles):
        parts += ([gap] if i else []) + [tile]
    return np.concatenate(parts, axis=1)


def _crop(pixels: np.ndarray, where: tuple[int, int, int]) -> np.ndarray:
    y, x, side = where
    return pixels[y:y + side, x:x + side]


def _save_crop(out: Path, method: str, image: str, pixels: np.ndarray) -> None:
    folder = out / "crops" / method
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(folder / f"{image}.png")


def _kid_fid(features: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    return {"kid": metrics.kid(features, reference), "fid": metrics.fid(features, reference)}


def realism_sweep(images: Sequence[Path], model: str, alphas: Sequence[float], out: Path,
                  max_side: int | None = 768, patch: int = 256, kid: bool = True,
                  progress: ProgressFn | None = None) -> dict[str, Any]:
    """Quality of ``model``'s decodings of ``images`` at each realism in ``alphas``.

    Writes ``out/realism.json``, ``out/realism_strip.png`` (the original and a
    1:1 crop at every alpha, for the first image) and the same crop of every image
    as ``out/crops/{original,realism-A}/<image>.png`` (the folders
    ``gcz prefs sheets`` takes; the crop is :func:`choose_crop`'s, as in ``gcz eval``).
    """
    entry = zoo.find_model(model)
    out.mkdir(parents=True, exist_ok=True)
    extractor = metrics.feature_extractor() if kid else None
    per_alpha: dict[float, dict[str, list[Any]]] = {a: {"psnr": [], "ms_ssim": [], "features": []} for a in alphas}
    real_features, bpps, strip = [], [], None
    for i, path in enumerate(images):
        original = load_pixels(path, max_side)
        data = codec.compress(original, model=model, refine_steps=SWEEP_REFINE_STEPS)
        bpps.append(len(data) * 8 / (original.shape[0] * original.shape[1]))
        if extractor is not None:
            real_features.append(extractor(metrics.extract_patches(original, patch)))
        tiles = []
        where = choose_crop(original, STRIP_CROP)
        _save_crop(out, "original", path.stem, _crop(original, where))
        for alpha in alphas:
            decoded = np.asarray(codec.decompress(data, realism=alpha))
            per_alpha[alpha]["psnr"].append(metrics.psnr(original, decoded))
            per_alpha[alpha]["ms_ssim"].append(metrics.ms_ssim(original, decoded))
            if extractor is not None:
                per_alpha[alpha]["features"].append(extractor(metrics.extract_patches(decoded, patch)))
            tiles.append(_crop(decoded, where))
            _save_crop(out, f"realism-{alpha:g}", path.stem, tiles[-1])
        if strip is None:
            strip = _strip([_crop(original, where)] + tiles)
            Image.fromarray(strip).save(out / "realism_strip.png")
        if progress:
            progress(f"{i + 1}/{len(images)} {path.name}")
    rows = []
    reference = np.concatenate(real_features) if real_features else None
    for alpha in alphas:
        row: dict[str, Any] = {"realism": alpha, "psnr": float(np.mean(per_alpha[alpha]["psnr"])),
                               "ms_ssim": float(np.mean(per_alpha[alpha]["ms_ssim"]))}
        if reference is not None:
            row.update(_kid_fid(np.concatenate(per_alpha[alpha]["features"]), reference))
        rows.append(row)
    summary = {"model": f"{entry.name}@{entry.hash_prefix.hex()}", "images": len(images), "max_side": max_side,
               "mean_bpp": float(np.mean(bpps)), "kid_fid_features": metrics.FEATURE_NETWORK if kid else None,
               "patch": patch, "rows": rows, "strip": "realism_strip.png (original, then each realism)"}
    (out / "realism.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def seed_spread(images: Sequence[Path], model: str, seeds: int, out: Path, max_side: int | None = 768,
                progress: ProgressFn | None = None) -> dict[str, Any]:
    """Conditional pixel variance of ``model`` over ``seeds`` decodings of each image's file.

    PV is the per-pixel variance across seeds (8-bit levels squared), averaged
    over pixels and channels; also reported as its square root (a standard
    deviation in levels).  Writes ``out/seeds-<model>.json`` and ``out/seeds_strip-<model>.png``
    (the original and a 1:1 crop of 4 seeds, for the first image).
    """
    entry = zoo.find_model(model)
    out.mkdir(parents=True, exist_ok=True)
    values, psnrs, strip = [], [], None
    for i, path in enumerate(images):
        original = load_pixels(path, max_side)
        data = codec.compress(original, model=model, refine_steps=SWEEP_REFINE_STEPS)
        stack = np.stack([np.asarray(codec.decompress(data, seed=s), dtype=np.float64) for s in range(seeds)])
        values.append(float(stack.var(axis=0).mean()))
        psnrs.append(float(np.mean([metrics.psnr(original, d.astype(np.uint8)) for d in stack])))
        if strip is None:
            where = choose_crop(original, STRIP_CROP)
            strip = _strip([_crop(original, where)] + [_crop(d.astype(np.uint8), where) for d in stack[:4]])
            Image.fromarray(strip).save(out / f"seeds_strip-{entry.name}.png")
        if progress:
            progress(f"{i + 1}/{len(images)} {path.name}")
    summary = {"model": f"{entry.name}@{entry.hash_prefix.hex()}", "channels": entry.arch.latent_channels,
               "stochastic": entry.stochastic, "images": len(images), "seeds": seeds, "max_side": max_side,
               "pixel_variance": float(np.mean(values)), "pixel_std_levels": float(np.sqrt(np.mean(values))),
               "per_image_variance": values, "psnr_mean_over_seeds": float(np.mean(psnrs)),
               "strip": f"seeds_strip-{entry.name}.png (original, then seeds 0-3)"}
    (out / f"seeds-{entry.name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def sample_quality(real_images: Sequence[Path], model: str, count: int, size: tuple[int, int], out: Path,
                   methods: Sequence[str] = sampling.METHODS, max_side: int | None = 768, patch: int = 256,
                   seed: int = 0, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Patch KID/FID of ``count`` images per sampling method against the patches of ``real_images``.

    Writes ``out/samples.json`` and ``out/samples_sheet.png`` (4 images per method, one row each).
    """
    entry = zoo.find_model(model)
    out.mkdir(parents=True, exist_ok=True)
    extractor = metrics.feature_extractor()
    reference = np.concatenate([extractor(metrics.extract_patches(load_pixels(p, max_side), patch))
                                for p in real_images])
    rows, sheet_rows = [], []
    for method in methods:
        feats, shown = [], []
        for i, pixels in enumerate(sampling.sample_images(entry, count, size[0], size[1], seed, method)):
            feats.append(extractor(metrics.extract_patches(pixels, patch)))
            if i < 4:
                shown.append(pixels)
            if progress:
                progress(f"{method} {i + 1}/{count}")
        rows.append({"method": method, "images": count, **_kid_fid(np.concatenate(feats), reference)})
        sheet_rows.append(_strip(shown))
    width = max(r.shape[1] for r in sheet_rows)
    pad = [np.pad(r, ((0, GAP), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in sheet_rows]
    Image.fromarray(np.concatenate(pad)[:-GAP]).save(out / "samples_sheet.png")
    summary = {"model": f"{entry.name}@{entry.hash_prefix.hex()}", "size": f"{size[0]}x{size[1]}",
               "real_images": len(real_images), "real_patches": int(len(reference)), "patch": patch,
               "kid_fid_features": metrics.FEATURE_NETWORK, "rows": rows,
               "sheet": "samples_sheet.png (one row of 4 images per method: " + ", ".join(methods) + ")"}
    (out / "samples.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
