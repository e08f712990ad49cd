"""Checkpoint -> shipped weight file (int8/fp16, encoder + generator) + manifest entry."""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any


from .. import zoo
from ..errors import GczModelError
from ..models.config import ArchConfig
from ..models.gc import GCModel
from .compact import load_checkpoint


def install_weights(weights_dir: Path, stem: str, write: Callable[[Path], str]) -> tuple[Path, str]:
    """Write a weight file with ``write`` (which returns its sha256) as ``<stem>-<sha8>.pt``, replacing
    earlier files of exactly that stem (``gcz-c4-<8 hex>.pt``, never ``gcz-c4-realism-...``)."""
    tmp = weights_dir / f"{stem}.pt.new"
    sha = write(tmp)
    final = weights_dir / f"{stem}-{sha[:8]}.pt"
    pattern = re.compile(rf"{re.escape(stem)}-[0-9a-f]{{8}}\.pt")
    for old in weights_dir.iterdir():
        if old != final and pattern.fullmatch(old.name):
            old.unlink()
    tmp.replace(final)
    return final, sha


def publish_checkpoint(checkpoint: Path, name: str, weights_dir: Path, data_desc: str,
                       metrics: dict[str, Any] | None = None, replace: bool = False,
                       default: bool = True, notes: str | None = None, weights: str = "auto") -> dict[str, Any]:
    """Write ``weights_dir/<name>-<sha8>.pt`` and register it in the manifest.

    Released weights decode files in the wild: a name already in the manifest
    is only replaced with ``replace=True`` (publish retrained models under a
    new name instead).  ``notes`` (free text, e.g. a warm start or a stage
    that was dropped) is recorded with the training facts.  Returns the
    manifest entry written.  ``weights``: "average" ships the run's moving average of E/G's weights
    (``gcz train --ema``), "current" the last step's, "auto" the average where the run kept one.
    """
    existing = {e.name for e in zoo.read_manifest(weights_dir)}
    if name in existing and not replace:
        raise GczModelError(f"model {name} is already published in {weights_dir}; files written with it "
                            "must stay decodable, so publish under a new name (or pass --replace)")
    state = load_checkpoint(checkpoint)
    arch = ArchConfig.from_dict(state["arch"])
    if arch.selective:
        from ..models.sc import SCModel
        model: Any = SCModel(arch)
    else:
        model = GCModel(arch)
    weights_key = _weights_key(state, weights)
    model.load_state_dict(state[weights_key])
    weights_dir.mkdir(parents=True, exist_ok=True)
    final, sha = install_weights(weights_dir, name, lambda tmp: zoo.save_weights(model, tmp))
    cfg = state.get("config", {})
    info = {"training": {"data": data_desc, "iterations": state["iteration"],
                         "wall_time_hours": round(state["elapsed"] / 3600, 2),
                         "hardware": state.get("hardware"), "batch_size": cfg.get("batch_size"),
                         "crop": cfg.get("crop"), "lr": cfg.get("lr"), "gan": cfg.get("gan"),
                         "stage1_iters": cfg.get("stage1_iters"),
                         **({"discriminator": cfg["disc"]} if cfg.get("disc", "patch") != "patch" else {}),
                         **(_selective_facts(cfg) if arch.selective else {}),
                         "perceptual": (None if not cfg.get("perceptual", True)
                                        else "vgg19" if cfg.get("vgg_weights") else "efficientnet-lite0")},
            "dtype": "int8 weights (per-output-channel fp16 scales), fp16 rest"}
    if cfg.get("batch_size") and cfg.get("crop"):  # training pixels seen (per rank)
        info["training"]["pixels_seen"] = state["iteration"] * cfg["batch_size"] * cfg["crop"] ** 2
    if state.get("model_ema") is not None:
        info["training"]["weights"] = (f"moving average (decay {cfg.get('ema')}, {state.get('ema_updates')} steps)"
                                       if weights_key == "model_ema" else "last step's")
    if notes:
        info["training"]["notes"] = notes
    if metrics:
        info["metrics"] = metrics_for(metrics, name, arch) if "codecs" in metrics else metrics
    zoo.register_model(weights_dir, name, final.name, sha, arch, fixed_norm=bool(state.get("fixed_norm")), info=info,
                       default=default)
    return {"name": name, "file": final.name, "sha256": sha, **info}


def _weights_key(state: dict[str, Any], weights: str) -> str:
    """The key of ``state`` that holds the weights to publish (:func:`publish_checkpoint`'s ``weights``)."""
    if weights not in ("auto", "average", "current"):
        raise GczModelError(f"weights must be auto, average or current, not {weights!r}")
    has_average = state.get("model_ema") is not None
    if weights == "average" and not has_average:
        raise GczModelError("this checkpoint keeps no moving average of the weights (train with --ema)")
    return "model_ema" if has_average and weights != "current" else "model"


def _selective_facts(cfg: dict[str, Any]) -> dict[str, Any]:
    """What an SC run's manifest entry records about its labels and heatmaps."""
    from .selective import MODE_WEIGHTS

    if cfg.get("sc_codebook"):
        book = cfg["sc_codebook"]
    else:
        try:
            book = zoo.labeller_entry().name
        except GczModelError:
            book = None
    return {"mode": "sc", "label_codebook": book,
            "heatmaps": {"random_instance": MODE_WEIGHTS["instance"], "random_box": MODE_WEIGHTS["box"],
                         "all": MODE_WEIGHTS["all"],
                         "instance_fraction": cfg.get("sc_instance_fraction")}}


