"""The reference decoder is a strict validator, and gcodec refuses exactly what it refuses.

Differential: over crafted files (one broken rule each), the fuzz seed corpus, the golden files and
seeded mutations of them, gcodec and ``tests/reference_decoder.py`` must agree on accept / refuse.
"""
from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import pytest

import crafted_files
import reference_decoder
from gcodec import container, limits, selective
from gcodec.errors import GczError

ROOT = Path(__file__).resolve().parent.parent
#: Files whose selective grids are larger are left out (the pure-Python reference would take minutes).
MAX_REFERENCE_CELLS = 1 << 14


def gcodec_accepts(data: bytes) -> bool:
    """Whether gcodec reads the file, its COLOUR grid and (selective files) heatmap and label map."""
    try:
        gcz = container.read(data)
        if gcz.selective is not None:
            selective.read_parts(gcz, max_pixels=limits.MAX_PIXEL_LIMIT)
        return True
    except GczError:
        return False


def reference_accepts(data: bytes) -> bool:
    """Whether the reference decoder validates the file; anything but SpecError is a reference bug."""
    try:
        reference_decoder.validate(data)
        return True
    except reference_decoder.SpecError:
        return False


def _too_big_for_reference(data: bytes) -> bool:
    try:
        header = reference_decoder.parse(data)
    except reference_decoder.SpecError:
        return False
    sel = header["selective"]
    return sel is not None and max(header["latent_h"] * header["latent_w"], sel["grid_h"] * sel["grid_w"]) \
        > MAX_REFERENCE_CELLS


def _fix_crc(data: bytes) -> bytes:
    if len(data) < 9:
        return data
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def _seed_files() -> dict[str, bytes]:
    files = {f"crafted/{k}": v for k, v in crafted_files.invalid_files().items()}
    files.update({f"valid/{k}": v for k, v in crafted_files.hostile_but_valid().items()})
    for folder in (ROOT / "fuzz" / "corpus" / "container", ROOT / "tests" / "golden"):
        files.update({f"{folder.name}/{p.name}": p.read_bytes() for p in sorted(folder.glob("*.gcz"))})
    for p in sorted((ROOT / "fuzz" / "corpus" / "container").iterdir()):
        files.setdefault(f"container/{p.name}", p.read_bytes())
    return files


def _mutants(files: dict[str, bytes], count: int, seed: int = 26) -> dict[str, bytes]:
    """Seeded mutations (byte flips, insertions, deletions, CRC fixed) of the seed files."""
    rng = random.Random(seed)
    names = sorted(files)
    out = {}
    for i in range(count):
        name = rng.choice(names)
        data = bytearray(files[name])
        for _ in range(rng.randint(1, 3)):
            if not data:
                break
            pos = rng.randrange(len(data))
            op = rng.random()
            if op < 0.6:
                data[pos] = rng.randrange(256)
            elif op < 0.8:
                data.insert(pos, rng.randrange(256))
            else:
                del data[pos]
        out[f"mutant{i}/{name}"] = _fix_crc(bytes(data))
    return out


def test_reference_refuses_every_crafted_invalid_file():
    accepted = [name for name, data in crafted_files.invalid_files().items() if reference_accepts(data)]
    assert accepted == []


def test_gcodec_refuses_every_crafted_invalid_file():
    accepted = [name for name, data in crafted_files.invalid_files().items() if gcodec_accepts(data)]
    assert accepted == []


def test_both_accept_odd_but_valid_files():
    for name, data in crafted_files.hostile_but_valid().items():
        assert reference_accepts(data), name
        assert gcodec_accepts(data), name


@pytest.mark.parametrize("chunk", range(4))
def test_gcodec_and_reference_agree_on_accept_or_refuse(chunk: int):
    seeds = _seed_files()
    files = dict(seeds) if chunk == 0 else {}
    files.update({k: v for i, (k, v) in enumerate(sorted(_mutants(seeds, 1600).items())) if i % 4 == chunk})
    disagree, compared = [], 0
    for name, data in files.items():
        if _too_big_for_reference(data):
            continue
        compared += 1
        if gcodec_accepts(data) != reference_accepts(data):
            disagree.append((name, gcodec_accepts(data)))
    assert compared > 0.9 * len(files)
    assert disagree == []
