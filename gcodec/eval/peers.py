"""Peer codecs (HEVC intra, AVIF, JPEG XL, WebP, JPEG 2000, JPEG) and the search for a byte target.

Each peer runs through its reference command-line tool (found on ``PATH``) or
Pillow; sizes are real file sizes.  :func:`match_size` searches a codec's
quality parameter per image for the file whose size is closest to a target
and says whether the target was reached within a tolerance -- a codec that
cannot go that low (or high) is reported, never silently substituted.

Debian packages of the tools: ``libheif-examples`` (heif-enc, heif-convert),
``libavif-bin`` (avifenc, avifdec), ``libjxl-tools`` (cjxl, djxl), ``webp``
(cwebp, dwebp), ``libopenjp2-tools`` (opj_compress, opj_decompress).
"""
from __future__ import annotations

import io
import math
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import GczError, GczInputError

#: Relative size error within which a byte target counts as reached.
DEFAULT_TOLERANCE = 0.05
#: Debian package of every command-line tool.
DEBIAN_PACKAGES = {"heif-enc": "libheif-examples", "heif-convert": "libheif-examples",
                   "avifenc": "libavif-bin", "avifdec": "libavif-bin", "cjxl": "libjxl-tools",
                   "djxl": "libjxl-tools", "cwebp": "webp", "dwebp": "webp",
                   "opj_compress": "libopenjp2-tools", "opj_decompress": "libopenjp2-tools"}


class GczPeerError(GczError):
    """A peer codec's tool is missing or failed."""


# ------------------------------------------------------------------ the search
@dataclass(frozen=True)
class Knob:
    """One mode of a codec's quality parameter.

    Attributes:
        name: the parameter as the tool calls it (``q``, ``d``, ``r``...).
        lo: smallest value.
        hi: largest value.
        integer: whether only integers are valid.
        increasing: whether a larger value gives a larger file.
        log: search the value on a logarithmic scale.
        extra: extra tool arguments of this mode (e.g. ``--resampling=4``).
    """

    name: str
    lo: float
    hi: float
    integer: bool = True
    increasing: bool = True
    log: bool = False
    extra: tuple[str, ...] = ()

    def value(self, u: float) -> float:
        """Value at position ``u`` in [0, 1], where 0 gives the smallest file and 1 the largest."""
        t = u if self.increasing else 1.0 - u
        v = math.exp(math.log(self.lo) + t * (math.log(self.hi) - math.log(self.lo))) if self.log else \
            self.lo + t * (self.hi - self.lo)
        return float(round(v)) if self.integer else float(v)

    def describe(self, value: float) -> str:
        """The setting as the tool's arguments read, e.g. ``-d 7.3 --resampling=4``."""
        v = str(int(value)) if self.integer else f"{value:.4g}"
        return " ".join([f"{self.name} {v}", *self.extra])


@dataclass
class MatchResult:
    """Outcome of a size search.

    Attributes:
        value: the chosen parameter value.
        mode: index of the chosen :class:`Knob`.
        size: file size in bytes at that setting.
        target: the byte target.
        status: ``ok`` (within tolerance), ``above`` (the smallest file the codec
            makes is still too large), ``below`` (the largest is too small) or
            ``gap`` (no setting lands within tolerance, e.g. a coarse parameter).
        evaluations: number of encodes the search ran.
        tried: every (mode, value, size) evaluated.
    """

    value: float
    mode: int
    size: int
    target: int
    status: str
    evaluations: int
    tried: list[tuple[int, float, int]] = field(default_factory=list)

    @property
    def reached(self) -> bool:
        """Whether the size is within tolerance of the target."""
        return self.status == "ok"

    @property
    def rel_error(self) -> float:
        """(size - target) / target."""
        return (self.size - self.target) / self.target


