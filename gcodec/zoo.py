"""Registry of pretrained models: manifest, checksum verification, loading.

A weights directory holds ``manifest.json`` and one weight file per model.
The shipped directory is ``weights/`` beside the package; directories listed
in the ``GCZ_WEIGHTS`` environment variable (``os.pathsep``-separated) are
searched first, so users can add their own trained models.

A model's stable id inside ``.gcz`` files is its name plus the first 4 bytes
of the sha256 of its weight file -- never a position in a list.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import GczModelError
from .models.config import ArchConfig

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def _shipped_dir() -> Path:
    """The shipped weights: a checkout's ``weights/`` folder, else the installed ``gcz_weights`` package
    (the same files, packed into the wheel as package data)."""
    checkout = Path(__file__).resolve().parent.parent / "weights"
    if (checkout / MANIFEST_NAME).is_file():
        return checkout
    try:
        import gcz_weights
    except ImportError:
        return checkout
    return Path(gcz_weights.__file__).resolve().parent


SHIPPED_DIR = _shipped_dir()


#: Kinds of add-on networks a model may carry in its manifest entry's ``heads``.
HEAD_KINDS = ("realism", "sampler", "encoder")


@dataclass(frozen=True)
class HeadEntry:
    """An add-on network of a model: an ORP realism head or a latent sampler.

    Attributes:
        kind: ``realism`` (:mod:`gcodec.models.orp`) or ``sampler`` (:mod:`gcodec.models.sampler`).
        path: its weight file (fp16 state dict), beside the manifest.
        sha256: hex digest the file must have.
        config: the network's shape (``HeadConfig`` / ``SamplerConfig`` as a dict).
        info: the rest of the entry (training, metrics).
    """

    kind: str
    path: Path
    sha256: str
    config: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ModelEntry:
    """One model of a manifest.

    Attributes:
        name: registry name, stored in ``.gcz`` files.
        path: the weight file.
        sha256: hex digest the weight file must have.
        arch: architecture that built the weights.
        fixed_norm: run G's normalisation with fixed (running) statistics.
        info: the rest of the manifest entry (training data, iterations, metrics).
        heads: add-on networks by kind (:data:`HEAD_KINDS`).
    """

    name: str
    path: Path
    sha256: str
    arch: ArchConfig
    fixed_norm: bool = False
    info: dict[str, Any] = field(default_factory=dict, compare=False)
    heads: dict[str, HeadEntry] = field(default_factory=dict, compare=False)

    @property
    def supports_realism(self) -> bool:
        """Whether decoding takes a realism value below 1 (the model has an ORP head)."""
        return "realism" in self.heads

    @property
    def stochastic(self) -> bool:
        """Whether the generator has a noise input, so ``--seed`` changes the output."""
        return self.arch.noise_channels > 0

    @property
    def has_sampler(self) -> bool:
        """Whether a trained latent sampler ships with the model (``gcz sample``)."""
        return "sampler" in self.heads

    @property
    def current_metrics(self) -> dict[str, Any]:
        """The measurement of the model as gcz encodes with it now: the manifest's ``metrics`` names it in
        ``current`` when the encoder changed after the model was published (e.g. ``"with_colour_refined_
        context_0.8.0"``), else the publication's own ``metrics``."""
        metrics = self.info.get("metrics") or {}
        current = metrics.get(metrics.get("current")) if isinstance(metrics.get("current"), str) else None
        return current if isinstance(current, dict) else metrics

    @property
    def hash_prefix(self) -> bytes:
        """The 4 bytes that identify these weights inside ``.gcz`` files."""
        return bytes.fromhex(self.sha256[:8])

    @property
    def bpp_bound(self) -> float:
        """Architectural rate bound C*log2(L)/d^2 in bits per pixel (d = 16 for GC, 8 for SC, all preserved)."""
        import math
        return self.arch.latent_channels * math.log2(self.arch.levels) / self.arch.downsampling ** 2


def search_dirs() -> list[Path]:
    """Weights directories in search order: ``$GCZ_WEIGHTS`` entries, then the shipped one."""
    extra = [Path(p) for p in os.environ.get("GCZ_WEIGHTS", "").split(os.pathsep) if p]
    return extra + [SHIPPED_DIR]


def read_manifest(directory: Path) -> list[ModelEntry]:
    """Parse ``directory/manifest.json``; a missing manifest yields no models."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return []
    try:
        doc = _manifest_doc(path)
        if doc.get("manifest_version") != MANIFEST_VERSION:
            raise GczModelError(f"{path}: unsupported manifest version {doc.get('manifest_version')}")
        entries = []
        for name, item in doc["models"].items():
            entries.append(ModelEntry(
                name=_model_name(name, path), path=directory / _plain_file_name(item["file"], path),
                sha256=_sha256_field(item["sha256"], path),
                arch=ArchConfig.from_dict(item["arch"]), fixed_norm=bool(item.get("fixed_norm", False)),
                info={k: v for k, v in item.items() if k not in ("file", "sha256", "arch", "fixed_norm", "heads")},
                heads={kind: _head_entry(kind, head, directory, path)
                       for kind, head in item.get("heads", {}).items()}))
        return entries
    except GczModelError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GczModelError(f"{path}: malformed manifest ({exc})") from None


def _head_entry(kind: str, item: dict[str, Any], directory: Path, manifest: Path) -> HeadEntry:
    if kind not in HEAD_KINDS:
        raise GczModelError(f"{manifest}: unknown head kind {kind!r} (known: {', '.join(HEAD_KINDS)})")
    return HeadEntry(kind=kind, path=directory / _plain_file_name(item["file"], manifest),
                     sha256=_sha256_field(item["sha256"], manifest), config=dict(item["config"]),
                     info={k: v for k, v in item.items() if k not in ("file", "sha256", "config")})


def _manifest_doc(path: Path) -> dict[str, Any]:
    """The JSON object of a manifest file; GczModelError for anything but an object."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise GczModelError(f"{path}: unreadable manifest ({exc})") from None
    except ValueError as exc:
        raise GczModelError(f"{path}: malformed manifest ({exc})") from None
    if not isinstance(doc, dict):
        raise GczModelError(f"{path}: malformed manifest (a JSON object is needed, not a {type(doc).__name__})")
    return doc


def _sha256_field(value: Any, manifest: Path) -> str:
    """A manifest's sha256: 64 hexadecimal digits (lower-cased)."""
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise GczModelError(f"{manifest}: sha256 {value!r} is not 64 hexadecimal digits")
    return value.lower()


#: Model names are stored in .gcz files: 1..64 printable ASCII characters (format_spec.md 3.2).
MAX_MODEL_NAME = 64


def _model_name(name: Any, manifest: Path) -> str:
    """A manifest's model name, refused unless a .gcz file can carry it (1..64 printable ASCII)."""
    if (not isinstance(name, str) or not 1 <= len(name) <= MAX_MODEL_NAME or not name.isascii()
            or not name.isprintable()):
        raise GczModelError(f"{manifest}: model name {name!r} must be 1..{MAX_MODEL_NAME} printable ASCII "
                            "characters")
    return name


def _plain_file_name(name: Any, manifest: Path) -> str:
    """A manifest's weight file name, refused unless it names a file in the manifest's own folder."""
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name
            or "\0" in name or os.path.isabs(name) or Path(name).name != name):
        raise GczModelError(f"{manifest}: weight file {name!r} must be a plain file name in the manifest's folder")
    return name


