"""The cost of the decoder's knobs: decode time at realism < 1 and of stochastic models, against plain decoding.

In-process, models loaded and warmed up, the variants timed in turn
(interleaved, so that load on the machine hits them alike), median of
``repeats`` rounds.  Writes ``knobs.json`` and ``knobs.md``; a benchmark,
never a timed test.
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from .. import codec, zoo
from .bench import machine_info, test_image

#: The issue's bound: decoding at any realism costs at most this much more than plain decoding.
REALISM_COST_BOUND = 1.2


def _time(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_knobs(out: Path, size: tuple[int, int] = (768, 512), repeats: int = 7,
                backends: tuple[str, ...] = ("onnxruntime", "torch")) -> dict[str, Any]:
    """Decode times of every installed model with a realism head or a noise input, per backend."""
    pixels = test_image(*size)
    rows = []
    for entry in zoo.list_models():
        if not (entry.supports_realism or entry.stochastic):
            continue
        data = codec.compress(pixels, model=entry.name, refine_steps=0)  # decode costs only
        for backend in backends:
            variants: dict[str, Any] = {"plain": lambda b=backend: codec.decompress(data, backend=b, realism=1.0)}
            if entry.supports_realism:
                variants["realism 0.5"] = lambda b=backend: codec.decompress(data, backend=b, realism=0.5)
            if entry.stochastic:
                variants["seed 7"] = lambda b=backend: codec.decompress(data, backend=b, seed=7)
            for fn in variants.values():
                fn()  # warm up: graphs built, sessions and weights loaded
            times: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(repeats):
                for name, fn in variants.items():
                    times[name].append(_time(fn))
            plain = statistics.median(times["plain"])
            for name, values in times.items():
                rows.append({"model": f"{entry.name}@{entry.hash_prefix.hex()}", "backend": backend,
                             "size": f"{size[0]}x{size[1]}", "variant": name,
                             "decode_s": statistics.median(values), "vs_plain": statistics.median(values) / plain})
    result = {"machine": machine_info(), "repeats": repeats, "bound_vs_plain": REALISM_COST_BOUND, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "knobs.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Decode cost of realism and seeds (in-process, median of "
             f"{repeats} interleaved rounds)", "",
             f"{result['machine']['processor']}, {result['machine']['cpu_count']} cores, onnxruntime "
             f"{result['machine']['onnxruntime']}, torch {result['machine']['torch']}", "",
             "| model | backend | size | variant | decode s | vs plain |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['backend']} | {r['size']} | {r['variant']} | {r['decode_s']:.3f} | "
              f"{r['vs_plain']:.2f}x |" for r in rows]
    (out / "knobs.md").write_text("\n".join(lines) + "\n")
    return result
