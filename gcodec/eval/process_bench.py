"""Whole-process benchmarks: ``gcz decompress`` as a user's shell runs it, against ``heif-convert``.

For a pipeline that starts one process per file (``... | gcz decompress - -o - | ...``)
start-up is the product's speed, so every timing here is a fresh process: wall
time from spawn to exit and that process's own peak resident memory
(``os.wait4``), median over repeats.  HEVC intra (libheif's ``heif-enc`` /
``heif-convert``) at a similar size is timed in the same run on the same images,
and ``gcz decompress`` of many files in one process gives the batch throughput.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Repeats per size (large images take long enough to be measured once).
REPEATS = {768 * 512: 7, 2048 * 2048: 3}
BATCH_FILES = 16


def gcz_command() -> list[str]:
    """How to start the gcz CLI of this installation."""
    return [sys.executable, "-m", "gcodec.cli"]


#: Runs one command and prints its wall time and peak RSS. It is a separate, small process because a
#: child's ``ru_maxrss`` starts at its parent's resident size at spawn time (Linux keeps the
#: high-water mark across ``exec``): spawned straight from a benchmark driver of 600 MiB, even
#: ``heif-convert`` would report 600 MiB.
_SPAWNER = """
import json, os, subprocess, sys, time
cmd = json.loads(sys.argv[1])
t0 = time.perf_counter()
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read()
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "maxrss_kb": usage.ru_maxrss, "rc": os.waitstatus_to_exitcode(status),
                  "err": err.decode(errors="replace")[-500:]}))
