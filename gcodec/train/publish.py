"""Checkpoint -> shipped weight file (fp16, encoder + generator) + manifest entry."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import zoo
from ..models.config import ArchConfig
from ..models.gc import GCModel


def publish_checkpoint(checkpoint: Path, name: str, weights_dir: Path, data_desc: str,
                       metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``weights_dir/<name>-<sha8>.pt`` and register it in the manifest.

    Returns the manifest entry written.
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    arch = ArchConfig.from_dict(state["arch"])
    model = GCModel(arch)
    model.load_state_dict(state["model"])
    weights_dir.mkdir(parents=True, exist_ok=True)
    tmp = weights_dir / f"{name}.pt.new"
    sha = zoo.save_weights(model, tmp)
    final = weights_dir / f"{name}-{sha[:8]}.pt"
    for old in weights_dir.glob(f"{name}-*.pt"):
        if old != final:
            old.unlink()
    tmp.replace(final)
    cfg = state.get("config", {})
    info = {"training": {"data": data_desc, "iterations": state["iteration"],
                         "wall_time_hours": round(state["elapsed"] / 3600, 2),
                         "hardware": state.get("hardware"), "batch_size": cfg.get("batch_size"),
                         "crop": cfg.get("crop"), "lr": cfg.get("lr"), "gan": cfg.get("gan"),
                         "stage1_iters": cfg.get("stage1_iters"),
                         "perceptual": "efficientnet-lite0" if not cfg.get("vgg_weights") else "vgg19"},
            "dtype": "float16"}
    if metrics:
        info["metrics"] = metrics
    zoo.register_model(weights_dir, name, final.name, sha, arch, fixed_norm=bool(state.get("fixed_norm")), info=info)
    return {"name": name, "file": final.name, "sha256": sha, **info}
