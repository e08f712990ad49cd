"""The installable wheel: built from the checkout, installed apart from it, it compresses and decompresses
with the shipped weights (packed as the package gcz_weights)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_list_names_every_package_of_the_tree():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    tree = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "gcodec").rglob("__init__.py")}
    assert listed == tree | {"gcz_weights"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = ROOT / "build"
    existed = build.exists()
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(out)], check=True, capture_output=True, cwd=out)
    finally:
        if not existed:  # setuptools builds in the source tree: leave the checkout as it was
            shutil.rmtree(build, ignore_errors=True)
    (found,) = out.glob("gcz-*.whl")
    return found


def test_the_wheel_holds_the_code_and_every_shipped_weight_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = json.loads((ROOT / "weights" / "manifest.json").read_text())
    files = {m["file"] for m in manifest["models"].values()}
    files |= {h["file"] for m in manifest["models"].values() for h in m.get("heads", {}).values()}
    files |= {manifest[k]["file"] for k in ("features", "labeller")}
    assert {f"gcz_weights/{f}" for f in files} | {"gcz_weights/manifest.json", "gcodec/codec.py",
                                                   "gcodec/data/photo_sources.json"} <= names
    assert not any(n.startswith(("tests/", "runs/", "data/", "weights/")) for n in names)


def test_the_installed_wheel_compresses_and_decompresses_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "photo.png").write_bytes((ROOT / "examples" / "mountain.jpg").read_bytes())
    env = {k: v for k, v in os.environ.items() if k not in ("GCZ_WEIGHTS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), GCZ_REFINE_STEPS="0", GCZ_CACHE=str(tmp_path / "cache"))
    script = (
        "import gcodec, gcodec.zoo as z, sys\n"
        f"assert gcodec.__file__.startswith({str(site)!r}), gcodec.__file__\n"
        f"assert str(z.SHIPPED_DIR).startswith({str(site)!r}), z.SHIPPED_DIR\n"
        "from PIL import Image\n"
        "im = Image.open('photo.png').convert('RGB').resize((128, 96))\n"
        "data = gcodec.compress(im, channels=4)\n"
        "out = gcodec.decompress(data)\n"
        "assert out.size == (128, 96)\n"
        "print(len(data))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 0 < int(done.stdout.strip()) < 2000
    cli = subprocess.run([sys.executable, str(site / "bin" / "gcz"), "compress", "photo.png", "-c", "2",
                          "-o", "photo.gcz"], cwd=work, env=env, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    models = subprocess.run([sys.executable, str(site / "bin" / "gcz"), "models"], cwd=work, env=env,
                            capture_output=True, text=True)
    assert models.returncode == 0 and "gcz-c4-v2" in models.stdout
