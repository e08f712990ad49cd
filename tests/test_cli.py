"""The gcz command line: outputs, pipelines, JSON, and one-line errors for bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gcodec.cli import main

from conftest import photo_like


def gcz(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (as a user would)."""
    return subprocess.run([sys.executable, "-m", "gcodec.cli", *args], input=stdin, capture_output=True,
                          cwd=cwd, env=os.environ.copy(), timeout=300)


def assert_clean_error(result) -> None:
    """Exactly one line on stderr starting with 'gcz: error:', non-zero exit, no traceback."""
    stderr = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    assert result.returncode != 0, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gcz: error: "), stderr
    assert "Traceback" not in stderr


def test_compress_decompress_files(tiny_weights, tmp_path):
    jpg = tmp_path / "shot.jpg"
    Image.fromarray(photo_like(80, 96)).save(jpg, quality=95)
    r = gcz("compress", str(jpg), "--channels", "4")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "shot.gcz"
    assert out.is_file()
    r = gcz("decompress", str(out))
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "shot.png").size == (96, 80)
    # decoding again would overwrite shot.png: refused without --force
    assert_clean_error(gcz("decompress", str(out)))


def test_pipeline_equals_file_route(tiny_weights, photo_file, tmp_path):
    file_route = tmp_path / "a.gcz"
    assert gcz("compress", str(photo_file), "-o", str(file_route)).returncode == 0
    piped = gcz("compress", "-", "-o", "-", stdin=photo_file.read_bytes())
    assert piped.returncode == 0 and piped.stdout == file_route.read_bytes()
    decoded = gcz("decompress", "-", "-o", "-", stdin=piped.stdout)
    assert gcz("decompress", str(file_route), "-o", str(tmp_path / "a.png")).returncode == 0
    assert decoded.returncode == 0 and decoded.stdout == (tmp_path / "a.png").read_bytes()


def test_stdin_defaults_to_stdout(tiny_weights, photo_file):
    r = gcz("compress", "-", stdin=photo_file.read_bytes())
    assert r.returncode == 0 and r.stdout[:4] == b"\x89GCZ"


