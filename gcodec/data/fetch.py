"""Build the offline training-photo pool from Debian packages.

Real photographs (no renders, paintings or cartoons) are pulled out of a few
Debian packages with ``apt-get download`` + ``dpkg-deb --fsys-tarfile`` and
written to ``root/photos/<source>__<name>.{png,jpg}``; ``root/index.json``
lists them with licence, size and a deterministic train/val split.

Everything is driven by the explicit allow-lists below, so the pool is the
same on every machine.  Re-running only fetches what is missing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageChops, ImageOps, ImageStat

from gcodec.data.archives import iter_eet_entries, iter_rcc_files
from gcodec.errors import GczError

__all__ = [
    "FetchError",
    "SOURCES",
    "Source",
    "assign_splits",
    "build_records",
    "fetch_photo_pool",
    "is_val_name",
    "summarize",
    "write_index",
]

Progress = Callable[[str], None]

MAX_SIDE = 2048
VAL_PERCENT = 15
MIN_SOURCE_FOR_VAL = 5
# Mean per-pixel channel spread (max-min, 8 bit) below which a photo counts as grayscale.
GRAY_SPREAD = 1.0
PHOTO_EXTS = (".png", ".jpg")


class FetchError(GczError, RuntimeError):
    """Raised when the pool cannot be built (missing tools, failed download...)."""


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One Debian package and the photos taken from it.

    ``members`` maps tar member paths (no leading ``./``) to the extractor used
    on their bytes; an extractor yields ``(name, encoded image bytes)`` and
    must only yield names listed in ``names``.
    """

    name: str
    package: str
    licence: str
    names: tuple[str, ...]
    members: dict[str, Callable[[str, bytes], Iterator[tuple[str, bytes]]]] = field(
        hash=False, compare=False
    )
    optional: bool = False


def _stem(path: str) -> str:
    """File name without directory and extension."""
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _single(name: str) -> Callable[[str, bytes], Iterator[tuple[str, bytes]]]:
    """Extractor that yields the member's bytes unchanged under ``name``."""

    def extract(path: str, data: bytes) -> Iterator[tuple[str, bytes]]:
        yield name, data

    return extract


