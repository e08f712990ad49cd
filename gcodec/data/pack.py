"""Pack one split of the photo pool small enough to carry to a machine without network access.

A GPU machine lent for a training burst reaches nothing outside it: the
training photos travel with the code (about 30 MiB in all).  Training
downscales every photo to a longer side of 1024 pixels anyway
(:func:`gcodec.train.data.load_dataset`), so packing at that size as
high-quality JPEG loses nothing the run would have seen but JPEG's own
rounding.  The result is a plain folder for ``gcz train --dataset folder``.
"""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ..errors import GczInputError


def pack_split(root: Path, out: Path, split: str = "train", max_side: int = 1024, quality: int = 92) -> dict:
    """Write ``split`` of the pool at ``root`` to ``out`` as JPEGs of at most ``max_side`` pixels.

    Returns a summary (files, bytes) that is also written to ``out/pack.json``.
    """
    from .index import bundled_files

    try:
        files = bundled_files(root, split)
    except FileNotFoundError as exc:
        raise GczInputError(str(exc)) from None
    if not files:
        raise GczInputError(f"{root}: no {split} photos")
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for f in files:
        with Image.open(f) as img:
            img = img.convert("RGB")
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            target = out / (f.stem + ".jpg")
            img.save(target, quality=quality, optimize=True)
            total += target.stat().st_size
    summary = {"source": str(root), "split": split, "files": len(files), "bytes": total, "max_side": max_side,
               "quality": quality}
    (out / "pack.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
