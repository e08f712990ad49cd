"""The evaluation pipeline: gcz and matched peers per image, one JSON line per result, resumable.

Layout of the output folder::

    results.jsonl            one row per (image, codec, gcz reference, match)
    run.json                 configuration, notes (skipped codecs, failures), feature network
    features/*.npy           patch features (float16) of originals and reconstructions, for KID/FID
    crops/<image>/*.png      the same crop of every reconstruction, for the crops grid

A row is written only once its result is complete; rerunning with the same
folder skips every row already in ``results.jsonl``.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..errors import GczError, GczInputError
from . import metrics, peers

if TYPE_CHECKING:
    from ..profile import EncodeProfile

RESULTS_NAME = "results.jsonl"
RUN_NAME = "run.json"
MATCH_FACTORS = {"same": 1.0, "double": 2.0}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm"}


@dataclass
class EvalConfig:
    """What ``gcz eval`` runs.

    Attributes:
        inputs: image files (folders already expanded, see :func:`collect_images`).
        out: output folder.
        channels: gcz latent channel counts; each gives one gcz rate point.
        codecs: peer codec names (see :data:`gcodec.eval.peers.PEERS`).
        matches: byte targets relative to gcz: ``same`` (1x) and/or ``double`` (2x).
        device: torch device for gcz.
        ssimulacra2: compute SSIMULACRA2 (slow, pure Python).
        kid: extract patch features for KID/FID.
        patch: patch size of the distribution metrics.
        crop: side of the crops shown in the grid.
        tolerance: relative size error within which a peer reaches its target.
        max_side: downscale (Lanczos) images whose longer side exceeds this before anything else.
        colour: let gcz's encoder add its COLOUR correction (:mod:`gcodec.colour`).
        context: let gcz's encoder use the context-adaptive code (:mod:`gcodec.context`).
        effort: gcz's effort level (:mod:`gcodec.effort`; None: the default or ``$GCZ_EFFORT``, recorded in
            ``run.json`` as a number).
        refine: the expert setting: refinement steps from the model's own encoder, overriding ``effort``
            (gcz 0.8's encode; None: decided by the effort level).
    """

    inputs: list[Path]
    out: Path
    channels: tuple[int, ...] = (2, 4, 8)
    codecs: tuple[str, ...] = peers.PEER_NAMES
    matches: tuple[str, ...] = ("same", "double")
    device: str = "cpu"
    ssimulacra2: bool = True
    kid: bool = True
    patch: int = metrics.DEFAULT_PATCH
    crop: int = 256
    tolerance: float = peers.DEFAULT_TOLERANCE
    max_side: int | None = None
    colour: bool = True
    context: bool = True
    effort: int | None = None
    refine: int | None = None

    def profile(self) -> "EncodeProfile":
        """gcz's encode profile of this evaluation, with the environment's defaults made explicit."""
        from ..profile import EncodeProfile

        return EncodeProfile(colour=self.colour, context=self.context, effort=self.effort,
                             refine_steps=self.refine, device=self.device).resolved()

    def to_json(self) -> dict[str, Any]:
        """JSON-ready description (stored in ``run.json``)."""
        doc = asdict(self)
        doc["inputs"] = [str(p) for p in self.inputs]
        doc["out"] = str(self.out)
        return doc


@dataclass
class EvalOutcome:
    """What a run did: rows (old and new), notes for the user, and counts."""

    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    computed: int = 0
    skipped: int = 0


def collect_images(sources: Iterable[str | Path], split: str | None = None) -> list[Path]:
    """Expand folders (non-recursively, sorted) into image files; keep files as given.

    With ``split``, a folder must hold an ``index.json`` (the photo pool's, a list of
    ``{"file": ..., "split": ...}``) and only its images of that split are taken.
    """
    files: list[Path] = []
    for src in sources:
        path = Path(src)
        if path.is_dir() and split is not None:
            files += _split_files(path, split)
        elif path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise GczInputError(f"{src}: no such file or directory")
    if not files:
        raise GczInputError("no images to evaluate")
    names = [p.name for p in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise GczInputError(f"several inputs share the file name {dupes[0]}; rename them")
    return files


def _split_files(folder: Path, split: str) -> list[Path]:
    index = folder / "index.json"
    if not index.is_file():
        raise GczInputError(f"{folder}: --split needs an index.json (as `gcz data fetch` writes)")
    try:
        entries = json.loads(index.read_text())
        files = sorted(folder / e["file"] for e in entries if e.get("split") == split)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise GczInputError(f"{index}: not a photo-pool index") from None
    if not files:
        raise GczInputError(f"{index}: no images in split {split!r}")
    return files


def load_pixels(path: Path, max_side: int | None) -> np.ndarray:
    """An image as RGB uint8, downscaled (Lanczos) so its longer side is at most ``max_side``."""
    from ..imageio import load_image

    pixels = load_image(path).pixels
    h, w = pixels.shape[:2]
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))
    return pixels


def row_key(image: str, codec: str, reference: str, match: str) -> str:
    """The identity of a result row (used to resume)."""
    return f"{image}|{codec}|{reference}|{match}"


def safe_name(text: str) -> str:
    """A file-name-safe version of a key."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``results.jsonl``; a truncated last line (an interrupted write) is ignored, and a row
    appended later under the same key (a recomputation) replaces the earlier one."""
    if not path.is_file():
        return []
    rows: dict[Any, dict[str, Any]] = {}
    for number, line in enumerate(path.read_text().splitlines()):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows[row.get("key", number)] = row
    return list(rows.values())


def _is_stale(row: dict[str, Any], model_ids: dict[str, str]) -> bool:
    """Whether ``row`` is a gcz result of a model name that now resolves to other weights."""
    ref = row.get("reference")
    return row.get("codec") == ref and ref in model_ids and row.get("setting") != model_ids[ref]


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def choose_crop(pixels: np.ndarray, size: int) -> tuple[int, int, int]:
    """(y, x, side) of the most detailed of 9 candidate square crops (gradient energy)."""
    h, w = pixels.shape[:2]
    side = min(size, h, w)
    gray = pixels.astype(np.float32).mean(axis=2)
    best = (-1.0, 0, 0)
    for fy in (0.25, 0.5, 0.75):
        for fx in (0.25, 0.5, 0.75):
            y = int(np.clip(fy * h - side / 2, 0, h - side))
            x = int(np.clip(fx * w - side / 2, 0, w - side))
            patch = gray[y:y + side, x:x + side]
            energy = float(np.abs(np.diff(patch, axis=0)).mean() + np.abs(np.diff(patch, axis=1)).mean())
            if energy > best[0]:
                best = (energy, y, x)
    return best[1], best[2], side


class _Evaluator:
    """Metrics and side outputs of one reconstruction against its original."""

    def __init__(self, cfg: EvalConfig) -> None:
        self.cfg = cfg
        self.features = metrics.feature_extractor(cfg.device) if cfg.kid else None
        (cfg.out / "features").mkdir(parents=True, exist_ok=True)
        (cfg.out / "crops").mkdir(parents=True, exist_ok=True)

    def save_features(self, pixels: np.ndarray, name: str, reuse: bool = False) -> str | None:
        """Patch features of ``pixels`` saved as ``features/<name>.npy`` (relative path returned); with
        ``reuse`` an existing file is kept (an original's features never change)."""
        if self.features is None:
            return None
        rel = f"features/{safe_name(name)}.npy"
        path = self.cfg.out / rel
        if not (reuse and path.exists()):
            feats = self.features(metrics.extract_patches(pixels, self.cfg.patch))
            np.save(path, feats.astype(np.float16))
        return rel

    def save_crop(self, pixels: np.ndarray, image: str, name: str, crop: tuple[int, int, int]) -> str:
        y, x, side = crop
        rel = f"crops/{safe_name(image)}/{safe_name(name)}.png"
        (self.cfg.out / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[y:y + side, x:x + side]).save(self.cfg.out / rel)
        return rel

    def measure(self, original: np.ndarray, decoded: np.ndarray) -> dict[str, Any]:
        return {
            "psnr": _finite(metrics.psnr(original, decoded)),
            "ms_ssim": metrics.ms_ssim(original, decoded),
            "ssimulacra2": metrics.ssimulacra2(original, decoded) if self.cfg.ssimulacra2 else None,
            "grid": metrics.grid_ratios(original, decoded),
        }


def _append(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON line, first ending a torn last line (an interrupted write) so it stays apart."""
    torn = False
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as fh:
            fh.seek(-1, 2)
            torn = fh.read(1) != b"\n"
    with open(path, "a") as fh:
        fh.write(("\n" if torn else "") + json.dumps(row) + "\n")
        fh.flush()


ProgressFn = Callable[[str, int], None]


def run_eval(cfg: EvalConfig, progress: ProgressFn | None = None) -> EvalOutcome:
    """Run (or resume) an evaluation; returns all rows in ``cfg.out/results.jsonl``.

    Args:
        cfg: what to run.
        progress: called as ``progress(description, units_done)`` after every
            unit (one codec on one image at one rate point), resumed units included.
    """
    from .. import codec as gcodec_codec
    from .. import zoo
    from ..imageio import LoadedImage
    profile = cfg.profile()
    cfg = replace(cfg, effort=profile.effort, refine=profile.refine_steps)
    for name in cfg.codecs:
        peers.get_peer(name)
    for m in cfg.matches:
        if m not in MATCH_FACTORS:
            raise GczInputError(f"unknown --match {m!r}; known: {', '.join(MATCH_FACTORS)}")
    entries = {c: gcodec_codec.resolve_model(c, None) for c in cfg.channels}
    cfg.out.mkdir(parents=True, exist_ok=True)
    results = cfg.out / RESULTS_NAME
    by_key = {r["key"]: r for r in read_rows(results)}  # every row, old and new, at the end
    # a model republished under the same name (new weights hash) gets its rows recomputed; peer rows
    # are kept only while their byte target still equals the (re)computed gcz bytes
    described = profile.describe()
    setting = f" {described}" if described else ""
    model_ids = {entry.name: f"{entry.name}@{entry.hash_prefix.hex()}{setting}" for entry in entries.values()}
    done = {k: r for k, r in by_key.items() if not _is_stale(r, model_ids)}
    outcome = EvalOutcome(rows=[])

    usable = []
    for name in cfg.codecs:
        codec = peers.PEERS[name]
        missing = codec.missing_tools()
        if missing:
            outcome.notes.append(f"{name} skipped: {', '.join(missing)} not on PATH ({codec.install_hint()})")
        else:
            usable.append(codec)

    evaluator = _Evaluator(cfg)
    _write_run(cfg, outcome.notes)
    report = progress or (lambda desc, n: None)
    for path in cfg.inputs:
        image = path.name
        original: np.ndarray | None = None
        crop: tuple[int, int, int] | None = None

        def load() -> tuple[np.ndarray, tuple[int, int, int]]:
            nonlocal original, crop
            if original is None:
                original = load_pixels(path, cfg.max_side)
                crop = choose_crop(original, cfg.crop)
                evaluator.save_crop(original, image, "original", crop)
                evaluator.save_features(original, f"{image}|original", reuse=True)
            assert crop is not None
            return original, crop

        for channels, entry in entries.items():
            ref = entry.name
            key = row_key(image, ref, ref, "-")
            if key in done:
                outcome.skipped += 1
                report(f"{image} {ref}", 1)
            else:
                pixels, box = load()
                zoo.load_model(entry, cfg.device)  # keep load time out of the timings
                t0 = time.perf_counter()
                data = gcodec_codec.compress_loaded(LoadedImage(pixels), entry, profile)
                t1 = time.perf_counter()
                decoded = np.asarray(gcodec_codec.decompress(data, cfg.device))
                t2 = time.perf_counter()
                row = _row(key, image, pixels, ref, ref, "-", None, len(data), "ok", model_ids[ref],
                           t1 - t0, t2 - t1, label=f"gcz C={channels}")
                row.update(evaluator.measure(pixels, decoded))
                row["features"] = evaluator.save_features(decoded, key)
                row["crop"] = evaluator.save_crop(decoded, image, f"{ref}", box)
                _append(results, row)
                done[key] = by_key[key] = row
                outcome.computed += 1
                report(f"{image} {ref}", 1)
            gcz_bytes = int(done[key]["bytes"])
            for codec in usable:
                for match in cfg.matches:
                    pkey = row_key(image, codec.name, ref, match)
                    target = int(round(gcz_bytes * MATCH_FACTORS[match]))
                    if pkey in done and done[pkey].get("target_bytes") == target:
                        outcome.skipped += 1
                        report(f"{image} {codec.name}", 1)
                        continue
                    pixels, box = load()
                    try:
                        enc = peers.encode_to_size(codec, pixels, target, cfg.tolerance)
                    except GczError as exc:
                        outcome.notes.append(f"{image} {codec.name} ({match} as {ref}): {exc}")
                        report(f"{image} {codec.name}", 1)
                        continue
                    row = _row(pkey, image, pixels, codec.name, ref, match, target, len(enc.data),
                               enc.match.status, enc.setting, enc.encoding_time, enc.decoding_time,
                               label=codec.label)
                    row["search_encodes"] = enc.match.evaluations
                    row["rel_size_error"] = enc.match.rel_error
                    row.update(evaluator.measure(pixels, enc.decoded))
                    row["features"] = evaluator.save_features(enc.decoded, pkey)
                    row["crop"] = evaluator.save_crop(enc.decoded, image, f"{codec.name}_{ref}_{match}", box)
                    _append(results, row)
                    done[pkey] = by_key[pkey] = row
                    outcome.computed += 1
                    report(f"{image} {codec.name}", 1)
    _write_run(cfg, outcome.notes)
    outcome.rows = list(by_key.values())
    return outcome


def total_units(cfg: EvalConfig) -> int:
    """Number of progress units of a run: images x channels x (1 + codecs x matches)."""
    return len(cfg.inputs) * len(cfg.channels) * (1 + len(cfg.codecs) * len(cfg.matches))


def _row(key: str, image: str, pixels: np.ndarray, codec: str, reference: str, match: str, target: int | None,
         size: int, status: str, setting: str, enc_t: float, dec_t: float, label: str) -> dict[str, Any]:
    h, w = pixels.shape[:2]
    return {"key": key, "image": image, "width": w, "height": h, "codec": codec, "label": label,
            "reference": reference, "match": match, "target_bytes": target, "bytes": size,
            "bpp": size * 8 / (h * w), "status": status, "reached": status == "ok", "setting": setting,
            "encoding_time": enc_t, "decoding_time": dec_t}


def _write_run(cfg: EvalConfig, notes: Sequence[str]) -> None:
    doc = {"config": cfg.to_json(), "notes": list(notes),
           "feature_network": metrics.FEATURE_NETWORK if cfg.kid else None,
           "patch": cfg.patch, "tolerance": cfg.tolerance}
    (cfg.out / RUN_NAME).write_text(json.dumps(doc, indent=2) + "\n")
