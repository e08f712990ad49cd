"""Build the checked-in seed corpus ``fuzz/corpus/`` (deterministic; no neural network is run).

``fuzz/corpus/container/``: real version-1 ``.gcz`` files built from random
symbols with :mod:`gcodec.entropy` and :mod:`gcodec.container` (several image
sizes, channel counts, levels and table precisions, one with an optional
extra section), the golden files of ``tests/golden/``, and a few truncations.

``fuzz/corpus/entropy/``: entropy-target inputs (see
``fuzz_gcz.parse_entropy_input``) holding valid tables and a real payload.

``fuzz/corpus/image/``: small real images for the image target (PNG of every
mode, 16-bit and palette with transparency, JPEG with an EXIF orientation,
TIFF, GIF, BMP, WebP, PPM).

Usage: ``python fuzz/make_corpus.py [--out fuzz/corpus]`` (replaces the files it owns).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from gcodec import container, entropy  # noqa: E402

import fuzz_gcz  # noqa: E402

MODEL_HASH = bytes.fromhex("0a1b2c3d")
#: (width, height, channels, levels, precision or None for the best one, downsampling)
CONTAINER_SPECS = [
    (96, 80, 4, 5, None, 16),
    (32, 32, 2, 5, None, 16),
    (1, 1, 2, 5, 4, 16),
    (200, 40, 8, 5, None, 16),
    (64, 48, 4, 2, 2, 16),
    (50, 70, 3, 9, 16, 16),
    (17, 33, 1, 255, 8, 16),
    (40, 40, 4, 5, 12, 8),
    (300, 200, 2, 5, None, 16),
    (20, 12, 5, 7, 6, 1),
]
#: (channels, levels, precision, h, w)
ENTROPY_SPECS = [
    (1, 2, 2, 4, 4),
    (4, 5, 8, 6, 5),
    (2, 5, 16, 8, 8),
    (8, 9, 10, 4, 3),
    (3, 7, 5, 0, 7),
    (1, 3, 12, 64, 64),
]
TRUNCATE_AT = (0, 3, 5, 8, 12, 30)


def random_symbols(rng: np.random.Generator, shape: tuple[int, ...], levels: int) -> np.ndarray:
    """Skewed random symbols (a Dirichlet distribution per channel), like a real latent."""
    probs = rng.dirichlet(np.ones(levels) * 0.5, size=shape[0])
    return np.stack([rng.choice(levels, size=shape[1:], p=probs[c]) for c in range(shape[0])])


def make_tables(symbols: np.ndarray, levels: int, precision: int | None) -> entropy.FrequencyTables:
    return entropy.best_tables(symbols, levels) if precision is None else \
        entropy.tables_for(symbols, levels, precision)


def make_gcz(rng: np.random.Generator, width: int, height: int, channels: int, levels: int,
             precision: int | None, downsampling: int,
             extra: list[container.Section] | None = None) -> bytes:
    """One valid .gcz file of random symbols."""
    shape = (channels,) + container.latent_size(height, width, downsampling)
    symbols = random_symbols(rng, shape, levels)
    tables = make_tables(symbols, levels, precision)
    gcz = container.GczFile(width, height, f"gcz-c{channels}", MODEL_HASH, channels, levels,
                            downsampling, tables, entropy.encode(symbols, tables), extra_sections=extra or [])
    return container.write(gcz)


def container_seeds(rng: np.random.Generator) -> dict[str, bytes]:
    """Name -> bytes of every container seed."""
    seeds = {}
    for w, h, c, lv, p, d in CONTAINER_SPECS:
        seeds[f"c{c}_l{lv}_p{p or 'best'}_d{d}_{w}x{h}.gcz"] = make_gcz(rng, w, h, c, lv, p, d)
    seeds["extra_sections.gcz"] = make_gcz(rng, 48, 48, 2, 5, None, 16, [
        container.Section(0x7E, 0, b"future data"), container.Section(0x41, 0, b"")])
    for golden in sorted((ROOT / "tests" / "golden").glob("*.gcz")):
        seeds[f"golden_{golden.name}"] = golden.read_bytes()
    base = seeds["c4_l5_pbest_d16_96x80.gcz"]
    for n in TRUNCATE_AT:
        seeds[f"truncated_{n:03d}.gcz"] = base[:n]
    return seeds


def entropy_seeds(rng: np.random.Generator) -> dict[str, bytes]:
    """Name -> bytes of every entropy-target seed."""
    seeds = {}
    for c, lv, p, h, w in ENTROPY_SPECS:
        symbols = random_symbols(rng, (c, h, w), lv)
        tables = entropy.tables_for(symbols, lv, p)
        payload = entropy.encode(symbols, tables)
        seeds[f"c{c}_l{lv}_p{p}_{h}x{w}.bin"] = fuzz_gcz.build_entropy_input(tables, h, w, payload)
    return seeds


def write_dir(path: Path, files: dict[str, bytes]) -> None:
    """Replace ``path`` with exactly ``files``."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    for name, data in files.items():
        (path / name).write_bytes(data)


def image_seeds(rng: np.random.Generator) -> dict[str, bytes]:
    """Small real images in the formats and modes gcz reads."""
    import io

    from PIL import Image

    rgb = Image.fromarray(rng.integers(0, 256, (12, 17, 3), dtype=np.uint8), "RGB")
    out = {}

    def save(name: str, img: "Image.Image", fmt: str, **options) -> None:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **options)
        out[name] = buf.getvalue()

    for mode in ("RGB", "RGBA", "L", "LA", "1", "I;16", "P"):
        save(f"mode_{mode.replace(';', '')}.png", rgb.convert(mode) if mode != "I;16" else
             Image.fromarray(rng.integers(0, 65536, (9, 7), dtype=np.uint16)), "PNG")
    palette = rgb.convert("P")
    palette.info["transparency"] = 0
    save("palette_transparent.png", palette, "PNG", transparency=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: EXIF orientation 6
    save("exif_rotated.jpg", rgb, "JPEG", quality=80, exif=exif.tobytes())
    save("gray.jpg", rgb.convert("L"), "JPEG", quality=60)
    save("rgb.tiff", rgb, "TIFF")
    save("rgb_deflate.tiff", rgb, "TIFF", compression="tiff_deflate")
    save("anim.gif", rgb.convert("P"), "GIF")
    save("rgb.bmp", rgb, "BMP")
    save("rgb.webp", rgb, "WEBP", quality=50)
    save("rgb.ppm", rgb, "PPM")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "corpus")
    args = parser.parse_args()
    rng = np.random.default_rng(20261125)
    write_dir(args.out / "container", container_seeds(rng))
    write_dir(args.out / "entropy", entropy_seeds(rng))
    write_dir(args.out / "image", image_seeds(np.random.default_rng(26)))
    files = list(args.out.rglob("*.*"))
    print(f"{len(files)} files, {sum(f.stat().st_size for f in files)} bytes in {args.out}")


if __name__ == "__main__":
    main()