def test_many_inputs_json_and_directory(tiny_weights, tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(photo_like(40 + i, 50)).save(p)
        paths.append(str(p))
    outdir = tmp_path / "out"
    outdir.mkdir()
    result = CliRunner().invoke(main, ["compress", *paths, "-o", str(outdir), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [Path(r["output"]).name for r in records] == ["img0.gcz", "img1.gcz", "img2.gcz"]
    assert all(r["bpp"] == r["bytes"] * 8 / (r["width"] * r["height"]) for r in records)
    assert all(0 <= r["colour_bytes"] < r["bytes"] for r in records)
    result = CliRunner().invoke(main, ["decompress", *(r["output"] for r in records), "-o", str(outdir),
                                       "--format", "webp"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in outdir.glob("*.webp")) == ["img0.webp", "img1.webp", "img2.webp"]


def test_info_and_models(tiny_weights, photo_file, tmp_path):
    out = tmp_path / "x.gcz"
    assert gcz("compress", str(photo_file), "-o", str(out), "-c", "8").returncode == 0
    result = CliRunner().invoke(main, ["info", str(out), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["width"] == 96 and info["channels"] == 8 and info["model_installed"]
    # the tiny model's colours are far off, so the encoder stores a COLOUR correction
    assert [s["name"] for s in info["sections"]] == ["IMAGE", "MODEL", "LATENT", "TABLES", "PAYLOAD", "COLOUR"]
    assert info["colour"]["cell"] in (32, 64, 128, 256, 512) and info["colour"]["step"] in (4, 8)
    result = CliRunner().invoke(main, ["models", "--json"])
    names = {m["name"] for m in json.loads(result.output)}
    assert {"gcz-c2", "gcz-c4", "gcz-c8"} <= names
    assert CliRunner().invoke(main, ["info", str(out)]).exit_code == 0
    assert CliRunner().invoke(main, ["models"]).exit_code == 0


def test_no_overwrite_without_force(tiny_weights, photo_file):
    target = photo_file.with_suffix(".gcz")
    target.write_bytes(b"precious")
    r = gcz("compress", str(photo_file))
    assert_clean_error(r)
    assert target.read_bytes() == b"precious"
    assert gcz("compress", str(photo_file), "--force").returncode == 0
    assert target.read_bytes()[:4] == b"\x89GCZ"


@pytest.fixture
def good_gcz(tiny_weights, photo_file, tmp_path) -> bytes:
    out = tmp_path / "good.gcz"
    assert gcz("compress", str(photo_file), "-o", str(out)).returncode == 0
    return out.read_bytes()


def corrupt_cases(good: bytes) -> dict[str, bytes]:
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10
    return {"truncated": good[: len(good) - 7], "flipped": bytes(flipped), "magic": b"XXXX" + good[4:],
            "newer": good[:4] + b"\x07" + good[5:], "empty": b"", "garbage": os.urandom(300)}


def test_bad_gcz_files_give_one_line_errors(good_gcz, tmp_path):
    for name, content in corrupt_cases(good_gcz).items():
        path = tmp_path / f"{name}.gcz"
        path.write_bytes(content)
        r = gcz("decompress", str(path))
        assert_clean_error(r)
        assert not (tmp_path / f"{name}.png").exists(), name
        assert not list(tmp_path.glob("*.part"))
        assert_clean_error(gcz("info", str(path)))


def test_bad_inputs_give_one_line_errors(tiny_weights, tmp_path, photo_file):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    cases = [
        ("compress", str(tmp_path / "missing.jpg")),
        ("compress", str(text)),
        ("compress", str(empty)),
        ("compress", str(photo_file), "--channels", "3"),
        ("compress", str(photo_file), "--model", "no-such-model"),
        ("decompress", str(tmp_path / "missing.gcz")),
        ("compress", str(photo_file), "-o", str(tmp_path / "nodir" / "x.gcz")),
        ("decompress", str(photo_file), "--format", "xyz"),
    ]
    for args in cases:
        assert_clean_error(gcz(*args))
    assert not list(tmp_path.rglob("*.gcz"))


def test_checksum_failure_is_clean(tiny_weights, photo_file, tmp_path, monkeypatch):
    import shutil
    broken = tmp_path / "broken_weights"
    shutil.copytree(tiny_weights, broken)
    weight = broken / "gcz-c4.pt"
    data = bytearray(weight.read_bytes())
    data[-5] ^= 1
    weight.write_bytes(bytes(data))
    monkeypatch.setenv("GCZ_WEIGHTS", str(broken))
    assert_clean_error(gcz("compress", str(photo_file), "-o", str(tmp_path / "y.gcz")))
    assert not (tmp_path / "y.gcz").exists()


def test_unreadable_file(tiny_weights, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    path = tmp_path / "locked.png"
    Image.fromarray(photo_like(16, 16)).save(path)
    path.chmod(0)
    assert_clean_error(gcz("compress", str(path)))


def test_batch_continues_after_a_bad_file(tiny_weights, tmp_path, photo_file):
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    outdir = tmp_path / "o"
    outdir.mkdir()
    r = gcz("compress", str(bad), str(photo_file), "-o", str(outdir))
    assert r.returncode == 1 and "Traceback" not in r.stderr.decode()
    assert (outdir / "photo.gcz").is_file() and not (outdir / "bad.gcz").exists()


def test_colour_flags(tiny_weights, photo_file, tmp_path):
    fixed, plain = tmp_path / "fixed.gcz", tmp_path / "plain.gcz"
    assert gcz("compress", str(photo_file), "-o", str(fixed)).returncode == 0
    assert gcz("compress", str(photo_file), "--no-colour", "-o", str(plain)).returncode == 0
    names = lambda f: [s["name"] for s in json.loads(gcz("info", str(f), "--json").stdout)["sections"]]  # noqa: E731
    assert "COLOUR" in names(fixed) and "COLOUR" not in names(plain)
    outs = {k: tmp_path / f"{k}.png" for k in ("fixed", "raw", "plain")}
    assert gcz("decompress", str(fixed), "-o", str(outs["fixed"])).returncode == 0
    assert gcz("decompress", str(fixed), "--no-colour", "-o", str(outs["raw"])).returncode == 0
    assert gcz("decompress", str(plain), "-o", str(outs["plain"])).returncode == 0
    pixels = {k: np.asarray(Image.open(p)) for k, p in outs.items()}
    assert np.array_equal(pixels["raw"], pixels["plain"]) and not np.array_equal(pixels["fixed"], pixels["raw"])


def test_context_flags(tiny_weights, tmp_path):
    """The default file is context coded where that is smaller; --no-context writes the static code, whose
    symbols and decode are the same."""
    photo_file = tmp_path / "larger.png"  # 480 symbols per channel: enough for the contexts to pay
    Image.fromarray(photo_like(320, 384, seed=2)).save(photo_file)
    coded, plain = tmp_path / "coded.gcz", tmp_path / "plain.gcz"
    assert gcz("compress", str(photo_file), "--no-colour", "-o", str(coded)).returncode == 0
    assert gcz("compress", str(photo_file), "--no-colour", "--no-context", "-o", str(plain)).returncode == 0
    infos = {k: json.loads(gcz("info", str(f), "--json").stdout) for k, f in (("coded", coded), ("plain", plain))}
    assert "CONTEXT" in [s["name"] for s in infos["coded"]["sections"]]
    assert infos["coded"]["payload_code"].startswith("context (prior ")
    assert "CONTEXT" not in [s["name"] for s in infos["plain"]["sections"]]
    assert infos["plain"]["payload_code"] == "static" and infos["coded"]["bytes"] < infos["plain"]["bytes"]
    outs = {k: tmp_path / f"{k}.png" for k in ("coded", "plain")}
    for k, f in (("coded", coded), ("plain", plain)):
        assert gcz("decompress", str(f), "-o", str(outs[k])).returncode == 0
    assert np.array_equal(np.asarray(Image.open(outs["coded"])), np.asarray(Image.open(outs["plain"])))


def test_realism_flags(tiny_weights, photo_file, tmp_path):
    out = tmp_path / "r.gcz"
    r = gcz("compress", str(photo_file), "-c", "4", "--realism", "0.25", "-o", str(out))
    assert r.returncode == 0, r.stderr
    info = json.loads(gcz("info", str(out), "--json").stdout)
    assert info["realism"] == 0.25 and "REALISM" in [s["name"] for s in info["sections"]]
    stored, low, full = (tmp_path / f"{n}.png" for n in ("stored", "low", "full"))
    assert gcz("decompress", str(out), "-o", str(stored)).returncode == 0
    assert gcz("decompress", str(out), "--realism", "0.25", "-o", str(low)).returncode == 0
    assert gcz("decompress", str(out), "--realism", "1", "-o", str(full)).returncode == 0
    assert stored.read_bytes() == low.read_bytes() != full.read_bytes()
    assert_clean_error(gcz("compress", str(photo_file), "-c", "8", "--realism", "0.5", "-o", str(tmp_path / "x.gcz")))
    assert not (tmp_path / "x.gcz").exists()
    assert_clean_error(gcz("decompress", str(out), "--realism", "2", "-o", str(tmp_path / "y.png")))
    assert not (tmp_path / "y.png").exists()


def test_seeds_of_a_stochastic_model(tiny_weights, photo_file, tmp_path):
    from conftest import STOCHASTIC_MODEL

    out = tmp_path / "s.gcz"
    assert gcz("compress", str(photo_file), "-m", STOCHASTIC_MODEL, "-o", str(out)).returncode == 0
    pngs = {}
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        pngs[name] = tmp_path / f"{name}.png"
        r = gcz("decompress", str(out), "--seed", seed, "-o", str(pngs[name]))
        assert r.returncode == 0, r.stderr
    assert pngs["a"].read_bytes() == pngs["b"].read_bytes() != pngs["c"].read_bytes()
    assert_clean_error(gcz("decompress", str(out), "--seed", "-3", "-o", str(tmp_path / "d.png")))


def test_sample_command(tiny_weights, tmp_path):
    folder = tmp_path / "samples"
    r = gcz("sample", "-n", "2", "-c", "4", "--size", "80x48", "-o", str(folder))
    assert r.returncode == 0, r.stderr
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == ["sample-0000.png", "sample-0001.png"]
    assert Image.open(files[0]).size == (80, 48)
    assert_clean_error(gcz("sample", "-n", "2", "-c", "4", "--size", "80x48", "-o", str(folder)))  # no --force
    r = gcz("sample", "-n", "1", "-c", "4", "--size", "80x48", "--uniform", "-o", str(folder), "--force")
    assert r.returncode == 0 and files[0].read_bytes() != Image.open(files[1]).tobytes()
    for bad in (["-c", "8"], ["--size", "nope"], ["-n", "0"], ["--size", "60000x60000"]):
        assert_clean_error(gcz("sample", "-c", "4", *bad, "-o", str(tmp_path / "other")))
    assert not (tmp_path / "other").exists()


def test_models_json_states_capabilities(tiny_weights):
    from conftest import HEADED_MODEL, STOCHASTIC_MODEL

    rows = {r["name"]: r for r in json.loads(gcz("models", "--json").stdout)}
    assert rows[HEADED_MODEL]["realism"] and rows[HEADED_MODEL]["sampler"] and not rows[HEADED_MODEL]["stochastic"]
    assert rows[STOCHASTIC_MODEL]["stochastic"] and not rows[STOCHASTIC_MODEL]["realism"]
    assert rows["gcz-c8"]["default"] and rows["gcz-sc-c8"]["default"] and not rows[STOCHASTIC_MODEL]["default"]
    table = gcz("models").stdout.decode()  # at 80 columns (not a terminal) every id is whole
    assert all(f"{name}@" in table for name in rows)
    lines = {line.split("@")[0].split()[-1]: line for line in table.splitlines() if "@" in line}
    assert "*" in lines["gcz-c8"] and "*" not in lines[STOCHASTIC_MODEL]  # the default for its C is marked
    assert not any(rows["gcz-c8"][k] for k in ("realism", "stochastic", "sampler", "selective"))
    assert rows["gcz-sc-c8"]["selective"] and rows["gcz-sc-c8"]["label_classes"] == 12


def test_seed_on_a_deterministic_model_warns(tiny_weights, photo_file, tmp_path):
    out = tmp_path / "d.gcz"
    assert gcz("compress", str(photo_file), "-c", "8", "-o", str(out)).returncode == 0
    r = gcz("decompress", str(out), "--seed", "3", "-o", str(tmp_path / "d.png"))
    assert r.returncode == 0 and "no noise input" in r.stderr.decode()


def test_refine_flag(tiny_weights, photo_file, tmp_path):
    out = tmp_path / "refined.gcz"
    r = gcz("compress", str(photo_file), "-c", "4", "--refine", "3", "--json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["refine_steps"] == 3
    plain = json.loads(gcz("compress", str(photo_file), "-c", "4", "--json", "-o", str(tmp_path / "p.gcz")).stdout)
    assert plain["refine_steps"] == 0  # the tests' GCZ_REFINE_STEPS=0 (conftest)
    assert gcz("decompress", str(out), "-o", str(tmp_path / "refined.png")).returncode == 0
    bad = gcz("compress", str(photo_file), "--refine", "-1", "-o", str(tmp_path / "bad.gcz"))
    assert bad.returncode == 2 and "--refine" in bad.stderr.decode() and "Traceback" not in bad.stderr.decode()
    assert_clean_error(gcz("compress", str(photo_file), "--refine", "2", "--preserve-box", "0,0,8,8",
                           "-o", str(tmp_path / "sc.gcz")))
    assert not (tmp_path / "bad.gcz").exists() and not (tmp_path / "sc.gcz").exists()