def metrics_for(summary: dict[str, Any], name: str, arch: ArchConfig) -> dict[str, Any]:
    """The manifest metrics of model ``name`` taken from a ``gcz eval`` summary.json.

    Raises :class:`GczModelError` when the summary holds no measurement of that model.
    """
    for codec in summary.get("codecs", []):
        if codec.get("name") != "gcz":
            continue
        res = codec["results"]
        for i, ref in enumerate(res.get("reference", [])):
            if ref != name:
                continue
            bound = arch.latent_channels * math.log2(arch.levels) / arch.downsampling ** 2
            bpp = res["bpp"][i]
            return {"bpp": bpp, "bpp_bound": round(bound, 5),
                    "below_bound_percent": round(100 * (1 - bpp / bound), 2) if bpp else None,
                    "psnr": res["psnr-rgb"][i], "ms_ssim": res["ms-ssim-rgb"][i],
                    "ssimulacra2": res.get("ssimulacra2", [None] * (i + 1))[i],
                    "kid": res.get("kid", [None] * (i + 1))[i], "fid": res.get("fid", [None] * (i + 1))[i],
                    "kid_fid_features": summary.get("feature_network"),
                    "encoding_time_s": res["encoding_time"][i], "decoding_time_s": res["decoding_time"][i],
                    "n_images": res.get("n_images", [None] * (i + 1))[i],
                    "images": "validation split of the bundled photo pool, longer side 768 px",
                    "command": summary.get("command")}
    raise GczModelError(f"the eval summary holds no measurement of model {name}")


def publish_head(run_dir: Path, weights_dir: Path, data_desc: str, metrics: dict[str, Any] | None = None,
                 notes: str | None = None) -> dict[str, Any]:
    """Ship a run's realism head (``head.pt``), latent sampler (``sampler.pt``) or amortised encoder
    (``encoder.pt``) beside its model.

    Writes ``weights_dir/<model>-<kind>-<sha8>.pt`` (fp16) and records it under the
    model's manifest entry, with the training facts; the model must be published
    in ``weights_dir`` with exactly the weights the head was trained on.
    """
    import platform

    import torch

    from .encoder import ENCODER_CHECKPOINT, load_encoder_checkpoint
    from .realism import HEAD_CHECKPOINT, load_head_checkpoint
    from .sampler import SAMPLER_CHECKPOINT, load_sampler_checkpoint

    if (run_dir / HEAD_CHECKPOINT).is_file():
        kind, (module, state) = "realism", load_head_checkpoint(run_dir / HEAD_CHECKPOINT)
        config = state["head_config"]
    elif (run_dir / SAMPLER_CHECKPOINT).is_file():
        kind, (module, state) = "sampler", load_sampler_checkpoint(run_dir / SAMPLER_CHECKPOINT)
        config = state["sampler_config"]
    elif (run_dir / ENCODER_CHECKPOINT).is_file():
        kind, (module, state) = "encoder", load_encoder_checkpoint(run_dir / ENCODER_CHECKPOINT)
        config = zoo.find_model(state["model"]).arch.to_dict()
    else:
        raise GczModelError(f"{run_dir} holds none of {HEAD_CHECKPOINT}, {SAMPLER_CHECKPOINT}, {ENCODER_CHECKPOINT}")
    model = state["model"]
    entries = {e.name: e for e in zoo.read_manifest(weights_dir)}
    if model not in entries:
        raise GczModelError(f"model {model} is not published in {weights_dir}")
    if entries[model].sha256 != state["model_sha256"]:
        raise GczModelError(f"{run_dir} was trained on other weights of {model} than those in {weights_dir}")
    final, sha = install_weights(weights_dir, f"{model}-{kind}", lambda tmp: zoo.save_head(module, tmp))
    cfg = state["config"]
    training = {"data": data_desc, "iterations": state["iteration"],
                "wall_time_hours": round(state["elapsed"] / 3600, 2), "batch_size": cfg["batch_size"],
                "crop": cfg["crop"], "lr": cfg["lr"],
                "hardware": f"{platform.machine()}, cpu, {cfg.get('threads') or torch.get_num_threads()} threads"}
    if kind == "realism":
        training["pixels_seen"] = state["pixels_seen"]
        training["objective"] = "MSE(x, G(w) + R) with E and G frozen (EGIC ORP)"
    elif kind == "encoder":
        training["pixels_seen"] = state["pixels_seen"]
        training["photos"] = state["photos"]
        training["objective"] = ("the encode-time refinement's objective (10 MSE + 0.3 perceptual + 6 low-pass "
                                 "+ 4 estimated context-coded bits per pixel) of E's symbols, G and the "
                                 "quantizer frozen")
    else:
        training["real_windows_seen"] = state["iteration"] * cfg["batch_size"] * cfg["critic_steps"]
        training["objective"] = (f"WGAN-GP (gp {cfg['gp_weight']}, {cfg['critic_steps']} critic steps) on "
                                 f"{cfg['crop']}x{cfg['crop']} windows of the model's codes of the training "
                                 f"photos at longer side {cfg['image_side']} px")
    if notes:
        training["notes"] = notes
    info = {"training": training, **({"metrics": metrics} if metrics else {})}
    zoo.register_head(weights_dir, model, kind, final.name, sha, config, info)
    return {"model": model, "kind": kind, "file": final.name, "sha256": sha, **info}
