"""Measurements of selective compression (``gcz sweep selective``).

For every image, with an SC model and the GC model of the same C:

* **bytes versus preserved area**: a centred box covering 0 (``--synthesize
  all``) .. 100 % (``--preserve all``) of the image, and one label class
  synthesized (the image's largest automatic class, like the paper's road);
* the label-map and heatmap bytes, and the saving against preserving everything
  with the same model;
* **inside the preserved box**: PSNR and MS-SSIM of the SC decoding and of the
  GC model's decoding of the whole image, both on the box's pixels;
* **seams**: the mean absolute jump across the box border (SC decoding) next
  to the same statistic inside the original, and 1:1 crops across the border.

Writes ``out/selective.json``, ``out/results.md``, strips (original | label map | everything
synthesized | box preserved | GC) under ``out/strips`` and crops under ``out/crops``
(``original``, ``sc``, ``gc``: the same window for ``gcz prefs sheets``).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import codec, container, zoo
from ..selective import Selection, auto_labels, colourise, read_parts
from ..selective.autolabel import load_codebook
from . import metrics
from .runner import load_pixels

ProgressFn = Callable[[str], None]
AREAS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
#: The box of this area gives the PSNR, seam and crop measurements.
MEASURED_AREA = 0.25
CROP = 256


def centred_box(width: int, height: int, area: float) -> tuple[int, int, int, int]:
    """A box of about ``area`` of the image, with the image's aspect ratio, centred."""
    s = math.sqrt(area)
    w, h = max(1, round(width * s)), max(1, round(height * s))
    return (width - w) // 2, (height - h) // 2, w, h


def _selection(width: int, height: int, area: float) -> Selection:
    if area <= 0:
        return Selection(synthesize=("all",))
    if area >= 1:
        return Selection(preserve=("all",))
    return Selection(boxes=(centred_box(width, height, area),))


