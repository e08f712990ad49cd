"""The eval pipeline end to end on tiny models, the summary's schema, resuming, and the report files."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import photo_like
from gcodec.cli import main
from gcodec.eval import report, runner
from gcodec.eval.metrics import FEATURE_NETWORK

COMPRESSAI_KEYS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time")


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo_like(80, 96, seed=1)).save(folder / "a.png")
    Image.fromarray(photo_like(96, 112, seed=2)).save(folder / "b.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _config(photos, out, **kw):
    args = dict(inputs=runner.collect_images([photos]), out=out, channels=(2, 4), codecs=("jpeg",),
                matches=("same", "double"), patch=32, crop=48)
    args.update(kw)
    return runner.EvalConfig(**args)


def test_collect_images(photos, tmp_path):
    assert [p.name for p in runner.collect_images([photos])] == ["a.png", "b.png"]
    from gcodec.errors import GczInputError
    with pytest.raises(GczInputError):
        runner.collect_images([tmp_path / "missing"])
    with pytest.raises(GczInputError):
        runner.collect_images([photos], split="val")  # no index.json
    (photos / "index.json").write_text(json.dumps([{"file": "a.png", "split": "train"},
                                                   {"file": "b.png", "split": "val"}]))
    assert [p.name for p in runner.collect_images([photos], split="val")] == ["b.png"]


def test_max_side_downscales(photos):
    assert runner.load_pixels(photos / "b.png", 56).shape == (48, 56, 3)  # 112x96 -> 56x48
    assert runner.load_pixels(photos / "b.png", None).shape == (96, 112, 3)


def test_eval_end_to_end_schema_and_resume(tiny_weights, photos, tmp_path):
    out = tmp_path / "run"
    cfg = _config(photos, out)
    seen = []
    first = runner.run_eval(cfg, lambda desc, n: seen.append(n))
    assert sum(seen) == runner.total_units(cfg) == 2 * 2 * (1 + 2)
    assert first.computed == 12 and first.skipped == 0
    rows = runner.read_rows(out / runner.RESULTS_NAME)
    assert len(rows) == 12 and len({r["key"] for r in rows}) == 12
    for r in rows:
        assert r["bpp"] == pytest.approx(r["bytes"] * 8 / (r["width"] * r["height"]))
        assert r["psnr"] > 0 and 0 < r["ms_ssim"] <= 1
        assert len(r["grid"]) == 4 and all(v > 0 for v in r["grid"])
        assert (out / r["crop"]).is_file() and (out / r["features"]).is_file()
        if r["codec"] == "jpeg":
            gcz = next(g for g in rows if g["key"] == runner.row_key(r["image"], r["reference"], r["reference"], "-"))
            factor = runner.MATCH_FACTORS[r["match"]]
            assert r["target_bytes"] == round(gcz["bytes"] * factor)
            assert r["reached"] == (abs(r["bytes"] - r["target_bytes"]) <= 0.05 * r["target_bytes"])
            assert r["status"] in ("ok", "above", "below", "gap")

    # resume: nothing is recomputed; a torn last line is ignored and recomputed
    with open(out / runner.RESULTS_NAME, "a") as fh:
        fh.write('{"key": "tor')
    again = runner.run_eval(cfg)
    assert again.computed == 0 and again.skipped == 12

    # a row of other weights under the same model name, and a peer row matched to other bytes, are
    # recomputed (appended; the later row under a key wins); everything else is kept
    rows = runner.read_rows(out / runner.RESULTS_NAME)
    gcz_row = next(r for r in rows if r["codec"] == r["reference"])
    peer_row = next(r for r in rows if r["codec"] == "jpeg" and r["image"] != gcz_row["image"])
    feature_time = (out / gcz_row["features"]).stat().st_mtime_ns
    with open(out / runner.RESULTS_NAME, "a") as fh:
        fh.write("\n" + json.dumps({**gcz_row, "setting": gcz_row["reference"] + "@00000000", "psnr": -1.0}) + "\n")
        fh.write(json.dumps({**peer_row, "target_bytes": peer_row["target_bytes"] + 1000}) + "\n")
    third = runner.run_eval(cfg)
    assert third.computed == 2 and third.skipped == 10
    fresh = {r["key"]: r for r in runner.read_rows(out / runner.RESULTS_NAME)}
    assert len(fresh) == 12
    assert fresh[gcz_row["key"]]["setting"] == gcz_row["setting"] and fresh[gcz_row["key"]]["psnr"] > 0
    assert fresh[peer_row["key"]]["target_bytes"] == peer_row["target_bytes"]
    assert (out / fresh[gcz_row["key"]]["features"]).stat().st_mtime_ns > feature_time  # features recomputed too

    rep = report.build_report(out, command="gcz eval photos --out run")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["feature_network"] == FEATURE_NETWORK
    assert [c["name"] for c in summary["codecs"]] == ["gcz", "jpeg"]
    for entry in summary["codecs"]:
        assert set(entry) == {"name", "description", "results"}
        lengths = {len(v) for v in entry["results"].values()}
        assert len(lengths) == 1
        for key in COMPRESSAI_KEYS + ("ssimulacra2", "kid", "fid", "n_images", "n_unreached"):
            assert key in entry["results"]
        per_codec = json.loads((out / "summary" / f"{entry['name']}.json").read_text())
        assert per_codec == entry
    gcz = summary["codecs"][0]["results"]
    assert gcz["point"] == ["gcz-c2", "gcz-c4"] or gcz["point"] == ["gcz-c4", "gcz-c2"]
    assert all(v is not None for k in COMPRESSAI_KEYS for v in gcz[k])
    for name in ("rate_quality", "plot_psnr-rgb", "plot_kid", "crops_grid", "index", "readme_section"):
        assert rep.files[name].is_file() and rep.files[name].stat().st_size > 0
    html = (out / "index.html").read_text()
    assert "rate_quality.png" in html and "crops_grid.png" in html and FEATURE_NETWORK in html
    readme = (out / "README_section.md").read_text()
    assert readme.startswith("## How it compares") and FEATURE_NETWORK in readme and "gcz eval photos" in readme


def test_summary_leaves_out_missed_targets():
    def row(image, codec, match, bpp, reached, psnr):
        return {"key": f"{image}|{codec}|gcz-c4|{match}", "image": image, "codec": codec, "label": codec,
                "reference": "gcz-c4", "match": match, "bpp": bpp, "bytes": 1, "reached": reached,
                "status": "ok" if reached else "above", "psnr": psnr, "ms_ssim": 0.9, "ssimulacra2": None,
                "encoding_time": 0.1, "decoding_time": 0.1, "features": None}
    rows = [row("a", "gcz-c4", "-", 0.02, True, 20.0), row("b", "gcz-c4", "-", 0.04, True, 22.0),
            row("a", "webp", "same", 0.08, False, 25.0), row("b", "webp", "same", 0.09, False, 26.0),
            row("a", "heic", "same", 0.02, True, 24.0), row("b", "heic", "same", 0.06, False, 27.0)]
    from pathlib import Path
    summary = report.summarize(Path("/nonexistent"), rows, {"feature_network": None})
    by = {c["name"]: c["results"] for c in summary["codecs"]}
    assert by["gcz"]["bpp"] == [pytest.approx(0.03)] and by["gcz"]["psnr-rgb"] == [pytest.approx(21.0)]
    assert by["heic"]["n_images"] == [1] and by["heic"]["n_unreached"] == [1]
    assert by["heic"]["psnr-rgb"] == [pytest.approx(24.0)]  # the missed image is not averaged in
    assert by["webp"]["bpp"] == [None] and by["webp"]["closest_bpp"] == [pytest.approx(0.085)]
    header, table = report.table_rows(summary)
    assert any("not reached" in cell for r in table for cell in r)
    assert "bpp" in header
    # head to head: heic reached only on image a, so gcz is compared on image a alone; webp never reached
    assert [(e["peer"], e["n_images"]) for e in summary["paired"]] == [("heic", 1)]
    pair = summary["paired"][0]
    assert pair["gcz"]["psnr-rgb"] == pytest.approx(20.0) and pair["gcz"]["bpp"] == pytest.approx(0.02)
    assert pair["peer_metrics"]["psnr-rgb"] == pytest.approx(24.0)
    assert "| gcz-c4 | heic | same | 1 | 0.0200 / 0.0200 | 20.00 / 24.00 |" in report.paired_markdown(summary)


def test_missing_tool_is_skipped_with_a_note(tiny_weights, photos, tmp_path, monkeypatch):
    import shutil as sh
    real = sh.which
    monkeypatch.setattr("gcodec.eval.peers.shutil.which", lambda t: None if t.startswith("heif") else real(t))
    cfg = _config(photos, tmp_path / "run", channels=(4,), codecs=("heic",), matches=("same",), kid=False,
                  ssimulacra2=False, inputs=runner.collect_images([photos / "a.png"]))
    outcome = runner.run_eval(cfg)
    assert any("heic skipped" in n and "libheif-examples" in n for n in outcome.notes)
    assert [r["codec"] for r in outcome.rows] == ["gcz-c4"]


def test_cli_eval(tiny_weights, photos, tmp_path):
    out = tmp_path / "cli"
    res = CliRunner().invoke(main, ["eval", str(photos / "a.png"), "--channels", "2", "--codecs", "jpeg",
                                    "--match", "same", "--no-kid", "--no-ssimulacra2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "index.html").is_file() and (out / "summary.json").is_file()
    assert "gcz" in res.output
    bad = CliRunner().invoke(main, ["eval", str(photos), "--codecs", "bpg", "--out", str(out)])
    assert bad.exit_code == 1 and "unknown codec 'bpg'" in bad.output


def test_bench_entropy_and_markdown():
    import numpy as np

    from gcodec.eval import bench
    from gcodec.errors import GczInputError

    rng = np.random.default_rng(0)
    symbols = rng.choice(5, size=(4, 16, 16), p=[0.05, 0.2, 0.5, 0.2, 0.05]).astype(np.int64)
    e = bench.bench_entropy(symbols, 5, "test", repeats=1)
    assert e["symbols"] == 1024 and e["encode_symbols_per_s"] > 0
    assert abs(e["payload_bytes"] - e["cross_entropy_bytes"]) < 8  # range coder within a few bytes of ideal
    assert e["cross_entropy_bytes"] >= e["empirical_entropy_bytes"] - 1e-6
    assert e["context_payload_bytes"] > 0 and e["context_decode_symbols_per_s"] > 0
    res = bench.BenchResults(machine={"processor": "x", "cpu_count": 1, "torch": "t", "torch_threads": 1},
                             model={"id": "gcz-c4@00"}, entropy=[e], notes=["n"])
    assert "Entropy coding" in bench.markdown(res) and f"| {e['context_payload_bytes']} |" in bench.markdown(res)
    assert bench.parse_sizes("768x512, 16x32") == ((768, 512), (16, 32))
    with pytest.raises(GczInputError):
        bench.parse_sizes("768by512")


def test_append_after_a_torn_line_starts_a_new_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"key": "a"}\n{"key": "to')
    runner._append(path, {"key": "b"})
    assert [r["key"] for r in runner.read_rows(path)] == ["a", "b"]


def test_run_bench_end_to_end_on_tiny_models(tiny_weights, tmp_path):
    """Every part of `gcz bench` runs (numbers are not checked: benchmarks, not tests)."""
    from gcodec.eval import bench

    cfg = bench.BenchConfig(out=tmp_path / "b", channels=4, sizes=((64, 48),), backends=("torch-cpu", "onnx-cpu"),
                            peers=(), processes=True, refine_sizes=((64, 48),))
    res = bench.run_bench(cfg)
    assert {r["backend"] for r in res.runs} == {"torch-cpu", "onnx-cpu"}
    assert len(res.entropy) == 3 and res.processes["rows"] and res.processes["batch"]["files"] > 1
    text = (tmp_path / "b" / "results.md").read_text()
    assert "Whole-process" in text and "Entropy coding" in text
    assert [r["size"] for r in res.refine] == ["64x48"] and res.refine[0]["steps"] == 30 and "refinement" in text


def test_eval_without_colour_is_a_separate_setting(tiny_weights, photos, tmp_path):
    """--no-colour rows do not pass for colour rows on resume, and their files carry no COLOUR section."""
    out = tmp_path / "run"
    with_colour = runner.run_eval(_config(photos, out, channels=(4,), codecs=(), matches=()))
    rows = {r["image"]: r for r in runner.read_rows(out / runner.RESULTS_NAME)}
    plain = runner.run_eval(_config(photos, out, channels=(4,), codecs=(), matches=(), colour=False))
    assert with_colour.computed == plain.computed == 2 and plain.skipped == 0
    fresh = {r["image"]: r for r in runner.read_rows(out / runner.RESULTS_NAME)}
    for image, row in fresh.items():
        assert row["setting"].endswith(" no-colour") and not rows[image]["setting"].endswith(" no-colour")
        assert row["bytes"] < rows[image]["bytes"]  # the tiny model's colours are far off: a grid was stored


def test_eval_with_refinement_is_a_separate_setting(tiny_weights, photos, tmp_path):
    """--refine N rows are their own setting: computed anew, not taken for the plain rows on resume."""
    out = tmp_path / "run"
    plain = runner.run_eval(_config(photos, out, channels=(4,), codecs=(), matches=(), colour=False))
    rows = {r["image"]: r for r in runner.read_rows(out / runner.RESULTS_NAME)}
    refined = runner.run_eval(_config(photos, out, channels=(4,), codecs=(), matches=(), colour=False, refine=2))
    assert plain.computed == refined.computed == 2 and refined.skipped == 0
    for image, row in {r["image"]: r for r in runner.read_rows(out / runner.RESULTS_NAME)}.items():
        assert row["setting"].endswith(" no-colour refine 2") and rows[image]["setting"].endswith(" no-colour")


def test_summary_reports_the_median_grid_ratio_per_period():
    def row(image, grid):
        return {"key": f"{image}|gcz-c4|gcz-c4|-", "image": image, "codec": "gcz-c4", "label": "gcz-c4",
                "reference": "gcz-c4", "match": "-", "bpp": 0.02, "bytes": 1, "reached": True, "status": "ok",
                "psnr": 20.0, "ms_ssim": 0.9, "ssimulacra2": None, "encoding_time": 0.1, "decoding_time": 0.1,
                "features": None, **({"grid": grid} if grid else {})}
    from pathlib import Path
    rows = [row("a", [1.0, 2.0, 3.0, 4.0]), row("b", [5.0, 1.0, 1.0, 1.0]), row("c", [3.0, 1.5, 0.5, 2.0]),
            row("d", None)]  # measured before the grid existed: left out of the median
    summary = report.summarize(Path("/nonexistent"), rows, {"feature_network": None})
    assert summary["codecs"][0]["results"]["grid"] == [[3.0, 1.5, 1.0, 2.0]]
    header, table = report.table_rows(summary)
    assert table[0][header.index("grid at 2, 4, 8, 16 px")] == "3.00, 1.50, 1.00, 2.00"
