"""The amortisation gap: how close one pass of an amortised encoder lands to the refinement's result.

For each photo and each search (the model's own encoder or its amortised one,
with 0 or more refinement steps) this compresses with the real pipeline
(``gcodec.codec.compress_loaded``, COLOUR included), decodes, and reports
bytes, bpp, PSNR and the refinement's objective of the decoded image
(``10 MSE + 0.3 perceptual + 6 low-pass`` of :func:`gcodec.refine.distortion`,
plus ``4 x`` the file's real bits per pixel), and the encode time.

An amortised encoder still in training is read from its run's ``encoder.pt``
(published into a scratch copy of the weights folder, so nothing shipped
changes); without ``--checkpoint`` the model's installed encoder head is used.

    python tools/amortisation_gap.py --model gcz-c4-v2 --checkpoint runs/encoder-c4-v2/encoder.pt \\
        --photos bench/preference/2026-12-07-ood-resize/photos.txt --limit 8 --out gap.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def scratch_weights(checkpoint: Path) -> Path:
    """A scratch weights folder: the shipped files linked, the run's encoder published beside its model."""
    from gcodec import zoo
    from gcodec.train.encoder import ENCODER_CHECKPOINT
    from gcodec.train.publish import publish_head

    folder = Path(tempfile.mkdtemp(prefix="gcz-gap-"))
    for item in zoo.SHIPPED_DIR.iterdir():
        if item.name == "manifest.json":
            shutil.copy(item, folder / item.name)
        else:
            os.symlink(item, folder / item.name)
    run = folder / "run"
    run.mkdir()
    os.symlink(checkpoint.resolve(), run / ENCODER_CHECKPOINT)
    publish_head(run, folder, "encoder under training")
    return folder


def measure(photo: Path, entry, searches: list[tuple[str, dict]], max_side: int, features) -> list[dict]:
    """One row per search for one photo."""
    import torch

    from gcodec import codec, refine
    from gcodec.eval.runner import load_pixels
    from gcodec.imageio import LoadedImage, to_unit
    from gcodec.profile import EncodeProfile

    pixels = load_pixels(photo, max_side)
    h, w = pixels.shape[:2]
    target = torch.from_numpy(to_unit(pixels))
    with torch.no_grad():
        target_features = features(target)
    rows = []
    for label, options in searches:
        t0 = time.perf_counter()
        data = codec.compress_loaded(LoadedImage(pixels), entry, EncodeProfile(device="cpu", **options))
        seconds = time.perf_counter() - t0
        decoded = np.asarray(codec.decompress(data, "cpu"))
        out = torch.from_numpy(to_unit(decoded))
        mask = torch.ones(1, 1, h, w)
        with torch.no_grad():
            image_terms = float(refine.distortion(out, target, mask, torch.tensor(float(h * w)), refine.Objective(),
                                                  features, target_features))
        bpp = len(data) * 8 / (h * w)
        mse = float(np.mean((decoded.astype(np.float64) - pixels) ** 2))
        rows.append({"photo": photo.name, "search": label, "bytes": len(data), "bpp": round(bpp, 5),
                     "psnr": round(10 * np.log10(255 ** 2 / max(mse, 1e-9)), 3),
                     "objective": round(image_terms + refine.Objective().rate * bpp, 5),
                     "seconds": round(seconds, 2)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="gcz-c4-v2")
    parser.add_argument("--checkpoint", type=Path, default=None, help="A run's encoder.pt (else the installed head).")
    parser.add_argument("--photos", type=Path, required=True, help="A text file of photo paths, one per line.")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--max-side", type=int, default=768)
    parser.add_argument("--steps", default="0,8,30", help="Refinement steps from the amortised encoder.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    if args.checkpoint is not None:
        os.environ["GCZ_WEIGHTS"] = str(scratch_weights(args.checkpoint))
    from gcodec import effort, zoo

    entry = zoo.find_model(args.model)
    if "encoder" not in entry.heads:
        raise SystemExit(f"{entry.name} has no encoder head; pass --checkpoint")
    features = zoo.load_features("cpu")
    steps = [int(s) for s in args.steps.split(",")]
    searches = [("own encoder", {"refine_steps": 0}), ("own + 30 steps (gcz 0.8)", {"refine_steps": 30})]
    for n in steps:
        level = next((i for i, s in enumerate(effort.LEVELS) if s.steps == n), None)
        if level is not None:
            searches.append((f"amortised + {n} steps", {"effort": level}))
    photos = [Path(line.strip()) for line in args.photos.read_text().splitlines() if line.strip()][:args.limit]
    rows = []
    for photo in photos:
        rows += measure(photo, entry, searches, args.max_side, features)
        print(json.dumps(rows[-len(searches):]), flush=True)
    summary = {}
    for label, _ in searches:
        mine = [r for r in rows if r["search"] == label]
        summary[label] = {k: round(float(np.mean([r[k] for r in mine])), 5)
                          for k in ("bpp", "psnr", "objective", "seconds")}
    args.out.write_text(json.dumps({"model": entry.name, "checkpoint": str(args.checkpoint), "photos": len(photos),
                                    "summary": summary, "rows": rows}, indent=2) + "\n")
    for label, values in summary.items():
        print(f"{label:28s} " + " ".join(f"{k} {v}" for k, v in values.items()))


if __name__ == "__main__":
    main()
