"""The ONNX Runtime backend: the model's graphs exported once, cached, and run without PyTorch.

The first use of a model on a machine exports its encoder and generator
(:func:`gcodec.export.export_onnx`, which needs PyTorch and verifies the
weights' sha256), lets ONNX Runtime apply its hardware-independent graph
optimisations once and stores the result in the cache folder::

    $GCZ_CACHE  (else $XDG_CACHE_HOME/gcz, else ~/.cache/gcz)
      onnx/<weights sha256[:32]>-<realism head sha256[:16] or "none">-ort<version>-v<CACHE_FORMAT>/
        encoder.onnx  generator.onnx  [generator_realism.onnx]  meta.json

The folder's name derives from hashes only, never from a model's name (which
a manifest may set to anything).  Later processes load the optimised graphs
with optimisation switched off, which makes a session in about 20 ms instead
of 100 ms.  A folder is only ever published complete (built in a private
folder, then renamed), and ``meta.json`` records the weights' (and realism
head's) sha256 and every graph's size and sha256.  Each graph is read once,
checked against its sha256 and handed to ONNX Runtime as bytes; a folder that
does not check out (damaged, swapped with another model's graphs), or that
ONNX Runtime cannot load, is rebuilt.  The weight file itself is checked
against its sha256 on every load, so damaged weights are refused whether or
not graphs are cached.  A build interrupted before it published leaves a
private folder holding its process id; the next build removes such folders
whose process is gone.  When the cache cannot be written, the graphs are
built in a temporary folder for this process only.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..version import __version__
from ..errors import GczModelError
from ..zoo import ModelEntry, head_entry, read_verified
from .graphs import REALISM_GRAPH, float_latent, generator_input_name, graph_names

#: Bump when what is cached changes (graph interface, export rewrites, what meta.json records).
CACHE_FORMAT = 3
META_NAME = "meta.json"
CACHE_ENV = "GCZ_CACHE"
#: A build's private folder holds this file with its process id (stale-build cleanup).
OWNER_NAME = "owner.pid"
#: A private build folder whose owner cannot be told is removed after this many seconds.
STALE_BUILD_S = 24 * 3600

#: Loaded networks by (weights sha256, realism head sha256 or ''): a head added later is a new network.
_loaded: dict[tuple[str, str], OnnxNetwork] = {}
_lock = threading.Lock()


def cache_root() -> Path:
    """The cache folder: ``$GCZ_CACHE``, else ``$XDG_CACHE_HOME/gcz``, else ``~/.cache/gcz``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gcz"


def graph_dir(entry: ModelEntry) -> Path:
    """The cache folder of ``entry``'s graphs for the installed ONNX Runtime."""
    import onnxruntime

    head = _head_hashes(entry).get("realism", "")[:16] or "none"
    return cache_root() / "onnx" / f"{entry.sha256[:32]}-{head}-ort{onnxruntime.__version__}-v{CACHE_FORMAT}"


def _sha256(path: Path) -> tuple[bytes, str]:
    """A file's bytes and their hex sha256."""
    blob = path.read_bytes()
    return blob, hashlib.sha256(blob).hexdigest()


