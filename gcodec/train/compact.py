"""Compact checkpoints: a training run that moves between machines in parts of at most 15 MiB.

GPU time comes in short bursts on machines that are gone afterwards, and the
only way back is a few files of at most 16 MiB each.  A compact checkpoint
holds everything :meth:`gcodec.train.loop.Trainer.state` holds -- E, G, D,
both optimizers, iteration, training time, configuration, RNG -- with

* network parameters and buffers in float16 (bfloat16 where a tensor exceeds
  float16's range),
* Adam's moment estimates in 8 bits per value with a float32 scale per block
  of :data:`BLOCK` values (blockwise quantization as in 8-bit optimizers):
  the first moment linearly, the second as its square root, rounded so that a
  small second moment is never restored as zero (which would blow up
  ``m / sqrt(v)``),
* integers and Adam's step counts unchanged,
* a moving average of the weights (``gcz train --ema``) as its 8-bit blockwise
  difference from the (restored) current weights: the two differ by a few
  steps of training, so 8 bits of the difference are far finer than float16
  of the average, at half the bytes (format version 2; a checkpoint without
  an average is written as version 1),

split over ``part-NNN.pt`` files of at most :data:`MAX_PART_BYTES` (a tensor
larger than that -- the paper architecture's 960x960x3x3 convolutions -- is cut
along its first dimension), each
listed with its sha256 in ``compact.json``.  Loading verifies every part and
returns float32 tensors in the shape of ``Trainer.state()``, so a run resumes
from it on any machine (CPU or GPU) exactly as from a full checkpoint, up to
the rounding of the stored values.  Everything is loaded with
``torch.load(weights_only=True)``: a checkpoint from elsewhere cannot run code.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import GczInputError

MANIFEST = "compact.json"
SKELETON = "skeleton.pt"
FORMAT = "gcz-compact-checkpoint"
FORMAT_VERSION = 1
#: The version of a compact checkpoint that stores a moving average of the weights as a difference.
FORMAT_VERSION_EMA_DELTA = 2
#: Where ``Trainer.state()`` keeps the moving average of E/G's weights, and the weights it differs from.
EMA_PREFIX = "/model_ema/"
MODEL_PREFIX = "/model/"
#: Largest part file (the transfer limit is 16 MiB per file; leave room for torch.save's framing).
MAX_PART_BYTES = 15 * 2**20
_TENSOR = "__tensor__"
#: Values per quantization block of the optimizer moments.
BLOCK = 256
#: torch.save's zip framing per tensor (local header, central directory, pickle), measured ~0.8 KiB.
PER_TENSOR_OVERHEAD = 1024


def _flatten(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``obj`` with every tensor replaced by a placeholder naming it in ``tensors``."""
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu()
        return {_TENSOR: path}
    if isinstance(obj, dict):
        return {k: _flatten(v, f"{path}/{k}", tensors) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [_flatten(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    return obj


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR}:
            return tensors[obj[_TENSOR]]
        return {k: _unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_unflatten(v, tensors) for v in obj)
    return obj


def _quantize(value: torch.Tensor, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Blockwise 8-bit codes and float32 block scales of a flattened tensor (second moments: of sqrt)."""
    flat = value.float().flatten()
    flat = torch.nn.functional.pad(flat, (0, (-flat.numel()) % BLOCK)).view(-1, BLOCK)
    if signed:
        scale = flat.abs().amax(dim=1).clamp_min(1e-30)
        return torch.round(flat / scale[:, None] * 127).to(torch.int8), scale
    root = flat.clamp_min(0).sqrt()
    scale = root.amax(dim=1).clamp_min(1e-30)
    return torch.round(root / scale[:, None] * 255).to(torch.uint8), scale


def _dequantize(codes: torch.Tensor, scale: torch.Tensor, shape: list[int]) -> torch.Tensor:
    numel = 1
    for d in shape:
        numel *= d
    if codes.dtype == torch.int8:
        flat = codes.float() / 127 * scale[:, None]
    else:  # a code of 0 stands for "below half a step", restored as a quarter step, never as zero
        flat = (codes.float().clamp_min(0.25) / 255 * scale[:, None]) ** 2
    return flat.flatten()[:numel].view(shape)


def _compact_dtype(key: str, tensor: torch.Tensor) -> torch.dtype:
    """Storage type of a float tensor: float32 for Adam's step count, bfloat16 for its moments and for
    values beyond float16's range, else float16."""
    if key.endswith("/step"):
        return tensor.dtype
    if "/exp_avg" in key:
        return torch.bfloat16
    finite = tensor[torch.isfinite(tensor)]
    if finite.numel() and finite.abs().max() > 60000:
        return torch.bfloat16
    return torch.float16


def _serialise(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_compact(state: dict[str, Any], folder: Path, optimizer: bool = True,
                 max_part_bytes: int = MAX_PART_BYTES) -> list[Path]:
    """Write ``state`` (a ``Trainer.state()``) as a compact checkpoint into ``folder``, atomically.

    Args:
        state: the training state.
        folder: target folder (replaced as a whole; a reader never sees half of one).
        optimizer: include both optimizers' state (about twice the size; resuming without
            them restarts Adam's moment estimates).
        max_part_bytes: largest part file.

    Returns:
        The files written.
    """
    state = dict(state)
    if not optimizer:
        state.pop("opt_g", None)
        state.pop("opt_d", None)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, "", tensors)
    dtypes = {}
    quantized: dict[str, list[int]] = {}
    deltas: dict[str, str] = {}  # moving-average tensor -> the current weights it is stored against
    stored: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        dtypes[key] = str(value.dtype).removeprefix("torch.")
        base = MODEL_PREFIX + key.removeprefix(EMA_PREFIX) if key.startswith(EMA_PREFIX) else None
        if value.is_floating_point() and "/exp_avg" in key and value.numel() > 1:
            stored[key], stored[key + "@scale"] = _quantize(value, signed="/exp_avg_sq" not in key)
            quantized[key] = list(value.shape)
        elif (base is not None and value.is_floating_point() and value.numel() > 1 and base in tensors
              and tensors[base].shape == value.shape and tensors[base].is_floating_point()):
            restored = tensors[base].to(_compact_dtype(base, tensors[base])).float()
            stored[key], stored[key + "@scale"] = _quantize(value.float() - restored, signed=True)
            quantized[key] = list(value.shape)
            deltas[key] = base
        else:
            stored[key] = value.to(_compact_dtype(key, value)) if value.is_floating_point() else value
    pieces: dict[str, torch.Tensor] = {}
    chunks: dict[str, int] = {}
    budget = int(max_part_bytes * 0.97) - 4096  # the zip archive's own framing
    for key, value in stored.items():  # a tensor larger than a part is cut along its first dimension
        nbytes = value.numel() * value.element_size()
        if nbytes <= budget:
            pieces[key] = value
            continue
        rows = max(1, budget // max(1, nbytes // max(1, value.shape[0])))
        if value.dim() == 0 or nbytes // value.shape[0] > budget:
            raise GczInputError(f"tensor {key}: one slice ({nbytes // value.shape[0]} bytes) exceeds a part")
        split = value.split(rows)
        chunks[key] = len(split)
        pieces.update({f"{key}#{i}": piece.clone() for i, piece in enumerate(split)})
    parts: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, value in pieces.items():
        nbytes = value.numel() * value.element_size() + PER_TENSOR_OVERHEAD + 2 * len(key)
        if size + nbytes > budget and parts[-1]:
            parts.append({})
            size = 0
        parts[-1][key] = value
        size += nbytes
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        listing = []
        for i, part in enumerate(parts):
            blob = _serialise(part)
            name = f"part-{i:03d}.pt"
            (work / name).write_bytes(blob)
            listing.append({"file": name, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
                            "tensors": sorted(part)})
        skel = _serialise(skeleton)
        (work / SKELETON).write_bytes(skel)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION_EMA_DELTA if deltas else FORMAT_VERSION,
                "iteration": state.get("iteration"),
                "elapsed_s": state.get("elapsed"), "arch": state.get("arch"), "hardware": state.get("hardware"),
                "optimizer": optimizer, "dtypes": dtypes, "chunks": chunks, "quantized": quantized,
                **({"deltas": deltas} if deltas else {}),
                "skeleton": {"file": SKELETON, "sha256": hashlib.sha256(skel).hexdigest()}, "parts": listing}
        (work / MANIFEST).write_text(json.dumps(meta, indent=1) + "\n")
        old = folder.with_name(folder.name + ".old")
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        os.replace(work, folder)
        shutil.rmtree(old, ignore_errors=True)
        return [folder / p["file"] for p in listing] + [folder / SKELETON, folder / MANIFEST]
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _verified(folder: Path, name: str, sha256: str) -> bytes:
    path = folder / name
    if Path(name).name != name:
        raise GczInputError(f"{folder}: part name {name!r} must be a plain file name")
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise GczInputError(f"{path}: {exc.strerror or exc}") from None
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise GczInputError(f"{path} fails its sha256 checksum (incomplete copy?)")
    return blob


def load_compact(folder: Path) -> dict[str, Any]:
    """Read a compact checkpoint (every part verified) as a ``Trainer.state()`` of float32 tensors."""
    try:
        meta = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise GczInputError(f"{folder / MANIFEST}: not a readable compact checkpoint ({exc})") from None
    if meta.get("format") != FORMAT or meta.get("format_version") not in (FORMAT_VERSION, FORMAT_VERSION_EMA_DELTA):
        raise GczInputError(f"{folder / MANIFEST}: unknown checkpoint format {meta.get('format')!r} "
                            f"version {meta.get('format_version')!r}")
    tensors: dict[str, torch.Tensor] = {}
    for part in meta["parts"]:
        blob = _verified(folder, part["file"], part["sha256"])
        tensors.update(torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True))
    for key, count in meta.get("chunks", {}).items():
        try:
            tensors[key] = torch.cat([tensors.pop(f"{key}#{i}") for i in range(count)])
        except KeyError:
            raise GczInputError(f"{folder}: a piece of tensor {key} is missing from the parts") from None
    for key, shape in meta.get("quantized", {}).items():
        try:
            tensors[key] = _dequantize(tensors[key], tensors.pop(key + "@scale"), shape)
        except KeyError:
            raise GczInputError(f"{folder}: quantized tensor {key} is incomplete") from None
    deltas = meta.get("deltas", {})
    if deltas and meta.get("format_version") != FORMAT_VERSION_EMA_DELTA:
        raise GczInputError(f"{folder / MANIFEST}: differences of weights need format version "
                            f"{FORMAT_VERSION_EMA_DELTA}")
    for key, base in deltas.items():
        if (not isinstance(base, str) or base not in tensors or base in deltas or key not in tensors
                or tensors[base].shape != tensors[key].shape):
            raise GczInputError(f"{folder}: tensor {key} is stored against {base}, which does not match it")
        tensors[key] = tensors[base].float() + tensors[key]
    for key, dtype in meta["dtypes"].items():
        if key not in tensors:
            raise GczInputError(f"{folder}: tensor {key} is missing from the parts")
        tensors[key] = tensors[key].to(getattr(torch, dtype))
    skel = _verified(folder, meta["skeleton"]["file"], meta["skeleton"]["sha256"])
    return _unflatten(torch.load(io.BytesIO(skel), map_location="cpu", weights_only=True), tensors)


def is_compact(path: Path) -> bool:
    """Whether ``path`` is a compact checkpoint folder (or its ``compact.json``)."""
    return (path / MANIFEST).is_file() if path.is_dir() else path.name == MANIFEST


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A training state from a full checkpoint file (``checkpoint.pt``) or a compact checkpoint folder."""
    if is_compact(path):
        return load_compact(path if path.is_dir() else path.parent)
    if not path.is_file():
        raise GczInputError(f"{path}: no such checkpoint")
    return torch.load(path, map_location=map_location, weights_only=False)
