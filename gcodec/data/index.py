"""Reading a photo set's ``index.json`` (written by ``gcz data fetch``, :mod:`gcodec.data.fetch`)."""
from __future__ import annotations

import json
from pathlib import Path


def bundled_files(root: Path, split: str) -> list[Path]:
    """Files of one split ("train" or "val") of the bundled pool (``gcz data fetch``)."""
    index = root / "index.json"
    if not index.is_file():
        raise FileNotFoundError(f"{index} not found; run 'gcz data fetch --root {root}' first")
    records = json.loads(index.read_text())
    records = records["images"] if isinstance(records, dict) else records
    return [root / "photos" / r["file"] if not (root / r["file"]).exists() else root / r["file"]
            for r in records if r["split"] == split]