"""


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``cmd`` to completion; (wall seconds, peak RSS MiB of that process). Raises on failure."""
    out = subprocess.run([sys.executable, "-S", "-c", _SPAWNER, json.dumps(cmd)], capture_output=True, env=env,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"spawner failed: {out.stderr.decode(errors='replace')[-300:]}")
    result = json.loads(out.stdout.decode().strip().splitlines()[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed: {result['err'].strip().splitlines()[-1:] or result['rc']}")
    return result["wall"], result["maxrss_kb"] / 1024


def _median_run(cmd: list[str], repeats: int, env: dict[str, str] | None = None) -> dict[str, float]:
    runs = [run_measured(cmd, env) for _ in range(repeats)]
    return {"wall_s": statistics.median(r[0] for r in runs), "wall_s_min": min(r[0] for r in runs),
            "peak_rss_mb": max(r[1] for r in runs), "repeats": repeats}


def bench_processes(images: dict[tuple[int, int], np.ndarray], gcz: list[str] | None = None,
                    backends: tuple[str, ...] = ("auto", "torch"), say: Any = None) -> dict[str, Any]:
    """Whole-process decode (and encode) of ``images`` by the gcz CLI per backend, and by heif-convert.

    Args:
        images: (width, height) -> uint8 photo.
        gcz: the command starting gcz (default :func:`gcz_command`); e.g. an older checkout for "before".
        backends: ``--backend`` values to time (``auto`` is what users get).
        say: progress callback.
    """
    from PIL import Image

    say = say or (lambda s: None)
    gcz = gcz or gcz_command()
    rows: list[dict[str, Any]] = []
    batch: dict[str, Any] = {}
    heif = shutil.which("heif-enc") and shutil.which("heif-convert")
    env = os.environ.copy()
    with tempfile.TemporaryDirectory(prefix="gcz-proc-") as tmp:
        work = Path(tmp)
        for (w, h), pixels in images.items():
            png = work / f"{w}x{h}.png"
            Image.fromarray(pixels).save(png, compress_level=1)
            gczf = work / f"{w}x{h}.gcz"
            subprocess.run([*gcz, "compress", str(png), "-o", str(gczf), "--force", "--refine", "0"], check=True,
                           capture_output=True, env=env)  # also builds any cached graphs
            repeats = REPEATS.get(w * h, 1)
            for backend in backends:
                say(f"bench: whole-process gcz {backend} {w}x{h}")
                extra = [] if backend == "auto" else ["--backend", backend]
                dec = _median_run([*gcz, "decompress", str(gczf), "-o", str(work / "out.png"), "--force", *extra],
                                  repeats, env)
                enc = _median_run([*gcz, "compress", str(png), "-o", str(work / "re.gcz"), "--force", "--refine", "0",
                                   *extra],
                                  repeats, env)
                rows.append({"size": f"{w}x{h}", "codec": f"gcz ({backend})", "bytes": gczf.stat().st_size,
                             "decode_wall_s": dec["wall_s"], "decode_peak_rss_mb": dec["peak_rss_mb"],
                             "encode_wall_s": enc["wall_s"], "encode_peak_rss_mb": enc["peak_rss_mb"],
                             "repeats": repeats})
            if heif:
                say(f"bench: whole-process heif-convert {w}x{h}")
                heic = work / f"{w}x{h}.heic"
                enc = _median_run(["heif-enc", "-q", "10", str(png), "-o", str(heic)], repeats)
                dec = _median_run(["heif-convert", str(heic), str(work / "heif.png")], repeats)
                rows.append({"size": f"{w}x{h}", "codec": "HEVC intra (heif-enc -q 10 / heif-convert)",
                             "bytes": heic.stat().st_size, "decode_wall_s": dec["wall_s"],
                             "decode_peak_rss_mb": dec["peak_rss_mb"], "encode_wall_s": enc["wall_s"],
                             "encode_peak_rss_mb": enc["peak_rss_mb"], "repeats": repeats})
        small = min(images, key=lambda s: s[0] * s[1])
        files = []
        for i in range(BATCH_FILES):
            f = work / f"batch{i:02d}.gcz"
            shutil.copy(work / f"{small[0]}x{small[1]}.gcz", f)
            files.append(str(f))
        out_dir = work / "batch-out"
        out_dir.mkdir()
        say(f"bench: batch decode of {BATCH_FILES} files")
        wall, rss = run_measured([*gcz, "decompress", *files, "-o", str(out_dir), "--force"], env)
        batch = {"size": f"{small[0]}x{small[1]}", "files": BATCH_FILES, "wall_s": wall,
                 "images_per_s": BATCH_FILES / wall, "peak_rss_mb": rss}
    notes = [] if heif else ["heif-convert not on PATH (make peers): no HEVC whole-process timings"]
    return {"rows": rows, "batch": batch, "notes": notes, "command": " ".join(gcz)}


def markdown(result: dict[str, Any]) -> list[str]:
    """Lines of the whole-process section of bench/results.md."""
    lines = ["## Whole-process decode and encode (fresh process each, median wall time, that process's peak RSS; "
             "encodes with `--refine 0`)",
             "", f"gcz started as `{result['command']}`.", "",
             "| size | codec | bytes | decode s | decode peak MiB | encode s | encode peak MiB | decode vs HEVC |",
             "|---|---|---|---|---|---|---|---|"]
    heif = {r["size"]: r for r in result["rows"] if r["codec"].startswith("HEVC")}
    for r in result["rows"]:
        ref = heif.get(r["size"])
        ratio = f"{r['decode_wall_s'] / ref['decode_wall_s']:.1f}x" if ref and ref is not r else "–"
        lines.append(f"| {r['size']} | {r['codec']} | {r['bytes']} | {r['decode_wall_s']:.3f} | "
                     f"{r['decode_peak_rss_mb']:.0f} | {r['encode_wall_s']:.3f} | {r['encode_peak_rss_mb']:.0f} | "
                     f"{ratio} |")
    b = result.get("batch")
    if b:
        lines += ["", f"Batch: `gcz decompress` of {b['files']} files of {b['size']} in one process: "
                      f"{b['wall_s']:.2f} s, {b['images_per_s']:.2f} images/s, peak {b['peak_rss_mb']:.0f} MiB."]
    lines += [f"- {n}" for n in result.get("notes", [])]
    return lines + [""]
