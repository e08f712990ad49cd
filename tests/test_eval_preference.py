"""Blind preference sheets and scoring."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import photo_like
from gcodec.errors import GczInputError
from gcodec.eval import preference


def _folders(tmp_path, n=6):
    dirs = {k: tmp_path / k for k in ("orig", "a", "b")}
    for d in dirs.values():
        d.mkdir()
    for i in range(n):
        img = photo_like(200, 260, seed=i)
        Image.fromarray(img).save(dirs["orig"] / f"img{i}.png")
        Image.fromarray(np.clip(img.astype(int) + 3, 0, 255).astype(np.uint8)).save(dirs["a"] / f"img{i}.png")
        Image.fromarray(np.clip(img.astype(int) - 40, 0, 255).astype(np.uint8)).save(dirs["b"] / f"img{i}.png")
    return dirs


def test_sheets_hide_the_methods_and_the_key_maps_back(tmp_path):
    d = _folders(tmp_path)
    key = preference.make_sheets(d["orig"], d["a"], d["b"], tmp_path / "out", ("new", "old"), crop=128, seed=3)
    sheets = sorted((tmp_path / "out" / "sheets").glob("*.png"))
    assert len(sheets) == 6 and (tmp_path / "out" / "key.json").is_file()
    assert not list((tmp_path / "out" / "sheets").glob("*.json"))  # the key is not among the sheets
    sides = [e["left"] for e in key["sheets"]]
    assert "new" in sides and "old" in sides  # randomised
    sheet = np.asarray(Image.open(sheets[0]))
    assert sheet.shape == (2 * (128 + preference.LABEL_H) + preference.GAP, 2 * 128 + preference.GAP, 3)
    # a rater who always picks the reconstruction closer to the original prefers "new" every time
    answers = []
    for e, path in zip(key["sheets"], sheets):
        s = np.asarray(Image.open(path)).astype(int)
        top = s[preference.LABEL_H:preference.LABEL_H + 128, 72:200]
        y = 128 + 2 * preference.LABEL_H + preference.GAP
        left, right = s[y:y + 128, :128], s[y:y + 128, 128 + preference.GAP:]
        answers.append(f"{path.stem} {'left' if abs(left - top).mean() < abs(right - top).mean() else 'right'}")
    result = preference.score(key, preference.parse_answers("\n".join(answers)))
    assert result.answered == 6 and result.a_preferred == 6 and result.rate == 1.0
    assert result.ci95_low > 0.5 and result.p_value == pytest.approx(2 / 64)


def test_wilson_and_binomial_known_values():
    low, high = preference.wilson_interval(5, 26)
    assert low == pytest.approx(0.0850, abs=1e-3) and high == pytest.approx(0.3790, abs=1e-3)
    assert preference.binomial_p_value(13, 26) == 1.0
    assert preference.binomial_p_value(0, 10) == pytest.approx(2 / 1024)


def test_parse_answers_and_errors(tmp_path):
    assert preference.parse_answers("000 left\n001.png: R\nnoise\n002, l") == {"000": "left", "001": "right",
                                                                            "002": "left"}
    key = {"a": "x", "b": "y", "sheets": [{"sheet": "000.png", "left": "x", "right": "y"}]}
    with pytest.raises(GczInputError):
        preference.score(key, {"999": "left"})
    (tmp_path / "k.json").write_text(json.dumps(key))
    (tmp_path / "r1.txt").write_text("000 left")
    (tmp_path / "r2.txt").write_text("000 right")
    rows = preference.score_files(tmp_path / "k.json", [tmp_path / "r1.txt", tmp_path / "r2.txt"])
    assert [r["a_preferred"] for r in rows] == [1, 0, 1] and rows[-1]["answers"] == "pooled"