def list_models() -> list[ModelEntry]:
    """All registered models; earlier search directories shadow later ones by name."""
    seen: dict[str, ModelEntry] = {}
    for directory in search_dirs():
        for entry in read_manifest(directory):
            seen.setdefault(entry.name, entry)
    return list(seen.values())


def default_key(channels: int, selective: bool = False) -> str:
    """Key of the manifest's ``defaults``: ``"C"`` for GC models, ``"scC"`` for selective ones."""
    return f"sc{channels}" if selective else str(channels)


def default_model_name(channels: int, selective: bool = False) -> str:
    """Registry name of the default model for C latent channels (GC, or SC with ``selective``).

    The first manifest (in search order) whose ``defaults`` maps C decides, so
    a release can make a retrained model the default while the models that
    wrote older files stay installed under their own names.
    """
    key = default_key(channels, selective)
    for directory in search_dirs():
        path = directory / MANIFEST_NAME
        if path.is_file():
            try:
                defaults = _manifest_doc(path).get("defaults", {})
            except GczModelError:
                continue  # reported by read_manifest when the models are listed
            if isinstance(defaults, dict) and key in defaults:
                return str(defaults[key])
    return f"gcz-sc-c{channels}" if selective else f"gcz-c{channels}"


def find_model(name: str, hash_prefix: bytes | None = None) -> ModelEntry:
    """Look up a model by name (and, for decoding, the weights-hash prefix from the file)."""
    candidates = [e for d in search_dirs() for e in read_manifest(d) if e.name == name]
    if not candidates:
        known = ", ".join(sorted(e.name for e in list_models())) or "none"
        raise GczModelError(f"unknown model {name!r} (installed: {known})")
    if hash_prefix is None:
        return candidates[0]
    for entry in candidates:
        if entry.hash_prefix == hash_prefix:
            return entry
    raise GczModelError(f"file needs model {name}@{hash_prefix.hex()}, but the installed {name} is "
                        f"@{candidates[0].hash_prefix.hex()} (different weights)")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_cache: dict[tuple[str, str, str], Any] = {}