def match_size(size_at: Callable[[float, int], int], target: int, knobs: Sequence[Knob],
               tolerance: float = DEFAULT_TOLERANCE, max_steps: int = 14) -> MatchResult:
    """Find the setting whose file size is closest to ``target`` bytes.

    ``size_at(value, mode)`` encodes with ``knobs[mode]`` at ``value`` and returns
    the file size; it is assumed monotone in the value (non-monotone steps only
    make the result less close, never wrong: the closest size seen is returned).
    Modes are tried in order, the next one only when the previous cannot make
    a file small enough (e.g. JPEG XL's downsampling for the lowest rates).

    Args:
        size_at: encoder returning the file size for (value, mode index).
        target: byte target (> 0).
        knobs: the parameter's modes, from highest to lowest quality.
        tolerance: relative error within which the target counts as reached.
        max_steps: bisection steps per mode.
    """
    if target <= 0:
        raise GczInputError("byte target must be positive")
    if not knobs:
        raise GczInputError("a codec needs at least one parameter mode")
    cache: dict[tuple[int, float], int] = {}
    tried: list[tuple[int, float, int]] = []

    def size(mode: int, u: float) -> tuple[float, int]:
        value = knobs[mode].value(u)
        key = (mode, value)
        if key not in cache:
            cache[key] = int(size_at(value, mode))
            tried.append((mode, value, cache[key]))
        return value, cache[key]

    for mode, knob in enumerate(knobs):
        _, smallest = size(mode, 0.0)
        if smallest > target:
            if mode + 1 < len(knobs):
                continue  # this mode cannot get small enough; try the next, lower-quality one
            break
        _, largest = size(mode, 1.0)
        if largest >= target:
            lo, hi = 0.0, 1.0  # size(lo) <= target <= size(hi)
            for _ in range(max_steps):
                mid = (lo + hi) / 2
                v_lo, v_hi, v_mid = knob.value(lo), knob.value(hi), knob.value(mid)
                if v_mid in (v_lo, v_hi):
                    break  # integer parameter: neighbours reached
                _, s = size(mode, mid)
                if s == target:
                    break
                if s < target:
                    lo = mid
                else:
                    hi = mid
                if not knob.integer and abs(s - target) <= 0.002 * target:
                    break
        break

    m, v, s = min(tried, key=lambda t: (abs(t[2] - target), t[0], t[1]))
    if abs(s - target) <= tolerance * target:
        status = "ok"
    elif s > target and s == min(t[2] for t in tried):
        status = "above"
    elif s < target and s == max(t[2] for t in tried):
        status = "below"
    else:
        status = "gap"
    return MatchResult(value=v, mode=m, size=s, target=target, status=status, evaluations=len(tried), tried=tried)


# ------------------------------------------------------------------ codecs
def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise GczPeerError(f"{cmd[0]} failed ({proc.returncode}): {tail[0]}")


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


