"""Benchmarks (``gcz bench`` / ``make bench``): speed, memory, entropy coding, peers, at several sizes.

Every (size, backend, phase) runs in its own Python subprocess, so the peak
resident memory reported (``ru_maxrss``) belongs to that one input and phase,
and the model load time is a cold load.  Results go to ``OUT/results.json``
and a readable ``OUT/results.md``.

Backends: the library path (:func:`gcodec.codec.compress_loaded` /
:func:`gcodec.codec.decompress`, tiled above 2048x2048) on ``torch-cpu``,
``onnx-cpu`` (ONNX Runtime on the cached graphs of :mod:`gcodec.backends.onnx_net`)
and ``torch-cuda`` when a CUDA device is present.  Whole-process timings of the
CLI against ``heif-convert`` are in :mod:`.process_bench`.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..benchkit import machine_info, test_image
from ..errors import GczError, GczInputError

FULL_SIZES = ((768, 512), (2048, 2048), (4096, 4096))
#: The largest size whose refined encode (the default, 30 steps) ``gcz bench`` times: beyond, minutes per image.
REFINE_MAX_PIXELS = 2048 * 2048
QUICK_SIZES = ((768, 512), (2048, 2048))
#: Memory budget a 16-megapixel image must stay under.
MEMORY_BUDGET_MB = 2048
#: Low-rate settings at which peers are timed (knob value, mode), close to gcz's rates.
PEER_SETTINGS = {"heic": (10, 0), "avif": (50, 0), "jxl": (10.0, 0), "webp": (10, 0), "jp2": (300.0, 0),
                 "jpeg": (10, 0)}


@dataclass
class BenchConfig:
    """What ``gcz bench`` measures.

    Attributes:
        out: output folder (``results.json``, ``results.md``).
        channels: channels of the default model benchmarked.
        sizes: (width, height) inputs.
        backends: subset of ``torch-cpu``, ``onnx-cpu``, ``torch-cuda``.
        peers: peer codecs timed on the same images.
        threads: torch / ONNX Runtime intra-op threads (None: library default).
        image: source photo resized to every size (default: the bundled example).
        processes: also time whole ``gcz`` processes against ``heif-convert`` (:mod:`.process_bench`).
        refine_sizes: sizes at which the default encode, with its refinement (:mod:`gcodec.refine`), is timed;
            every other encode is timed with ``--refine 0``, the fast path.
    """

    out: Path
    channels: int = 4
    sizes: tuple[tuple[int, int], ...] = FULL_SIZES
    backends: tuple[str, ...] = ("torch-cpu", "onnx-cpu", "torch-cuda")
    peers: tuple[str, ...] = ("heic", "avif", "jxl", "webp", "jp2", "jpeg")
    threads: int | None = None
    image: Path | None = None
    processes: bool = True
    refine_sizes: tuple[tuple[int, int], ...] = ()


@dataclass
class BenchResults:
    """Everything written to ``results.json``."""

    machine: dict[str, Any]
    model: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    entropy: list[dict[str, Any]] = field(default_factory=list)
    peers: list[dict[str, Any]] = field(default_factory=list)
    processes: dict[str, Any] = field(default_factory=dict)
    refine: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ inputs
def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    On Linux from ``VmHWM`` (the high-water mark of this process's own memory
    since its ``exec``): ``ru_maxrss`` also counts the parent's resident size
    at the time it spawned us, which made small processes look as large as
    the benchmark driver.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


# ------------------------------------------------------------------ worker (one subprocess per measurement)
#: bench backend label -> (gcodec backend, device)
BACKEND_RUNTIME = {"torch-cpu": ("torch", "cpu"), "onnx-cpu": ("onnxruntime", "cpu"), "torch-cuda": ("torch", "cuda")}


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in a fresh process: ``spec`` names phase (encode/decode), backend, size, model."""
    from .. import backends, codec, tiling, zoo
    from ..imageio import LoadedImage
    from ..profile import EncodeProfile

    backend, phase = spec["backend"], spec["phase"]
    runtime, device = BACKEND_RUNTIME[backend]
    if runtime == "torch":
        import torch
        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
    entry = zoo.find_model(spec["model"])
    width, height = spec["size"]
    result: dict[str, Any] = {"rss_after_import_mb": peak_rss_mb()}
    t0 = time.perf_counter()
    backends.load(entry, runtime, device)
    if device == "cuda":
        torch.cuda.synchronize()
    result["model_load_s"] = time.perf_counter() - t0
    pixels = test_image(width, height, Path(spec["image"]) if spec.get("image") else None)
    warm = np.ascontiguousarray(pixels[:256, :256])
    gcz_path = Path(spec["gcz_path"])

    def enc(px: np.ndarray, steps: int = 0) -> bytes:
        return codec.compress_loaded(LoadedImage(px), entry,
                                     EncodeProfile(refine_steps=steps, device=device, backend=runtime))

    def dec(data: bytes) -> np.ndarray:
        return np.asarray(codec.decompress(data, device, backend=runtime))

    dec(enc(warm))  # first-call overheads (allocator, kernels) out of the timings
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    if phase == "encode":
        if spec["refine"]:
            enc(warm, 1)  # the refinement's own first-call overheads (PyTorch, the feature network)
        t0 = time.perf_counter()
        data = enc(pixels, int(spec["refine"]))
        if device == "cuda":
            torch.cuda.synchronize()
        result["seconds"] = time.perf_counter() - t0
        gcz_path.write_bytes(data)
        result["bytes"] = len(data)
    else:
        data = gcz_path.read_bytes()
        t0 = time.perf_counter()
        out = dec(data)
        if device == "cuda":
            torch.cuda.synchronize()
        result["seconds"] = time.perf_counter() - t0
        if out.shape != pixels.shape:
            raise GczError(f"decoded {out.shape}, expected {pixels.shape}")
    result["peak_rss_mb"] = peak_rss_mb()
    result["tiled"] = tiling.needs_tiling(-(-height // 16) * 16, -(-width // 16) * 16)
    if device == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def _spawn(spec: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`worker` in a subprocess and parse its JSON answer."""
    proc = subprocess.run([sys.executable, "-m", "gcodec.eval.bench", json.dumps(spec)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False, env=os.environ.copy())
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines() or ["(no output)"]
        raise GczError(f"benchmark worker failed ({spec['backend']} {spec['phase']} "
                       f"{spec['size'][0]}x{spec['size'][1]}): {lines[-1]}")
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


# ------------------------------------------------------------------ entropy coding
def bench_entropy(symbols: np.ndarray, levels: int, name: str, repeats: int = 3) -> dict[str, Any]:
    """Range-coder throughput on ``symbols`` (C, h, w) and payload size vs the tables' cross-entropy, for
    the static code and the context code (:mod:`gcodec.context`, tables of precision 4, gcz's prior)."""
    from .. import context, entropy, payload as payload_mod

    tables = entropy.best_tables(symbols, levels)
    enc_t, dec_t = [], []
    payload = b""
    for _ in range(repeats):
        t0 = time.perf_counter()
        payload = entropy.encode(symbols, tables)
        t1 = time.perf_counter()
        back = entropy.decode(payload, tables, symbols.shape)
        t2 = time.perf_counter()
        enc_t.append(t1 - t0)
        dec_t.append(t2 - t1)
    if not np.array_equal(back, symbols):
        raise GczError("entropy round trip failed")
    start = entropy.tables_for(symbols, levels, payload_mod.CONTEXT_PRECISION)
    ctx_enc, ctx_dec, coded = [], [], b""
    for _ in range(repeats):
        t0 = time.perf_counter()
        coded = context.encode(symbols, start, context.DEFAULT_PRIOR)
        t1 = time.perf_counter()
        back = context.decode(coded, start, symbols.shape, context.DEFAULT_PRIOR)
        ctx_enc.append(t1 - t0)
        ctx_dec.append(time.perf_counter() - t1)
    if not np.array_equal(back, symbols):
        raise GczError("context-coding round trip failed")
    ideal = tables.cross_entropy_bits(symbols) / 8
    n = int(symbols.size)
    counts = np.stack([np.bincount(symbols[c].ravel(), minlength=levels) for c in range(symbols.shape[0])])
    p = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    empirical = float(-(counts * np.log2(np.where(p > 0, p, 1))).sum() / 8)
    return {"model": name, "latent_shape": list(symbols.shape), "symbols": n,
            "encode_symbols_per_s": n / min(enc_t), "decode_symbols_per_s": n / min(dec_t),
            "table_precision": tables.precision,
            "table_bytes": entropy.table_bits(symbols.shape[0], levels, tables.precision) / 8,
            "payload_bytes": len(payload), "cross_entropy_bytes": ideal, "empirical_entropy_bytes": empirical,
            "payload_overhead_pct": 100 * (len(payload) - ideal) / ideal if ideal else None,
            "context_payload_bytes": len(coded), "context_encode_symbols_per_s": n / min(ctx_enc),
            "context_decode_symbols_per_s": n / min(ctx_dec)}


# ------------------------------------------------------------------ driver
def run_bench(cfg: BenchConfig, status: Any = None) -> BenchResults:
    """Run every benchmark and write ``results.json`` and ``results.md`` into ``cfg.out``."""
    import torch

    from .. import zoo
    from ..codec import resolve_model
    from . import peers as peer_mod

    say = status or (lambda s: None)
    entry = resolve_model(cfg.channels, None)
    cfg.out.mkdir(parents=True, exist_ok=True)
    res = BenchResults(machine=machine_info(), model={"name": entry.name, "id": f"{entry.name}@{entry.hash_prefix.hex()}",
                                                  "arch": entry.arch.to_dict(), "fixed_norm": entry.fixed_norm})
    backends = list(cfg.backends)
    if "torch-cuda" in backends and not torch.cuda.is_available():
        backends.remove("torch-cuda")
        res.notes.append("torch-cuda skipped: no CUDA device")
    gcz_time: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="gcz-bench-") as tmp:
        if "onnx-cpu" in backends:
            try:
                from ..backends.onnx_net import OnnxNetwork
                OnnxNetwork.load(entry)  # graphs built and cached before anything is timed
            except (ImportError, GczError) as exc:
                backends.remove("onnx-cpu")
                res.notes.append(f"onnx-cpu skipped: {exc}")
        for (w, h) in cfg.sizes:
            mp = w * h / 1e6
            for backend in backends:
                row: dict[str, Any] = {"size": f"{w}x{h}", "megapixels": mp, "backend": backend}
                try:
                    for phase in ("encode", "decode"):
                        say(f"bench: {backend} {phase} {w}x{h}")
                        out = _spawn(_spec(cfg, entry, backend, phase, (w, h), Path(tmp) / f"{backend}-{w}x{h}.gcz"))
                        row[f"{phase}_s"] = out["seconds"]
                        row[f"{phase}_s_per_mp"] = out["seconds"] / mp
                        row[f"peak_rss_{phase}_mb"] = out["peak_rss_mb"]
                        row[f"model_load_{phase}_s"] = out["model_load_s"]
                        row["rss_after_import_mb"] = out["rss_after_import_mb"]
                        row["tiled"] = out["tiled"]
                        if "bytes" in out:
                            row["bytes"], row["bpp"] = out["bytes"], out["bytes"] * 8 / (w * h)
                        if "peak_gpu_mb" in out:
                            row[f"peak_gpu_{phase}_mb"] = out["peak_gpu_mb"]
                except GczError as exc:
                    res.notes.append(str(exc))
                    continue
                row["model_load_s"] = min(row.pop("model_load_encode_s"), row.pop("model_load_decode_s"))
                row["peak_rss_mb"] = max(row["peak_rss_encode_mb"], row["peak_rss_decode_mb"])
                if row["peak_rss_mb"] > MEMORY_BUDGET_MB and mp > 10:
                    res.notes.append(f"{backend} {w}x{h}: peak RSS {row['peak_rss_mb']:.0f} MiB exceeds "
                                     f"{MEMORY_BUDGET_MB} MiB")
                res.runs.append(row)
                gcz_time[(row["size"], backend)] = {"encode": row["encode_s"], "decode": row["decode_s"]}
            _bench_peers(cfg, res, peer_mod, w, h, gcz_time.get((f"{w}x{h}", "torch-cpu")), say)
        _bench_refine(cfg, res, entry, backends, Path(tmp), say)
    if cfg.processes:
        from .process_bench import bench_processes
        res.processes = bench_processes({(w, h): test_image(w, h, cfg.image) for (w, h) in cfg.sizes}, say=say)
    say("bench: entropy coding")
    _bench_entropy_models(cfg, res, zoo)
    write_results(cfg.out, res)
    return res


def _spec(cfg: BenchConfig, entry: Any, backend: str, phase: str, size: tuple[int, int], gcz_path: Path,
          refine: int = 0) -> dict[str, Any]:
    """What :func:`worker` measures in its own process: ``phase`` of ``entry`` on ``backend`` at ``size``,
    the encode refined by ``refine`` steps (:mod:`gcodec.refine`; 0, the fast path)."""
    return {"backend": backend, "phase": phase, "size": list(size), "model": entry.name, "threads": cfg.threads,
            "image": str(cfg.image) if cfg.image else None, "refine": refine, "gcz_path": str(gcz_path)}


def _bench_refine(cfg: BenchConfig, res: BenchResults, entry: Any, backends: list[str], tmp: Path,
                  say: Any) -> None:
    """Time the default encode (refinement on, :data:`gcodec.refine.DEFAULT_STEPS` steps) at ``cfg.refine_sizes``
    on the default CPU backend; the refinement itself always runs on PyTorch."""
    from ..refine import DEFAULT_STEPS

    backend = "onnx-cpu" if "onnx-cpu" in backends else "torch-cpu"
    for (w, h) in cfg.refine_sizes:
        say(f"bench: {backend} encode {w}x{h}, refine {DEFAULT_STEPS}")
        try:
            out = _spawn(_spec(cfg, entry, backend, "encode", (w, h), tmp / f"refine-{w}x{h}.gcz", DEFAULT_STEPS))
        except GczError as exc:
            res.notes.append(str(exc))
            continue
        res.refine.append({"size": f"{w}x{h}", "backend": backend, "steps": DEFAULT_STEPS,
                           "encode_s": out["seconds"], "seconds_per_step": out["seconds"] / DEFAULT_STEPS,
                           "peak_rss_mb": out["peak_rss_mb"], "bpp": out["bytes"] * 8 / (w * h)})


def _bench_peers(cfg: BenchConfig, res: BenchResults, peer_mod: Any, w: int, h: int,
                 gcz: dict[str, float] | None, say: Any) -> None:
    pixels: np.ndarray | None = None
    for name in cfg.peers:
        codec = peer_mod.get_peer(name)
        missing = codec.missing_tools()
        if missing:
            note = f"{name} timing skipped: {', '.join(missing)} not on PATH ({codec.install_hint()})"
            if note not in res.notes:
                res.notes.append(note)
            continue
        if pixels is None:
            pixels = test_image(w, h, cfg.image)
        say(f"bench: {name} {w}x{h}")
        value, mode = PEER_SETTINGS[name]
        try:
            data, _, enc_s, dec_s = codec.roundtrip(pixels, value, mode)
        except GczError as exc:
            res.notes.append(f"{name} {w}x{h}: {exc}")
            continue
        row = {"size": f"{w}x{h}", "codec": name, "label": codec.label,
               "setting": codec.knobs[mode].describe(value), "bpp": len(data) * 8 / (w * h),
               "encode_s": enc_s, "decode_s": dec_s, "encode_s_per_mp": enc_s / (w * h / 1e6),
               "decode_s_per_mp": dec_s / (w * h / 1e6)}
        if gcz:
            row["gcz_encode_over_peer"] = gcz["encode"] / enc_s if enc_s else None
            row["gcz_decode_over_peer"] = gcz["decode"] / dec_s if dec_s else None
        res.peers.append(row)


def _bench_entropy_models(cfg: BenchConfig, res: BenchResults, zoo: Any) -> None:
    from .. import backends
    from ..codec import MIN_PADDED_SIDE
    from ..imageio import pad_image, to_unit

    w, h = max(cfg.sizes, key=lambda s: s[0] * s[1]) if cfg.sizes else (768, 512)
    w, h = min(w, 2048), min(h, 2048)
    pixels = pad_image(test_image(w, h, cfg.image), 16, MIN_PADDED_SIDE)
    for c in (2, 4, 8):
        try:
            entry = zoo.find_model(zoo.default_model_name(c))
            net = backends.load(entry)
        except GczError:
            continue
        symbols = net.encode(to_unit(pixels))[0]
        res.entropy.append({**bench_entropy(symbols, entry.arch.levels, entry.name), "image": f"{w}x{h}"})


# ------------------------------------------------------------------ output
def markdown(res: BenchResults) -> str:
    """A readable report of the results."""
    m = res.machine
    lines = [f"# gcz benchmarks: {res.model['id']}", "",
             f"{m['processor']}, {m['cpu_count']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
             f"onnxruntime {m.get('onnxruntime')}, CUDA: {m.get('cuda') or 'none'}", "",
             "## gcz encode / decode (in-process, model loaded and warmed up; encodes with `--refine 0`)", "",
             "| size | backend | tiled | encode s | decode s | enc s/MP | dec s/MP | peak RSS enc MiB | "
             "peak RSS dec MiB | model load s | bpp |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res.runs:
        gpu = f" (GPU {r['peak_gpu_decode_mb']:.0f})" if "peak_gpu_decode_mb" in r else ""
        lines.append(f"| {r['size']} | {r['backend']} | {'yes' if r['tiled'] else 'no'} | {r['encode_s']:.3f} | "
                     f"{r['decode_s']:.3f} | {r['encode_s_per_mp']:.3f} | {r['decode_s_per_mp']:.3f} | "
                     f"{r['peak_rss_encode_mb']:.0f} | {r['peak_rss_decode_mb']:.0f}{gpu} | "
                     f"{r['model_load_s']:.3f} | {r.get('bpp', 0):.4f} |")
    if res.refine:
        lines += ["", "## The default encode, with its refinement (in-process)", "",
                  "| size | backend | steps | encode s | s per step | peak RSS MiB | bpp |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['size']} | {r['backend']} | {r['steps']} | {r['encode_s']:.2f} | {r['seconds_per_step']:.3f} | "
                  f"{r['peak_rss_mb']:.0f} | {r['bpp']:.4f} |" for r in res.refine]
    if res.processes:
        from .process_bench import markdown as process_markdown
        lines += [""] + process_markdown(res.processes)
    lines += ["", "## Entropy coding (range coder: static per-channel tables; context models, 0.8.0)", "",
              "| model | symbols | encode sym/s | decode sym/s | payload B | cross-entropy B | overhead % | "
              "tables B | context payload B | context encode sym/s | context decode sym/s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in res.entropy:
        context_cells = (f"{e['context_payload_bytes']} | {e['context_encode_symbols_per_s']:.3g} | "
                         f"{e['context_decode_symbols_per_s']:.3g}" if "context_payload_bytes" in e else "- | - | -")
        lines.append(f"| {e['model']} | {e['symbols']} | {e['encode_symbols_per_s']:.3g} | "
                     f"{e['decode_symbols_per_s']:.3g} | {e['payload_bytes']} | {e['cross_entropy_bytes']:.1f} | "
                     f"{e['payload_overhead_pct']:.2f} | {e['table_bytes']:.1f} | {context_cells} |")
    lines += ["", "## Peers on the same images (gcz torch-cpu time / peer time)", "",
              "| size | codec | setting | bpp | encode s | decode s | gcz enc / peer | gcz dec / peer |",
              "|---|---|---|---|---|---|---|---|"]
    for p in res.peers:
        ratio_e = p.get("gcz_encode_over_peer")
        ratio_d = p.get("gcz_decode_over_peer")
        lines.append(f"| {p['size']} | {p['codec']} | `{p['setting']}` | {p['bpp']:.4f} | {p['encode_s']:.3f} | "
                     f"{p['decode_s']:.3f} | {'–' if ratio_e is None else f'{ratio_e:.1f}x'} | "
                     f"{'–' if ratio_d is None else f'{ratio_d:.1f}x'} |")
    if res.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in res.notes]
    return "\n".join(lines) + "\n"


def write_results(out: Path, res: BenchResults) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md``."""
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "results.json", out / "results.md"
    js.write_text(json.dumps(asdict(res), indent=2) + "\n")
    md.write_text(markdown(res))
    return js, md


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """``768x512,2048x2048`` -> ((768, 512), (2048, 2048))."""
    sizes = []
    for part in text.split(","):
        try:
            w, h = (int(v) for v in part.lower().strip().split("x"))
        except ValueError:
            raise GczInputError(f"bad size {part!r}: use WIDTHxHEIGHT") from None
        if w < 1 or h < 1:
            raise GczInputError(f"bad size {part!r}")
        sizes.append((w, h))
    return tuple(sizes)


if __name__ == "__main__":  # the subprocess side of _spawn
    print(json.dumps(worker(json.loads(sys.argv[1]))))