_cache_lock = threading.Lock()


def read_verified(entry: "ModelEntry | HeadEntry | AuxEntry", what: str | None = None) -> bytes:
    """The bytes of a weight file, after checking them against the manifest's sha256."""
    what = what or f"weights of {entry.name}"
    try:
        blob = entry.path.read_bytes()
    except OSError as exc:
        raise GczModelError(f"{what} unreadable: {exc.strerror or exc}") from None
    if hashlib.sha256(blob).hexdigest() != entry.sha256:
        raise GczModelError(f"{what} ({entry.path.name}) fail their sha256 checksum")
    return blob


@dataclass(frozen=True)
class AuxEntry:
    """A file the codec needs beside the models: the label codebook of automatic label maps
    (:mod:`gcodec.selective.autolabel`, manifest key ``labeller``) or the feature network of the
    encoder's refinement (:mod:`gcodec.refine`, key ``features``).

    Attributes:
        name: its manifest name (``labels-k12``, ``lite0-features``).
        path: the file beside the manifest.
        sha256: hex digest the file must have.
        info: the rest of the entry (provenance, training data, licence).
    """

    name: str
    path: Path
    sha256: str
    info: dict[str, Any] = field(default_factory=dict, compare=False)


#: The label codebook's entry (kept under its first name).
LabellerEntry = AuxEntry
#: Manifest keys of auxiliary files, and what the error says is missing.
AUX_KINDS = {"labeller": "label codebook", "features": "refinement feature network"}


def aux_entry(kind: str) -> AuxEntry:
    """The first ``kind`` entry (:data:`AUX_KINDS`) of the manifests in :func:`search_dirs` order."""
    for directory in search_dirs():
        path = directory / MANIFEST_NAME
        if not path.is_file():
            continue
        try:
            item = _manifest_doc(path).get(kind)
            if item:
                return AuxEntry(item["name"], directory / _plain_file_name(item["file"], path),
                                _sha256_field(item["sha256"], path),
                                {k: v for k, v in item.items() if k not in ("name", "file", "sha256")})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise GczModelError(f"{path}: malformed {kind} entry ({exc})") from None
    raise GczModelError(f"no {AUX_KINDS[kind]} installed (manifest '{kind}' entry); reinstall gcz")


def register_aux(directory: Path, kind: str, name: str, file: str, sha256: str, info: dict[str, Any]) -> None:
    """Set the ``kind`` entry (:data:`AUX_KINDS`) of ``directory/manifest.json`` (atomic write)."""
    path = directory / MANIFEST_NAME
    doc = json.loads(path.read_text()) if path.is_file() else {"manifest_version": MANIFEST_VERSION, "models": {}}
    doc[kind] = {"name": name, "file": file, "sha256": sha256, **info}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def labeller_entry() -> AuxEntry:
    """The installed label codebook's entry (:func:`aux_entry` ``labeller``)."""
    return aux_entry("labeller")


