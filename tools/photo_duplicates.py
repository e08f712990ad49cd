"""List near-duplicate photos within and across the photo sets (the pool and the out-of-distribution set).

Two photos are near-duplicates when their 32 x 32 grey thumbnails (aspect
ignored, mean and contrast normalised) correlate above a threshold: the same
photo at another size, crop margin or compression, or a processed copy.  Run
after ``gcz data fetch --set pool`` and ``--set ood``; a pair across the two
sets would let the out-of-distribution set leak into training.

    python tools/photo_duplicates.py data/pool data/ood [--threshold 0.95]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image


def thumbnail(path: Path) -> np.ndarray:
    """A normalised 32 x 32 grey thumbnail (unit length, zero mean)."""
    with Image.open(path) as img:
        img.draft("L", (128, 128))
        grey = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float64).ravel()
    grey -= grey.mean()
    return grey / (np.linalg.norm(grey) + 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path)
    parser.add_argument("--threshold", type=float, default=0.95)
    args = parser.parse_args()
    names, thumbs = [], []
    for root in args.roots:
        for rec in json.loads((root / "index.json").read_text()):
            names.append(f"{root.name}:{rec['file']}")
            thumbs.append(thumbnail(root / rec["file"]))
    corr = np.stack(thumbs) @ np.stack(thumbs).T
    pairs = [(corr[i, j], names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))
             if corr[i, j] > args.threshold]
    for c, a, b in sorted(pairs, reverse=True):
        print(f"{c:.3f}  {a}  {b}")
    print(f"{len(pairs)} pair(s) above {args.threshold} among {len(names)} photos")


if __name__ == "__main__":
    main()
