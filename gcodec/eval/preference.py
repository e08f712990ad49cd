"""Blind two-alternative preference tests: sheets for raters, a key kept apart, scores with intervals.

Metrics disagree with people at these bitrates (a patch KID rewards texture
being present, not being right), so changes to what the decoder outputs are
judged by blind preference:

1. :func:`make_sheets` writes, per image, one sheet with the original on top
   and two reconstructions below at 1:1 (the same most-detailed crop of
   each), in an order drawn at random per sheet, labelled only "left" and
   "right".  Which method is on which side goes to ``key.json`` beside the
   ``sheets/`` folder: give raters the folder, never the key.
2. Raters answer ``<sheet> left|right`` per line, forced choice: which
   reconstruction is closer to the original.
3. :func:`score` maps the answers back through the key into the rate at which
   method A was preferred, with its 95 % Wilson interval and the exact
   two-sided binomial p-value against 50 %.
"""
from __future__ import annotations

import json
import math
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import GczInputError
from .runner import choose_crop

SHEETS = "sheets"
KEY = "key.json"
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm")
GAP = 16
LABEL_H = 24


def _images(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise GczInputError(f"{folder}: not a directory")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTS}


def _label(img: Image.Image, text: str) -> Image.Image:
    out = Image.new("RGB", (img.width, img.height + LABEL_H), "white")
    ImageDraw.Draw(out).text((4, 6), text, fill="black")
    out.paste(img, (0, LABEL_H))
    return out


def make_sheets(original: Path, method_a: Path, method_b: Path, out: Path, names: tuple[str, str] = ("A", "B"),
                crop: int = 384, seed: int = 0) -> dict:
    """Write ``out/sheets/NNN.png`` for every image present in all three folders, and ``out/key.json``.

    Args:
        original, method_a, method_b: folders of images matched by file stem; reconstructions
            must have the original's size.
        out: output folder (``sheets/`` for raters, ``key.json`` kept apart).
        names: what A and B are, recorded in the key only.
        crop: side of the square 1:1 crop (the most detailed of 9 candidates of the original).
        seed: seed of the left/right draw.
    """
    orig, a, b = _images(original), _images(method_a), _images(method_b)
    stems = [s for s in orig if s in a and s in b]
    if not stems:
        raise GczInputError("no image name is present in all three folders")
    (out / SHEETS).mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    entries = []
    for i, stem in enumerate(stems):
        images = [np.asarray(Image.open(p).convert("RGB")) for p in (orig[stem], a[stem], b[stem])]
        if any(im.shape != images[0].shape for im in images[1:]):
            raise GczInputError(f"{stem}: reconstructions differ in size from the original")
        y, x, side = choose_crop(images[0], crop)
        tiles = [Image.fromarray(im[y:y + side, x:x + side]) for im in images]
        a_left = rng.random() < 0.5
        left, right = (tiles[1], tiles[2]) if a_left else (tiles[2], tiles[1])
        width = 2 * side + GAP
        sheet = Image.new("RGB", (width, 2 * (side + LABEL_H) + GAP), "white")
        sheet.paste(_label(tiles[0], "original"), ((width - side) // 2, 0))
        sheet.paste(_label(left, "left"), (0, side + LABEL_H + GAP))
        sheet.paste(_label(right, "right"), (side + GAP, side + LABEL_H + GAP))
        sheet_name = f"{i:03d}.png"
        sheet.save(out / SHEETS / sheet_name)
        entries.append({"sheet": sheet_name, "image": stem, "left": names[0] if a_left else names[1],
                        "right": names[1] if a_left else names[0], "crop": [y, x, side]})
    key = {"a": names[0], "b": names[1], "seed": seed, "sheets": entries}
    (out / KEY).write_text(json.dumps(key, indent=1) + "\n")
    return key


@dataclass
class PreferenceScore:
    """How often method A was preferred over B."""

    a: str
    b: str
    answered: int
    a_preferred: int
    rate: float
    ci95_low: float
    ci95_high: float
    p_value: float


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % by default)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_p_value(successes: int, n: int) -> float:
    """Exact two-sided p-value of ``successes`` of ``n`` under p = 1/2."""
    if n == 0:
        return 1.0
    k = min(successes, n - successes)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


ANSWER = re.compile(r"^\s*(\S+?)(?:\.png)?\s*[:,\s]\s*(left|right|l|r)\b", re.IGNORECASE)


def parse_answers(text: str) -> dict[str, str]:
    """``{sheet stem: "left"|"right"}`` from lines like ``007 left`` or ``007.png: R`` (others ignored)."""
    answers = {}
    for line in text.splitlines():
        match = ANSWER.match(line)
        if match:
            answers[match.group(1)] = "left" if match.group(2).lower().startswith("l") else "right"
    return answers


def score(key: dict, answers: dict[str, str]) -> PreferenceScore:
    """Map answers through the key: the rate at which ``key['a']`` was chosen, with its interval."""
    a_wins = answered = 0
    for entry in key["sheets"]:
        choice = answers.get(Path(entry["sheet"]).stem)
        if choice is None:
            continue
        answered += 1
        a_wins += entry[choice] == key["a"]
    if not answered:
        raise GczInputError("no answer matches a sheet of the key")
    low, high = wilson_interval(a_wins, answered)
    return PreferenceScore(key["a"], key["b"], answered, a_wins, a_wins / answered, low, high,
                           binomial_p_value(a_wins, answered))


def score_files(key_path: Path, answer_paths: list[Path]) -> list[dict]:
    """Scores of several raters' answer files and of all answers pooled."""
    key = json.loads(key_path.read_text())
    results, pooled_wins, pooled_n = [], 0, 0
    for path in answer_paths:
        s = score(key, parse_answers(path.read_text()))
        results.append({"answers": str(path), **asdict(s)})
        pooled_wins, pooled_n = pooled_wins + s.a_preferred, pooled_n + s.answered
    if len(answer_paths) > 1:
        low, high = wilson_interval(pooled_wins, pooled_n)
        results.append({"answers": "pooled", "a": key["a"], "b": key["b"], "answered": pooled_n,
                        "a_preferred": pooled_wins, "rate": pooled_wins / pooled_n, "ci95_low": low,
                        "ci95_high": high, "p_value": binomial_p_value(pooled_wins, pooled_n)})
    return results
