"""HEVC intra (heif-enc) at the bytes of each photo's selective file (25 % box kept), cropped to the
same border window as bench/selective/crops/ (run after `gcz sweep selective ... --out bench/selective`)."""
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from gcodec.eval import peers, selective_bench
from gcodec.eval.runner import collect_images, load_pixels

out = Path("bench/selective/crops/hevc_sc_same")
out.mkdir(parents=True, exist_ok=True)
rows = {r["image"]: r for r in json.loads(Path("bench/selective/selective.json").read_text())["images"]}
heic = peers.get_peer("heic")
record = []
for path in collect_images(("data/pool",), "val"):
    row = rows[path.stem]
    original = load_pixels(path, 768)
    target = row["areas"]["0.25"]["bytes"]
    enc = peers.encode_to_size(heic, original, target)
    y, x, side = selective_bench._border_crop(tuple(row["box"]), row["width"], row["height"])
    Image.fromarray(np.ascontiguousarray(enc.decoded[y:y + side, x:x + side])).save(out / f"{path.stem}.png")
    record.append({"image": path.stem, "sc_bytes": target, "hevc_bytes": len(enc.data), "setting": enc.setting})
    print(record[-1], file=sys.stderr)
Path(sys.argv[1]).write_text(json.dumps(record, indent=1) + "\n")