def _edj_largest_jpeg(path: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield the largest JPEG ``edje/images/*`` entry of an Enlightenment .edj."""
    jpegs = [
        blob
        for key, blob in iter_eet_entries(data)
        if key.startswith("edje/images/") and blob[:2] == b"\xff\xd8"
    ]
    if jpegs:
        yield _stem(path), max(jpegs, key=len)


def _rcc_photos(activity: str, stems: Iterable[str]):
    """Extractor yielding the allow-listed WebP photos of a GCompris .rcc."""
    wanted = set(stems)

    def extract(path: str, data: bytes) -> Iterator[tuple[str, bytes]]:
        for inner, blob in iter_rcc_files(data):
            stem = _stem(inner)
            if inner.endswith(".webp") and stem in wanted:
                yield f"{activity}-{stem}", blob

    return extract


# -- Enlightenment: 3840x2160 photo wallpapers.  Not used: Dunes, Flat-Fan,
# Sunset-Hills (illustrations), Flat-Stone-Pattern/Paper-Flower/Squiggle*
# (patterns, lossless EET images), Foggy-Trees (grayscale content).
_E_DIR = "usr/share/enlightenment/data/backgrounds"
_E_NAMES = (
    "Bamboo", "God-Rays", "Green-Maple", "Lichen-Branches", "Mountain", "Peaks",
    "Red-Maple", "Sea-of-Lanterns", "Snow-Trees", "Spruce-Needles", "Sunset-Clouds",
    "White-Flower", "Yellow-Flower",
)  # fmt: skip

# -- GCompris: photos per activity (all inspected by eye).  Excluded: Van Gogh
# paintings in "details" (Eglise_dAuvers-sur-Oise, Gogh4, PortraitOfPereTanguy,
# Van_Gogh_The_Night_Cafe, VincentVanGogh*), details photos of monuments that
# also appear in explore_monuments (Chenonceau, GizahPyramids, Neuschwanstein,
# TajMahal: near-duplicate risk), TourEiffel (270 px wide), the 72-88 px
# puzzle pieces, clickgame fish sprites, castleClinton (black-and-white).
_GC_DIR = "usr/share/gcompris-qt/rcc"
_GC_PHOTOS: dict[str, tuple[str, ...]] = {
    "explore_monuments": (
        "ajantaCave", "arlesAmphitheater", "aulaPalatina", "bentPyramid",
        "berlinCathedral", "brandenburgGate", "cabrillo", "canyondeChelly",
        "castillodeSanMarcos", "charminar", "chateaudeChambord",
        "chateaudeChenonceau", "chichenItza", "christTheRedeemer",
        "citedeCarcassonne", "colosseum", "eiffelTower", "fortSumter",
        "gatewayofIndia", "georgeWashingtonBirthplace", "goldenTemple",
        "greatPyramidOfGiza", "greatStupa", "greatWallofChina", "hawaMahal",
        "konarkSunTemple", "lincolnMemorial", "machuPicchu", "meidumPyramid",
        "montStMichel", "mountRushmore", "mysorePalace", "navajo",
        "neuschwansteinCastle", "palaisdesPapes", "petra", "pontduGard",
        "qutubMinar", "rangGhar", "redPyramid", "reimsCathedral", "rocamadour",
        "schwerinPalace", "statueofLiberty", "tajMahal", "trierImperialBaths",
        "victoriaMemorial", "wormsCathedral",
    ),
    "erase": (
        "alpaca", "bee", "butterfly", "calf", "camels", "caterpillar",
        "chamaeleon", "cheetah", "crab", "dolphin", "flying_fox", "gibbon",
        "giraffe", "goat", "gorilla", "gosling", "heron", "horse", "kingfisher",
        "kitten", "long_nosed_monkey", "macaque", "meerkats", "northern_harrier",
        "nubian_ibex", "penguin", "pika", "red_panda", "rhinoceros", "spoonbills",
        "squirrel", "swans", "toucan",
    ),
    "explore_world_animals": (
        "bison", "chameleon", "crocodile", "dragon", "giraffe", "hedgehog",
        "jaguar", "kangaroo", "koala", "lemur", "moose", "narwhal", "panda",
        "polar_bear", "scarlet_macaw",
    ),
    "explore_farm_animals": (
        "cat", "chicken", "cow", "dog", "duck", "horse", "owl", "pig", "sheep",
    ),
    "explore_world_music": (
        "africa", "america", "australia", "ireland", "italy", "japan", "mexico",
        "middleeast", "orchestra",
    ),
    "clickgame": ("sea1", "sea2", "sea3", "sea4", "sea5", "sea6"),
    "details": (
        "EgeskovSlotSpejling_background", "EilanDonanCastle_background",
        "FanoeWindmill_background", "NDP_background", "Nagoya_background",
        "OperaSidney_background", "TowerBridgeLondon_background",
    ),
}  # fmt: skip

# -- Plasma: photo wallpapers (largest size is 2560x1600 for all of these).
# Not used: Grey and ColdRipple (grayscale content), the rest are renders.
_P_DIR = "usr/share/wallpapers"
_P_NAMES = (
    "BytheWater", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
    "Kite", "OneStandsOut", "Path", "summer_1am",
)  # fmt: skip

# -- OpenCV sample photos (colour only; stereo/sequence partners left out).
_CV_DIR = "usr/share/doc/opencv-doc/examples"
_CV_FILES = (
    "data/aero1.jpg", "data/aloeL.jpg", "data/apple.jpg", "data/baboon.jpg",
    "data/board.jpg", "data/building.jpg", "data/butterfly.jpg",
    "data/chicky_512.png", "data/fruits.jpg", "data/graf1.png", "data/home.jpg",
    "data/left.jpg", "data/leuvenA.jpg", "data/messi5.jpg", "data/orange.jpg",
    "data/rubberwhale1.png", "data/squirrel_cls.jpg", "data/stuff.jpg",
    "hfs/data/000.jpg", "hfs/data/001.jpg", "hfs/data/002.jpg", "reg/home.png",
    "text/scenetext01.jpg", "text/scenetext02.jpg", "text/scenetext03.jpg",
    "text/scenetext04.jpg", "text/scenetext05.jpg", "text/scenetext06.jpg",
)  # fmt: skip


def _cv_name(rel: str) -> str:
    """Pool name of an OpenCV sample: ``data/apple.jpg`` -> ``apple``."""
    prefix = {"data": "", "hfs/data": "hfs", "reg": "reg", "text": ""}[rel.rsplit("/", 1)[0]]
    return f"{prefix}-{_stem(rel)}" if prefix else _stem(rel)


def _make_sources() -> tuple[Source, ...]:
    """The fixed table of photo sources."""
    gc_members = {
        f"{_GC_DIR}/{act}.rcc": _rcc_photos(act, stems) for act, stems in _GC_PHOTOS.items()
    }
    gc_names = tuple(f"{a}-{s}" for a, stems in _GC_PHOTOS.items() for s in stems)
    return (
        Source(
            "enlightenment", "enlightenment-data", "BSD-2-Clause", _E_NAMES,
            {f"{_E_DIR}/{n}.edj": _edj_largest_jpeg for n in _E_NAMES},
        ),
        Source("gcompris", "gcompris-qt-data", "GPL-3.0-or-later", gc_names, gc_members),
        Source(
            "plasma", "plasma-workspace-wallpapers", "GPL-2.0-or-later", _P_NAMES,
            {f"{_P_DIR}/{n}/contents/images/2560x1600.jpg": _single(n) for n in _P_NAMES},
        ),
        Source(
            "opencv", "opencv-doc", "Apache-2.0", tuple(_cv_name(f) for f in _CV_FILES),
            {f"{_CV_DIR}/{f}": _single(_cv_name(f)) for f in _CV_FILES},
        ),
        Source(
            "lomiri", "lomiri-wallpapers-20.04", "CC-BY-SA-3.0", ("Kleiber",),
            {"usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg": _single("Kleiber")},
            optional=True,
        ),
        Source(
            "libjxl", "libjxl-testdata", "BSD-3-Clause", ("flower",),
            {"usr/share/libjxl-testdata/jxl/flower/flower.png": _single("flower")},
            optional=True,
        ),
    )  # fmt: skip


SOURCES: tuple[Source, ...] = _make_sources()


# --------------------------------------------------------------------------- debs


def _require_tool(tool: str) -> None:
    """Raise FetchError if ``tool`` is not on PATH."""
    if shutil.which(tool) is None:
        raise FetchError(f"'{tool}' not found: building the photo pool needs a Debian system")


def find_deb(cache: Path, package: str) -> Path | None:
    """Newest ``PACKAGE_*.deb`` already in ``cache``, if any."""
    debs = sorted(cache.glob(f"{package}_*.deb"))
    return debs[-1] if debs else None


def download_deb(cache: Path, package: str, progress: Progress) -> Path:
    """Return the cached .deb for ``package``, running ``apt-get download`` if needed."""
    deb = find_deb(cache, package)
    if deb is not None:
        return deb
    _require_tool("apt-get")
    cache.mkdir(parents=True, exist_ok=True)
    progress(f"downloading {package} ...")
    proc = subprocess.run(
        ["apt-get", "download", package], cwd=cache, capture_output=True, text=True
    )
    deb = find_deb(cache, package)
    if proc.returncode != 0 or deb is None:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise FetchError(f"apt-get download {package} failed: {lines[-1] if lines else '?'}")
    return deb


def iter_deb_members(deb: Path, wanted: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """Stream ``(path, bytes)`` for the wanted regular files of a .deb.

    Uses ``dpkg-deb --fsys-tarfile`` piped into :mod:`tarfile`, so large
    packages are never unpacked to disk.  Raises FetchError if a wanted file
    is missing.
    """
    _require_tool("dpkg-deb")
    remaining = set(wanted)
    proc = subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(deb)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                path = member.name.removeprefix("./")
                if path not in remaining or not member.isfile():
                    continue
                fh = tar.extractfile(member)
                assert fh is not None
                remaining.discard(path)
                yield path, fh.read()
                if not remaining:
                    break
    except tarfile.TarError as exc:
        raise FetchError(f"cannot read {deb.name}: {exc}") from None
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()
    if remaining:
        raise FetchError(f"{deb.name} lacks {sorted(remaining)[0]} (and {len(remaining) - 1} more)")


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


def build_records(photos: Path, sources: Iterable[Source] = SOURCES) -> list[dict]:
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
    """Summary ``{count, train, val, by_source}`` of split records."""
    by_source: dict[str, int] = {}
    for rec in records:
        by_source[rec["source"]] = by_source.get(rec["source"], 0) + 1
    val = sum(r["split"] == "val" for r in records)
    return {"count": len(records), "train": len(records) - val, "val": val, "by_source": by_source}


# --------------------------------------------------------------------------- driver


def _missing_names(src: Source, photos: Path) -> set[str]:
    """Allow-listed names of ``src`` that have no photo yet."""
    return {n for n in src.names if existing_photo(photos, output_stem(src.name, n)) is None}


def _fetch_source(src: Source, photos: Path, cache: Path, progress: Progress) -> int:
    """Write the missing photos of one source; returns how many were written."""
    missing = _missing_names(src, photos)
    if not missing:
        return 0
    try:
        deb = download_deb(cache, src.package, progress)
    except FetchError as exc:
        if not src.optional:
            raise
        progress(f"warning: skipping {src.name}: {exc}")
        return 0
    progress(f"{src.name}: extracting {len(missing)} photo(s) from {deb.name}")
    written = 0
    for member, data in iter_deb_members(deb, src.members):
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


def fetch_photo_pool(root: Path, cache: Path | None = None, progress: Progress | None = None) -> dict:
    """Build (or complete) the offline photo pool under ``root``.

    Downloads the source packages into ``cache`` (default ``root/debs``;
    existing ``PKG_*.deb`` files are reused), writes the photos to
    ``root/photos`` and the index to ``root/index.json``.  Returns the
    summary ``{count, train, val, by_source}``.  Raises FetchError when a
    required package or tool is unavailable.
    """
    root = Path(root)
    cache = Path(cache) if cache is not None else root / "debs"
    say: Progress = progress or (lambda _msg: None)
    photos = root / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for src in SOURCES:
        written = _fetch_source(src, photos, cache, say)
        if written:
            say(f"{src.name}: wrote {written} photo(s)")
    records = assign_splits(build_records(photos))
    write_index(root / "index.json", records)
    summary = summarize(records)
    say(f"pool: {summary['count']} photos ({summary['train']} train, {summary['val']} val)")
    return summary