def remove_stale_builds(parent: Path) -> list[Path]:
    """Remove private build folders in ``parent`` left by builds that were killed; return them.

    A folder counts as stale when the process id it records is no longer running, or, without a
    readable id, when it is older than :data:`STALE_BUILD_S`.
    """
    removed = []
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(".") and p.is_dir()]
    except OSError:
        return removed
    for folder in candidates:
        try:
            pid = int((folder / OWNER_NAME).read_text().strip())
        except (OSError, ValueError):
            pid = None
        try:
            stale = (not _running(pid)) if pid is not None else time.time() - folder.stat().st_mtime > STALE_BUILD_S
        except OSError:
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _session_options(optimize: bool, save_to: Path | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # no warnings on stderr
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if save_to is not None:
        opts.optimized_model_filepath = str(save_to)
    return opts


def build_graphs(entry: ModelEntry, target: Path) -> Path:
    """Export ``entry`` and store its optimised graphs in ``target`` (published atomically)."""
    import onnxruntime as ort

    from ..export import export_onnx

    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(target.parent)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (work / OWNER_NAME).write_text(f"{os.getpid()}\n")
        raw = work / "raw"
        export_onnx(entry, raw, force=True)
        sizes, hashes = {}, {}
        for name in graph_names(entry):
            ort.InferenceSession(str(raw / name), _session_options(True, work / name),
                                 providers=["CPUExecutionProvider"])
            sizes[name] = (work / name).stat().st_size
            hashes[name] = _sha256(work / name)[1]
        shutil.rmtree(raw)
        (work / OWNER_NAME).unlink()
        meta = {"model": entry.name, "weights_sha256": entry.sha256, "heads_sha256": _head_hashes(entry),
                "gcz": __version__, "onnxruntime": ort.__version__, "cache_format": CACHE_FORMAT,
                "sizes": sizes, "sha256": hashes}
        (work / META_NAME).write_text(json.dumps(meta, indent=1) + "\n")
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(work, target)
        except OSError:
            if not _valid(entry, target):  # another process published first: keep theirs
                raise
        return target
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _cache_key(entry: ModelEntry) -> tuple[str, str]:
    return entry.sha256, _head_hashes(entry).get("realism", "")


def _head_hashes(entry: ModelEntry) -> dict[str, str]:
    """The sha256 of the heads baked into the graphs: the realism head, if any."""
    return {"realism": entry.heads["realism"].sha256} if entry.supports_realism else {}


def _valid(entry: ModelEntry, folder: Path) -> bool:
    """Whether ``folder`` holds complete graphs of exactly ``entry``'s weights (and realism head)."""
    try:
        meta = json.loads((folder / META_NAME).read_text())
        return (meta.get("weights_sha256") == entry.sha256 and meta.get("cache_format") == CACHE_FORMAT
                and meta.get("heads_sha256") == _head_hashes(entry)
                and all((folder / n).stat().st_size == meta["sizes"][n] and isinstance(meta["sha256"][n], str)
                        for n in graph_names(entry)))
    except (OSError, ValueError, KeyError, TypeError):
        return False


class _DamagedGraph(Exception):
    """A cached graph's bytes do not match the sha256 its folder's meta.json records."""


def _verified_graph(folder: Path, name: str) -> bytes:
    """The bytes of graph ``name`` in ``folder``, checked against meta.json's sha256 (raises otherwise)."""
    meta = json.loads((folder / META_NAME).read_text())
    blob, digest = _sha256(folder / name)
    if digest != meta["sha256"][name]:
        raise _DamagedGraph(f"cached {name} fails its sha256 checksum")
    return blob


class OnnxNetwork:
    """Encoder and generator sessions of one model (CPU execution provider)."""

    backend = "onnxruntime"
    device = "cpu"

    def __init__(self, entry: ModelEntry, folder: Path, eager: bool = False) -> None:
        self.entry = entry
        self.folder = folder
        # instance norm with per-image statistics (not fixed) makes tiles disagree with the whole image
        self.tileable = entry.arch.norm != "instance" or entry.fixed_norm
        self._sessions: dict[str, Any] = {}
        if not eager:
            return
        for name in graph_names(entry):
            self._session(name)

    def _session(self, name: str) -> Any:
        """The session of ``encoder.onnx`` or ``generator.onnx``, created on first use
        (``gcz decompress`` never loads the encoder)."""
        if name not in self._sessions:
            import onnxruntime as ort

            self._sessions[name] = ort.InferenceSession(_verified_graph(self.folder, name), _session_options(False),
                                                        providers=["CPUExecutionProvider"])
        return self._sessions[name]

    @classmethod
    def load(cls, entry: ModelEntry) -> OnnxNetwork:
        """The cached graphs of ``entry`` (built on first use), loaded once per process."""
        with _lock:
            key = _cache_key(entry)
            if key in _loaded:
                return _loaded[key]
            read_verified(entry)  # the weights are checked on every load, cached graphs or not (~6 ms)
            if entry.supports_realism:
                read_verified(entry.heads["realism"], f"realism head of {entry.name}")
            folder = graph_dir(entry)
            # sessions are created lazily: a graph that passes the size check but that ONNX Runtime
            # cannot load is noticed, and rebuilt, at its first use (_run)
            net = cls(entry, folder) if _valid(entry, folder) else cls._build(entry, folder)
            _loaded[key] = net
            return net

    @classmethod
    def _build(cls, entry: ModelEntry, folder: Path) -> OnnxNetwork:
        try:
            return cls(entry, build_graphs(entry, folder))
        except GczModelError:
            raise
        except OSError:  # cache not writable: build for this process only
            tmp = Path(tempfile.mkdtemp(prefix="gcz-onnx-"))
            try:
                return cls(entry, build_graphs(entry, tmp / "graphs"), eager=True)
            finally:  # sessions hold the graphs in memory; the files can go
                shutil.rmtree(tmp, ignore_errors=True)

    def encode(self, image: np.ndarray) -> np.ndarray:
        """float32 image (1, 3, H, W) in [-1, 1] -> int64 symbols (1, C, H/16, W/16)."""
        return self._run("encoder.onnx", {"image": np.ascontiguousarray(image, dtype=np.float32)})

    def generator_input(self, symbols: np.ndarray, seed: int | None = None) -> np.ndarray:
        """The symbols themselves (1, C, h, w), which the exported generator dequantizes; for models
        with a noise input, the dequantized latent with the noise of ``seed`` (:mod:`gcodec.noise`)."""
        if not self.entry.arch.noise_channels:
            return np.ascontiguousarray(symbols, dtype=np.int64)[None]
        return float_latent(symbols, self.entry.arch, seed)

    def _feed(self, latent: np.ndarray) -> dict[str, np.ndarray]:
        dtype = np.float32 if self.entry.arch.noise_channels else np.int64
        return {generator_input_name(self.entry): np.ascontiguousarray(latent, dtype=dtype)}

    def generate(self, latent: np.ndarray) -> np.ndarray:
        """A crop of :meth:`generator_input`'s output -> float32 image (1, 3, 16h, 16w) in [-1, 1]."""
        return self._run("generator.onnx", self._feed(latent))

    def generate_realism(self, latent: np.ndarray, alpha: float) -> np.ndarray:
        """As :meth:`generate`, at realism ``alpha`` (the graph with the model's realism head)."""
        head_entry(self.entry, "realism")  # a clear error for a model without one
        return self._run(REALISM_GRAPH, {**self._feed(latent), "alpha": np.array([alpha], dtype=np.float32)})

    def _run(self, name: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
        try:
            session = self._session(name)
        except Exception as exc:  # noqa: BLE001 - a cached graph damaged beyond its size check: rebuild once
            with _lock:
                _loaded.pop(_cache_key(self.entry), None)
                shutil.rmtree(self.folder, ignore_errors=True)
                fresh = OnnxNetwork._build(self.entry, graph_dir(self.entry))
                _loaded[_cache_key(self.entry)] = fresh
            self._sessions, self.folder = fresh._sessions, fresh.folder
            try:
                session = self._session(name)
            except Exception:  # noqa: BLE001
                raise GczModelError(f"ONNX Runtime cannot load the graphs of {self.entry.name}: {exc}") from None
        return session.run(None, feeds)[0]