@dataclass(frozen=True)
class PeerCodec:
    """A peer codec: how to encode at a setting and decode, and its parameter modes.

    Attributes:
        name: short name used on the command line (``heic``, ``avif``...).
        label: what tables and plots show, naming the implementation.
        knobs: quality parameter modes, highest quality first.
        tools: executables needed on ``PATH`` (empty for Pillow codecs).
        suffix: file suffix of the encoded files.
        input_suffix: format the encoder reads (``.png`` or ``.ppm``).
        encode_cmd: (src, dst, value, knob) -> argv, for command-line codecs.
        decode_cmd: (src, dst png/ppm) -> argv, for command-line codecs.
        pillow_format: Pillow format name for Pillow codecs.
    """

    name: str
    label: str
    knobs: tuple[Knob, ...]
    tools: tuple[str, ...] = ()
    suffix: str = ""
    input_suffix: str = ".png"
    encode_cmd: Callable[[Path, Path, float, Knob], list[str]] | None = None
    decode_cmd: Callable[[Path, Path], list[str]] | None = None
    decode_suffix: str = ".png"
    pillow_format: str | None = None

    def missing_tools(self) -> list[str]:
        """Tools not found on ``PATH``."""
        return [t for t in self.tools if shutil.which(t) is None]

    def install_hint(self) -> str:
        """How to install the missing tools."""
        pkgs = sorted({DEBIAN_PACKAGES.get(t, t) for t in self.missing_tools()})
        return f"apt-get install {' '.join(pkgs)}" if pkgs else ""

    def roundtrip(self, pixels: np.ndarray, value: float, mode: int = 0,
                  workdir: Path | None = None) -> tuple[bytes, np.ndarray, float, float]:
        """Encode and decode once, timing only the codec (not writing its input or reading its output).

        Returns:
            (file bytes, decoded RGB uint8 array, encode seconds, decode seconds).
        """
        import time

        if self.pillow_format is not None:
            img = Image.fromarray(pixels, "RGB")
            buf = io.BytesIO()
            t0 = time.perf_counter()
            img.save(buf, format=self.pillow_format, quality=int(value), optimize=True)
            t1 = time.perf_counter()
            with Image.open(io.BytesIO(buf.getvalue())) as dec:
                decoded = np.asarray(dec.convert("RGB"), dtype=np.uint8)
            t2 = time.perf_counter()
            return buf.getvalue(), decoded, t1 - t0, t2 - t1
        assert self.encode_cmd is not None and self.decode_cmd is not None
        with _workdir(workdir) as tmp:
            src, enc = tmp / f"in{self.input_suffix}", tmp / f"rt{self.suffix}"
            dec = tmp / f"rt{self.decode_suffix}"
            Image.fromarray(pixels, "RGB").save(src, **({"compress_level": 0} if src.suffix == ".png" else {}))
            for p in (enc, dec):
                p.unlink(missing_ok=True)
            t0 = time.perf_counter()
            _run(self.encode_cmd(src, enc, value, self.knobs[mode]))
            t1 = time.perf_counter()
            _run(self.decode_cmd(enc, dec))
            t2 = time.perf_counter()
            return enc.read_bytes(), _read_rgb(dec), t1 - t0, t2 - t1

    def encode(self, pixels: np.ndarray, value: float, mode: int = 0, workdir: Path | None = None) -> bytes:
        """Encode an RGB uint8 image at ``knobs[mode]`` = ``value``; returns the file's bytes."""
        knob = self.knobs[mode]
        if self.pillow_format is not None:
            buf = io.BytesIO()
            Image.fromarray(pixels, "RGB").save(buf, format=self.pillow_format, quality=int(value), optimize=True)
            return buf.getvalue()
        assert self.encode_cmd is not None
        with _workdir(workdir) as tmp:
            src, dst = tmp / f"in{self.input_suffix}", tmp / f"out{self.suffix}"
            Image.fromarray(pixels, "RGB").save(src, **({"compress_level": 0} if src.suffix == ".png" else {}))
            dst.unlink(missing_ok=True)
            _run(self.encode_cmd(src, dst, value, knob))
            return dst.read_bytes()

    def decode(self, data: bytes, workdir: Path | None = None) -> np.ndarray:
        """Decode a file made by :meth:`encode` to an RGB uint8 array."""
        if self.pillow_format is not None:
            with Image.open(io.BytesIO(data)) as img:
                return np.asarray(img.convert("RGB"), dtype=np.uint8)
        assert self.decode_cmd is not None
        with _workdir(workdir) as tmp:
            src, dst = tmp / f"dec{self.suffix}", tmp / f"dec{self.decode_suffix}"
            src.write_bytes(data)
            dst.unlink(missing_ok=True)
            _run(self.decode_cmd(src, dst))
            return _read_rgb(dst)