def read_labeller() -> str:
    """The installed label codebook's text, verified against its sha256."""
    entry = labeller_entry()
    return read_verified(entry, f"label codebook {entry.name}").decode()


def register_labeller(directory: Path, name: str, file: str, sha256: str, info: dict[str, Any]) -> None:
    """Set the ``labeller`` entry of ``directory/manifest.json`` (atomic write)."""
    register_aux(directory, "labeller", name, file, sha256, info)


def load_features(device: str = "cpu") -> Any:
    """The installed refinement feature network (:class:`gcodec.models.features.LiteFeatures`),
    verified against its sha256 and cached per process."""
    import torch

    from .models.features import LiteFeatures

    entry = aux_entry("features")
    key = ("features", entry.sha256, device)
    with _cache_lock:
        if key not in _cache:
            blob = read_verified(entry, f"feature network {entry.name}")
            net = LiteFeatures()
            try:
                net.load_state_dict(torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True))
            except Exception as exc:  # noqa: BLE001 - any load failure is a model error for the user
                raise GczModelError(f"feature network {entry.name}: not LiteFeatures weights ({exc})") from None
            _cache[key] = net.to(device)
        return _cache[key]


def head_entry(entry: ModelEntry, kind: str) -> HeadEntry:
    """``entry``'s head of ``kind``; a GczModelError naming what the model lacks otherwise."""
    if kind not in entry.heads:
        lacks = {"realism": "no realism head (ORP), so it decodes at realism 1 only",
                 "sampler": "no trained latent sampler (use --uniform codes)",
                 "encoder": "no amortised encoder"}.get(kind, f"no {kind} head")
        raise GczModelError(f"model {entry.name} has {lacks}")
    return entry.heads[kind]


def build_head(kind: str, config: dict[str, Any]) -> Any:
    """An untrained network of a head kind and shape (torch module)."""
    if kind == "realism":
        from .models.orp import HeadConfig, ResidualHead
        return ResidualHead(HeadConfig.from_dict(config))
    if kind == "sampler":
        from .models.sampler import CodeGenerator, SamplerConfig
        return CodeGenerator(SamplerConfig.from_dict(config))
    if kind == "encoder":  # an encoder of the model's own architecture (config: the ArchConfig)
        from .models.config import ArchConfig
        from .models.encoder import Encoder
        return Encoder(ArchConfig.from_dict(config))
    raise GczModelError(f"unknown head kind {kind!r}")


def load_head(entry: ModelEntry, kind: str, device: str = "cpu") -> Any:
    """Verify and load ``entry``'s head of ``kind`` (float32, eval); cached like :func:`load_model`."""
    head = head_entry(entry, kind)
    key = (f"{entry.name}/{kind}", head.sha256, device)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    import torch

    blob = read_verified(head, f"{kind} head of {entry.name}")
    try:
        module = build_head(kind, head.config)
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        module.load_state_dict({k: v.float() for k, v in state.items()})
    except GczModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any load failure is a model error for the user
        raise GczModelError(f"{kind} head of {entry.name} does not fit its configuration: {exc}") from None
    if kind == "encoder":  # normalised as the model's own encoder is
        from .models.layers import set_fixed_norm
        set_fixed_norm(module, entry.fixed_norm)
    module = module.eval().to(device)
    with _cache_lock:
        _cache[key] = module
    return module


def load_model(entry: ModelEntry, device: str = "cpu") -> Any:
    """Verify the weight file's sha256, build the architecture and load the weights (float32, eval).

    Loaded models are cached per (name, sha256, device).
    """
    key = (entry.name, entry.sha256, device)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    import torch

    from .models.gc import GCModel
    from .models.layers import set_fixed_norm
    from .models.sc import SCModel

    blob = read_verified(entry)
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        model = SCModel(entry.arch) if entry.arch.selective else GCModel(entry.arch)
        model.load_state_dict(expand_state(state))
    except Exception as exc:  # noqa: BLE001 - any load failure is a model error for the user
        raise GczModelError(f"weights of {entry.name} do not fit its architecture: {exc}") from None
    set_fixed_norm(model, entry.fixed_norm)
    model = model.eval().to(device)
    with _cache_lock:
        _cache[key] = model
    return model


