"""The effort table: encode time, memory and quality per effort level (a benchmark, not a test).

For every level of :data:`gcodec.effort.LEVELS` and for gcz 0.8's encode
(``--refine 30``: the model's own encoder and 30 float32 steps), this

* times an in-process encode (networks loaded and warmed up first, as
  ``gcz bench`` does) of a 768x512 photo and of a 4000x3000 one, each in a
  fresh process whose peak resident memory is read from ``VmHWM``;
* runs ``gcz eval`` on a photo list (the out-of-distribution set) at longer
  side 768 with no peers, for bpp, PSNR, MS-SSIM, KID/FID and the grid ratio.

Results go to ``OUT/effort.json`` and ``OUT/effort.md``; the ``gcz eval`` folders to ``OUT/eval-*``
(rerunning resumes them).

    python tools/effort_table.py --photos bench/effort/photos.txt --out bench/effort --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Timed in a child process: warm up on a small crop, then encode the photo once.
CHILD = r"""
import json, sys, time
import numpy as np
spec = json.loads(sys.argv[1])
import torch
torch.set_num_threads(spec["threads"])
from PIL import Image, ImageOps
import gcodec
from gcodec import codec, zoo
from gcodec.imageio import LoadedImage
from gcodec.profile import EncodeProfile
with Image.open(spec["photo"]) as img:
    pixels = np.asarray(ImageOps.fit(img.convert("RGB"), tuple(spec["size"]), Image.Resampling.LANCZOS))
entry = codec.resolve_model(spec["channels"], None)
profile = EncodeProfile(device="cpu", **spec["options"])
codec.compress_loaded(LoadedImage(np.ascontiguousarray(pixels[:128, :128])), entry, profile)
t0 = time.perf_counter()
data = codec.compress_loaded(LoadedImage(pixels), entry, profile)
seconds = time.perf_counter() - t0
peak = 0.0
with open("/proc/self/status") as fh:
    for line in fh:
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
print(json.dumps({"seconds": seconds, "bytes": len(data), "peak_rss_mb": peak}))
"""


def settings() -> list[tuple[str, dict, list[str]]]:
    """(label, profile options, gcz eval flags) per row: each effort level, then gcz 0.8's encode."""
    from gcodec import effort

    rows = [(f"effort {i} ({s.describe()}{', bf16' if s.bf16 else ''})", {"effort": i}, ["--effort", str(i)])
            for i, s in enumerate(effort.LEVELS)]
    rows.append(("gcz 0.8 (own encoder, refine 30)", {"refine_steps": 30}, ["--refine", "30"]))
    return rows


def timed(photo: Path, size: tuple[int, int], options: dict, channels: int, threads: int) -> dict:
    """Seconds, bytes and peak memory of one encode in a fresh process."""
    spec = {"photo": str(photo), "size": list(size), "options": options, "channels": channels, "threads": threads}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True,
                          check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    return json.loads(done.stdout.strip().splitlines()[-1])


def quality(photos: list[str], flags: list[str], out: Path, channels: int, threads: int) -> dict:
    """The gcz row of ``gcz eval``'s summary for these encode flags."""
    subprocess.run([str(Path(sys.executable).parent / "gcz"), "eval", *photos, "--max-side", "768", "--channels",
                    str(channels), "--codecs", "", "--match", "same", "--no-ssimulacra2", "--threads", str(threads),
                    *flags, "--out", str(out)], check=True, capture_output=True, text=True)
    summary = json.loads((out / "summary.json").read_text())
    gcz = next(c for c in summary["codecs"] if c["name"] == "gcz")["results"]
    return {k: gcz[k][0] for k in ("bpp", "psnr-rgb", "ms-ssim-rgb", "kid", "fid", "encoding_time") if k in gcz}


def markdown(doc: dict) -> str:
    """The table of ``effort.json``."""
    lines = [f"# Encode effort at C = {doc['channels']} ({doc['model']})", "",
             f"Photos: {doc['photos']} out-of-distribution photos (`{doc['photo_list']}`), longer side 768; "
             f"timings on {doc['threads']} threads of {doc['machine']['processor']} "
             f"({doc['machine']['cpu_count']} cores), one encode in a fresh process after a warm-up, "
             "networks loaded. Command: `python tools/effort_table.py " + doc["argv"] + "`.", "",
             "| setting | 768x512 s | 4000x3000 s | 4000x3000 peak MB | bpp | PSNR | MS-SSIM | KID×10³ | FID |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in doc["rows"]:
        q, small, large = row["quality"], row["time_768x512"], row.get("time_4000x3000") or {}
        lines.append(f"| {row['setting']} | {small['seconds']:.2f} | "
                     + (f"{large['seconds']:.1f} | {large['peak_rss_mb']:.0f}" if large else "- | -")
                     + f" | {q['bpp']:.4f} | {q['psnr-rgb']:.2f} | {q['ms-ssim-rgb']:.4f} | "
                     f"{q['kid'] * 1000:.1f} | {q['fid']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, required=True, help="Photo list, one path per line.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timing-photo", type=Path, default=None, help="Photo fitted to each timed size "
                        "(default: the list's first).")
    parser.add_argument("--large", action="store_true", help="Also time 4000x3000 (minutes per setting).")
    parser.add_argument("--only", default=None, help="Comma-separated row indices to run (default: all).")
    args = parser.parse_args()
    from gcodec.benchkit import machine_info
    from gcodec.codec import resolve_model

    photos = [line.strip() for line in args.photos.read_text().splitlines() if line.strip()]
    timing = args.timing_photo or Path(photos[0])
    args.out.mkdir(parents=True, exist_ok=True)
    entry = resolve_model(args.channels, None)
    store = args.out / "effort.json"
    doc = json.loads(store.read_text()) if store.is_file() else {"rows": []}
    doc.update(model=entry.name, channels=args.channels, photos=len(photos), photo_list=str(args.photos),
               threads=args.threads, machine=machine_info(), argv=" ".join(sys.argv[1:]))
    done = {r["setting"]: r for r in doc["rows"]}
    chosen = None if args.only is None else {int(i) for i in args.only.split(",")}
    for index, (label, options, flags) in enumerate(settings()):
        if chosen is not None and index not in chosen:
            continue
        row = {"setting": label, "options": options,
               "time_768x512": timed(timing, (768, 512), options, args.channels, args.threads)}
        if args.large:
            row["time_4000x3000"] = timed(timing, (4000, 3000), options, args.channels, args.threads)
        row["quality"] = quality(photos, flags, args.out / f"eval-{index}", args.channels, args.threads)
        done[label] = row
        print(json.dumps(row), flush=True)
        doc["rows"] = [done[lab] for lab, _, _ in settings() if lab in done]
        store.write_text(json.dumps(doc, indent=2) + "\n")
        (args.out / "effort.md").write_text(markdown(doc))


if __name__ == "__main__":
    main()