class _workdir:
    """A given folder, or a fresh temporary one removed afterwards."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Path:
        if self.path is not None:
            return self.path
        self._tmp = tempfile.TemporaryDirectory(prefix="gcz-peer-")
        return Path(self._tmp.name)

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _fmt(value: float, knob: Knob) -> str:
    return str(int(value)) if knob.integer else f"{value:.4f}"


PEERS: dict[str, PeerCodec] = {
    "heic": PeerCodec(
        "heic", "HEVC intra (x265, heif-enc; BPG stand-in)", (Knob("-q", 0, 100),), ("heif-enc", "heif-convert"),
        ".heic", encode_cmd=lambda s, d, v, k: ["heif-enc", "-q", _fmt(v, k), "-o", str(d), str(s)],
        decode_cmd=lambda s, d: ["heif-convert", str(s), str(d)]),
    "avif": PeerCodec(
        "avif", "AVIF (libaom, avifenc -s 6, 4:2:0)", (Knob("--min/--max", 0, 63, increasing=False),),
        ("avifenc", "avifdec"), ".avif",
        encode_cmd=lambda s, d, v, k: ["avifenc", "--min", _fmt(v, k), "--max", _fmt(v, k), "-s", "6", "-j", "1",
                                       "-y", "420", str(s), str(d)],
        decode_cmd=lambda s, d: ["avifdec", str(s), str(d)]),
    "jxl": PeerCodec(
        "jxl", "JPEG XL (libjxl, cjxl -e 7)",
        (Knob("-d", 0.1, 25.0, integer=False, increasing=False, log=True),
         # cjxl 0.7 rejects --resampling=2 (a flag-parsing bug); 4 and 8 work
         Knob("-d", 0.5, 25.0, integer=False, increasing=False, log=True, extra=("--resampling=4",)),
         Knob("-d", 0.5, 25.0, integer=False, increasing=False, log=True, extra=("--resampling=8",))),
        ("cjxl", "djxl"), ".jxl",
        encode_cmd=lambda s, d, v, k: ["cjxl", str(s), str(d), "-d", _fmt(v, k), "-e", "7", "--num_threads=1",
                                       *k.extra],
        decode_cmd=lambda s, d: ["djxl", str(s), str(d), "--num_threads=1"]),
    "webp": PeerCodec(
        "webp", "WebP (libwebp, cwebp -m 6)", (Knob("-q", 0, 100),), ("cwebp", "dwebp"), ".webp",
        encode_cmd=lambda s, d, v, k: ["cwebp", "-quiet", "-q", _fmt(v, k), "-m", "6", str(s), "-o", str(d)],
        decode_cmd=lambda s, d: ["dwebp", "-quiet", str(s), "-o", str(d)]),
    "jp2": PeerCodec(
        "jp2", "JPEG 2000 (OpenJPEG, opj_compress)", (Knob("-r", 1.0, 20000.0, integer=False, increasing=False,
                                                            log=True),),
        ("opj_compress", "opj_decompress"), ".jp2", input_suffix=".ppm", decode_suffix=".ppm",
        encode_cmd=lambda s, d, v, k: ["opj_compress", "-i", str(s), "-o", str(d), "-r", _fmt(v, k)],
        decode_cmd=lambda s, d: ["opj_decompress", "-i", str(s), "-o", str(d)]),
    "jpeg": PeerCodec(
        "jpeg", "JPEG (libjpeg via Pillow, 4:2:0, optimized)", (Knob("quality", 1, 95),), suffix=".jpg",
        pillow_format="JPEG"),
}
#: Codec names in the order tables list them.
PEER_NAMES = tuple(PEERS)


def get_peer(name: str) -> PeerCodec:
    """Look up a peer codec by name."""
    try:
        return PEERS[name]
    except KeyError:
        raise GczInputError(f"unknown codec {name!r}; known: {', '.join(PEERS)}") from None


@dataclass
class Encoded:
    """A peer encoding matched to a byte target, decoded, with timings."""

    codec: str
    match: MatchResult
    data: bytes
    setting: str
    decoded: np.ndarray
    encoding_time: float
    decoding_time: float


def encode_to_size(codec: PeerCodec, pixels: np.ndarray, target: int,
                   tolerance: float = DEFAULT_TOLERANCE) -> Encoded:
    """Search ``codec``'s parameter for the file closest to ``target`` bytes, then time encode and decode.

    Raises:
        GczPeerError: a tool is missing or fails.
    """
    missing = codec.missing_tools()
    if missing:
        raise GczPeerError(f"{codec.name}: {', '.join(missing)} not found ({codec.install_hint()})")
    with tempfile.TemporaryDirectory(prefix="gcz-peer-") as tmp:
        work = Path(tmp)
        result = match_size(lambda v, m: len(codec.encode(pixels, v, m, work)), target, codec.knobs, tolerance)
        data, decoded, enc_s, dec_s = codec.roundtrip(pixels, result.value, result.mode, work)
    if decoded.shape != pixels.shape:
        raise GczPeerError(f"{codec.name} decoded {decoded.shape[1]}x{decoded.shape[0]}, "
                           f"expected {pixels.shape[1]}x{pixels.shape[0]}")
    return Encoded(codec.name, result, data, codec.knobs[result.mode].describe(result.value), decoded,
                   enc_s, dec_s)