def seam_jump(pixels: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Mean absolute difference between the pixel rows/columns on the two sides of the box border."""
    x, y, w, h = box
    p = pixels.astype(np.float32)
    jumps = []
    if y > 0:
        jumps.append(np.abs(p[y, x:x + w] - p[y - 1, x:x + w]).mean())
    if y + h < p.shape[0]:
        jumps.append(np.abs(p[y + h, x:x + w] - p[y + h - 1, x:x + w]).mean())
    if x > 0:
        jumps.append(np.abs(p[y:y + h, x] - p[y:y + h, x - 1]).mean())
    if x + w < p.shape[1]:
        jumps.append(np.abs(p[y:y + h, x + w] - p[y:y + h, x + w - 1]).mean())
    return float(np.mean(jumps)) if jumps else 0.0


def interior_jump(pixels: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """The same statistic on lines 8 pixels inside the box (what a seamless border would show)."""
    x, y, w, h = box
    inner = (x + 8, y + 8, max(1, w - 16), max(1, h - 16))
    return seam_jump(pixels, inner)


def _border_crop(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int]:
    """A CROP x CROP window centred on the box's left border, half way down."""
    x, y, w, h = box
    side = min(CROP, width, height)
    cx, cy = x, y + h // 2
    return (min(max(0, cy - side // 2), height - side), min(max(0, cx - side // 2), width - side), side)


def _save_strip(out: Path, name: str, original: np.ndarray, labels: np.ndarray, nothing: np.ndarray,
                boxed: np.ndarray, gc_pixels: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """original | label map | everything synthesized | box preserved (outlined) | GC, at 1:1."""
    x, y, w, h = box
    outlined = boxed.copy()
    for img in (outlined,):
        img[max(0, y - 1), x:x + w] = img[min(img.shape[0] - 1, y + h), x:x + w] = (255, 255, 0)
        img[y:y + h, max(0, x - 1)] = img[y:y + h, min(img.shape[1] - 1, x + w)] = (255, 255, 0)
    gap = np.full((original.shape[0], 4, 3), 255, np.uint8)
    tiles = [original, labels, nothing, outlined, gc_pixels]
    strip = np.concatenate([t if i == 0 else np.concatenate([gap, t], 1) for i, t in enumerate(tiles)], 1)
    folder = out / "strips"
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(strip).save(folder / f"{name}.png")


def _save(out: Path, method: str, name: str, pixels: np.ndarray) -> None:
    folder = out / "crops" / method
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(folder / f"{name}.png")


def selective_sweep(images: Sequence[Path], out: Path, sc_model: str | None = None, gc_model: str | None = None,
                    max_side: int | None = 768, areas: Sequence[float] = AREAS,
                    progress: ProgressFn | None = None) -> dict[str, Any]:
    """Bytes, label-map cost, preserved-region quality and seams of selective compression on ``images``."""
    sc = zoo.find_model(sc_model or zoo.default_model_name(8, selective=True))
    gc = zoo.find_model(gc_model or zoo.default_model_name(sc.arch.latent_channels))
    book = load_codebook()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, path in enumerate(images):
        original = load_pixels(path, max_side)
        height, width = original.shape[:2]
        labels, _, shares = auto_labels(original, book.cell)
        gc_data = codec.compress(original, model=gc.name, refine_steps=0)  # unrefined, as SC files are
        gc_pixels = np.asarray(codec.decompress(gc_data))
        row: dict[str, Any] = {"image": path.stem, "width": width, "height": height, "gc_bytes": len(gc_data),
                               "areas": {}}
        for area in areas:
            data = codec.compress(original, model=sc.name, selection=_selection(width, height, area))
            gcz = container.read(data)
            sections = {s.name: len(s.body) for s in container.read_sections(data)}
            parts = read_parts(gcz)
            row["areas"][str(area)] = {"bytes": len(data), "bpp": len(data) * 8 / (width * height),
                                       "preserved_fraction": float(parts.heatmap.mean()),
                                       "payload_bytes": sections["PAYLOAD"], "tables_bytes": sections["TABLES"],
                                       "label_bytes": sections["LABELS"], "heatmap_bytes": sections["HEATMAP"]}
            if area == 0:
                nothing = np.asarray(codec.decompress(data))
            if area == MEASURED_AREA:
                box = centred_box(width, height, area)
                decoded = np.asarray(codec.decompress(data))
                x, y, w, h = box
                inside = (slice(y, y + h), slice(x, x + w))
                row["box"] = list(box)
                row["inside"] = {
                    "sc_psnr": metrics.psnr(decoded[inside], original[inside]),
                    "gc_psnr": metrics.psnr(gc_pixels[inside], original[inside]),
                    "sc_ms_ssim": metrics.ms_ssim(decoded[inside], original[inside]),
                    "gc_ms_ssim": metrics.ms_ssim(gc_pixels[inside], original[inside])}
                row["seam"] = {"sc_border": seam_jump(decoded, box), "sc_interior": interior_jump(decoded, box),
                               "original_border": seam_jump(original, box),
                               "original_interior": interior_jump(original, box)}
                cy, cx, side = _border_crop(box, width, height)
                window = (slice(cy, cy + side), slice(cx, cx + side))
                for method, pixels in (("original", original), ("sc", decoded), ("gc", gc_pixels)):
                    _save(out, method, path.stem, np.ascontiguousarray(pixels[window]))
        if "box" in row and 0.0 in areas:
            _save_strip(out, path.stem, original, colourise(labels, book.classes), nothing, decoded, gc_pixels,
                        tuple(row["box"]))
        # synthesize the largest automatic class (the paper's "road")
        largest = max(shares, key=shares.get)
        if shares[largest] < 1:  # an image of one class would have nothing left to preserve
            data = codec.compress(original, model=sc.name, selection=Selection(synthesize=(largest,)))
            row["synthesize_largest_class"] = {"class": largest, "share": shares[largest], "bytes": len(data)}
        rows.append(row)
        if progress:
            a = row["areas"]
            progress(f"{i + 1}/{len(images)} {path.stem}: " + " ".join(
                f"{float(k):.0%}={v['bytes']}B" for k, v in a.items()) + f" GC {len(gc_data)}B")
    summary = summarise(rows, sc.name, gc.name, areas)
    (out / "selective.json").write_text(json.dumps({"summary": summary, "images": rows}, indent=1) + "\n")
    (out / "results.md").write_text(markdown(summary))
    return summary


def summarise(rows: list[dict[str, Any]], sc_name: str, gc_name: str, areas: Sequence[float]) -> dict[str, Any]:
    """Means over images of every measurement."""
    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    full = [r["areas"]["1.0"]["bytes"] for r in rows] if "1.0" in rows[0]["areas"] else None
    per_area = {}
    for area in areas:
        key = str(area)
        cells = [r["areas"][key] for r in rows]
        entry = {k: mean([c[k] for c in cells]) for k in cells[0]}
        if full:
            entry["saving_vs_all"] = mean([1 - c["bytes"] / f for c, f in zip(cells, full)])
        per_area[key] = entry
    out: dict[str, Any] = {"sc_model": sc_name, "gc_model": gc_name, "images": len(rows),
                           "mean_pixels": mean([r["width"] * r["height"] for r in rows]),
                           "gc_bytes": mean([r["gc_bytes"] for r in rows]), "areas": per_area}
    if rows and "inside" in rows[0]:
        out["inside_box"] = {k: mean([r["inside"][k] for r in rows]) for k in rows[0]["inside"]}
        out["seam"] = {k: mean([r["seam"][k] for r in rows]) for k in rows[0]["seam"]}
        out["measured_area"] = MEASURED_AREA
    pairs = [(r["synthesize_largest_class"], r["areas"].get("1.0", {}).get("bytes")) for r in rows
             if "synthesize_largest_class" in r]
    out["synthesize_largest_class"] = {"images": len(pairs), "share": mean([s["share"] for s, _ in pairs]),
                                       "bytes": mean([s["bytes"] for s, _ in pairs])}
    if full:
        out["synthesize_largest_class"]["saving_vs_all"] = mean([1 - s["bytes"] / f for s, f in pairs])
    return out


def markdown(summary: dict[str, Any]) -> str:
    """The summary that the selective-compression tables quote."""
    lines = [f"# Selective compression: {summary['sc_model']} (GC reference {summary['gc_model']})", "",
             f"{summary['images']} images, mean {summary['mean_pixels'] / 1e3:.0f} kpixels; "
             f"GC {summary['gc_model']} files: {summary['gc_bytes']:.0f} B on average.", "",
             "| preserved box | preserved latent | file bytes | bpp | payload | label map | heatmap | saving vs all |",
             "|---|---|---|---|---|---|---|---|"]
    for key, a in summary["areas"].items():
        lines.append(f"| {float(key):.0%} | {a['preserved_fraction']:.1%} | {a['bytes']:.0f} | {a['bpp']:.4f} | "
                     f"{a['payload_bytes']:.0f} | {a['label_bytes']:.0f} | {a['heatmap_bytes']:.0f} | "
                     f"{a.get('saving_vs_all', float('nan')):.1%} |")
    s = summary["synthesize_largest_class"]
    lines += ["", f"Synthesizing each image's largest automatic class ({s['share']:.0%} of the pixels on "
                  f"average): {s['bytes']:.0f} B, saving {s.get('saving_vs_all', float('nan')):.1%} against "
                  "preserving everything."]
    if "inside_box" in summary:
        b, m = summary["inside_box"], summary["seam"]
        lines += ["", f"Inside the preserved centred box ({summary['measured_area']:.0%} of the image):", "",
                  "| | PSNR | MS-SSIM |", "|---|---|---|",
                  f"| SC {summary['sc_model']} | {b['sc_psnr']:.2f} dB | {b['sc_ms_ssim']:.3f} |",
                  f"| GC {summary['gc_model']} (whole image coded) | {b['gc_psnr']:.2f} dB | {b['gc_ms_ssim']:.3f} |",
                  "", "Seam: mean absolute step (0-255) between neighbouring pixel lines",
                  "", "| | across the box border | 8 px inside the box |", "|---|---|---|",
                  f"| SC decoding | {m['sc_border']:.2f} | {m['sc_interior']:.2f} |",
                  f"| original | {m['original_border']:.2f} | {m['original_interior']:.2f} |"]
    return "\n".join(lines) + "\n"
