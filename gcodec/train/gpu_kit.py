"""What a GPU burst carries, in one ignored folder (``gcz gpu-kit``), and whether it fits.

A lent GPU machine starts bare, reaches nothing outside it, and receives only
the working tree plus the carried paths, 64 MiB in all.  Its image has torch
with CUDA, click, rich, pillow, numpy and onnx, but not range-coder nor the
EfficientNet-Lite0 packages the perceptual loss (and the projected D) need.
``build_kit`` writes, into ``.gpu-kit/``:

``wheels/``
    cp312 manylinux wheels of what the image lacks (:data:`WHEELS`), for
    ``pip install --no-index --target``;
``lite0-features.pt``
    the feature network's weights (2.9 MB, :func:`gcodec.train.perceptual.save_features`),
    read through ``$GCZ_PERCEPTUAL_WEIGHTS`` instead of the 18 MB weights wheel;
``photos/``
    the training split as JPEG with a longer side of 640 px (514 photos:
    27 MB; the 256 px training crops still see the photos' content at
    the scale gcz is used at);
``resume/``
    if the run folder holds a compact checkpoint: a copy without the optimizer
    state and without the moving average of the weights (about half the size;
    Adam restarts its moments, and the average restarts from the carried
    weights: with ``--ema 0.999`` it forgets its start within a few thousand of
    a burst's ~13k steps), so that a burst in a later session continues the run;
``kit.json``
    what is in it, with sizes, and the estimated transfer.

``tools/gpu_burst.sh`` is the command that runs on the machine.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from ..errors import GczInputError

#: The device's limit on what travels (working tree plus carried paths).
TRANSFER_LIMIT = 64 * 2**20
#: Packages the GPU image lacks, pinned as in pyproject.toml.
WHEELS = ("range-coder==1.1", "efficientnet-lite-pytorch==0.1.0")
#: The GPU image's Python and platforms.
WHEEL_PLATFORM_ARGS = ("--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
                       "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
                       "--platform", "manylinux1_x86_64")
PHOTO_SIDE = 640
#: JPEG quality of the packed photos.
PHOTO_QUALITY = 90


def download_wheels(dest: Path) -> list[Path]:
    """``pip download`` the :data:`WHEELS` for the GPU image's Python into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           *WHEEL_PLATFORM_ARGS, "-d", str(dest), *WHEELS]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise GczInputError(f"pip download of {', '.join(WHEELS)} failed: {tail[0]}")
    return sorted(dest.glob("*.whl"))


def slim_resume(compact_dir: Path, dest: Path) -> dict[str, Any]:
    """Copy a compact checkpoint without its optimizer state and moving average of the weights (what a
    later burst resumes from; the tree, the kit and this copy must fit the device's 64 MiB)."""
    from .compact import load_compact, save_compact

    state = load_compact(compact_dir)
    state.pop("model_ema", None)
    state.pop("ema_updates", None)
    save_compact(state, dest, optimizer=False)
    return {"iteration": state["iteration"], "elapsed_s": state["elapsed"]}


def tree_bytes(repo: Path) -> int:
    """Bytes of the working tree the device sends: tracked files present on disk plus untracked, unignored ones."""
    done = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          capture_output=True)
    if done.returncode != 0:
        raise GczInputError(f"{repo}: not a git checkout")
    total = 0
    for name in set(done.stdout.decode().split("\0")) - {""}:
        path = repo / name
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def folder_bytes(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build_kit(kit: Path, pool: Path, run_dir: Path | None = None, repo: Path | None = None, wheels: bool = True,
              status: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Write the GPU kit into ``kit`` (replacing an earlier kit, never another folder) and return its
    summary (also ``kit/kit.json``); with ``repo`` (a git checkout), whether tree and kit fit the device."""
    from ..data.pack import pack_split
    from .perceptual import save_features

    if kit.exists():
        if not (kit / "kit.json").is_file() and any(kit.iterdir()):
            raise GczInputError(f"{kit} exists and is not a GPU kit (no kit.json): choose another folder")
        shutil.rmtree(kit)
    kit.mkdir(parents=True)
    summary: dict[str, Any] = {}
    if wheels:
        status("downloading wheels")
        summary["wheels"] = [w.name for w in download_wheels(kit / "wheels")]
    status("writing the feature network")
    save_features(kit / "lite0-features.pt")
    status("packing photos")
    summary["photos"] = pack_split(pool, kit / "photos", "train", max_side=PHOTO_SIDE, quality=PHOTO_QUALITY)
    compact_dir = run_dir / "compact" if run_dir is not None else None
    if compact_dir is not None and (compact_dir / "compact.json").is_file():
        status("slimming the run's compact checkpoint")
        summary["resume"] = {"from": str(compact_dir), **slim_resume(compact_dir, kit / "resume")}
    summary["kit_bytes"] = folder_bytes(kit)
    if repo is not None and (repo / ".git").exists():
        summary["tree_bytes"] = tree_bytes(repo)
        summary["transfer_bytes"] = summary["tree_bytes"] + summary["kit_bytes"]
        summary["fits"] = summary["transfer_bytes"] <= TRANSFER_LIMIT
    (kit / "kit.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