#: Suffix of the per-output-channel scale stored beside an int8 weight tensor.
SCALE_SUFFIX = ".__int8_scale"


def compact_state(state: dict[str, Any]) -> dict[str, Any]:
    """Compact a float state dict for shipping.

    Weight tensors of 2+ dimensions with at least 1024 entries become int8 with a
    symmetric fp16 scale per output channel (dimension 0, or dimension 1 for
    transposed convolutions' ``(in, out, k, k)`` layout is irrelevant: the scale
    is per slice of dimension 0 either way); everything else becomes fp16.
    """
    import torch

    out: dict[str, Any] = {}
    for key, value in state.items():
        if not value.is_floating_point():
            out[key] = value
        elif value.dim() >= 2 and value.numel() >= 1024:
            flat = value.float().reshape(value.shape[0], -1)
            scale = (flat.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
            out[key] = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8).reshape(value.shape)
            out[key + SCALE_SUFFIX] = scale.half()
        else:
            out[key] = value.half()
    return out


def expand_state(state: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`compact_state`: float32 tensors keyed like the model."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if key.endswith(SCALE_SUFFIX):
            continue
        scale = state.get(key + SCALE_SUFFIX)
        if scale is not None:
            shape = (-1,) + (1,) * (value.dim() - 1)
            out[key] = value.float() * scale.float().reshape(shape)
        else:
            out[key] = value.float() if value.is_floating_point() else value
    return out


def save_weights(model: Any, path: Path) -> str:
    """Write a model's inference weights (int8 + fp16, see :func:`compact_state`); return the sha256."""
    import torch

    buf = io.BytesIO()
    torch.save(compact_state(model.state_dict()), buf)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def save_head(module: Any, path: Path) -> str:
    """Write a head's weights in fp16 (they are small); return the sha256."""
    import torch

    buf = io.BytesIO()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in module.state_dict().items()}, buf)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def register_head(directory: Path, model: str, kind: str, weight_file: str, sha256: str,
                  config: dict[str, Any], info: dict[str, Any] | None = None) -> None:
    """Add or replace the ``kind`` head of ``model`` in ``directory/manifest.json`` (atomic write)."""
    if kind not in HEAD_KINDS:
        raise GczModelError(f"unknown head kind {kind!r}")
    path = directory / MANIFEST_NAME
    doc = json.loads(path.read_text()) if path.is_file() else {}
    if model not in doc.get("models", {}):
        raise GczModelError(f"{path} has no model {model!r} to add a {kind} head to")
    doc["models"][model].setdefault("heads", {})[kind] = {"file": weight_file, "sha256": sha256,
                                                          "config": config, **(info or {})}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def register_model(directory: Path, name: str, weight_file: str, sha256: str, arch: ArchConfig,
                   fixed_norm: bool = False, info: dict[str, Any] | None = None,
                   default: bool = False) -> None:
    """Add or replace a model entry in ``directory/manifest.json`` (atomic write).

    With ``default`` the model becomes the default for its channel count.
    """
    path = directory / MANIFEST_NAME
    doc = json.loads(path.read_text()) if path.is_file() else {"manifest_version": MANIFEST_VERSION, "models": {}}
    if default:
        doc.setdefault("defaults", {})[default_key(arch.latent_channels, arch.selective)] = name
    previous = doc["models"].get(name, {})
    doc["models"][name] = {"file": weight_file, "sha256": sha256, "arch": arch.to_dict(),
                           "fixed_norm": fixed_norm, **(info or {})}
    if previous.get("heads") and previous.get("sha256") == sha256:  # heads fit only the weights they learned
        doc["models"][name]["heads"] = previous["heads"]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
