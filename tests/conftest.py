"""Shared fixtures: tiny randomly initialised models registered in a temporary weights folder."""
from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gcodec import zoo
from gcodec.models import GCModel, named_config

TINY_CHANNELS = (2, 4, 8)
#: The tiny model that carries a realism head and a latent sampler, and the tiny stochastic model.
HEADED_MODEL = "gcz-c4"
STOCHASTIC_MODEL = "gcz-c2s"


def _register_tiny(directory: Path, name: str, config, seed: int, default: bool = False) -> GCModel:
    torch.manual_seed(seed)
    model = GCModel(config)
    # spread encoder outputs so that all quantizer levels occur
    with torch.no_grad():
        model.encoder.net[-1][-1].weight.mul_(20.0)
    path = directory / f"{name}.pt"
    sha = zoo.save_weights(model, path)
    zoo.register_model(directory, name, path.name, sha, model.config,
                       info={"training": {"iterations": 0, "data": "none (test model)"}}, default=default)
    return model


#: The tiny selective-compression model (C = 8, the shipped codebook's 12 classes).
SC_MODEL = "gcz-sc-c8"
SC_CLASSES = 12


def register_tiny_sc(directory: Path, name: str = SC_MODEL, seed: int = 7):
    """Register a tiny random SC model (spread latents, so that all levels occur)."""
    from gcodec.models.sc import SCModel

    torch.manual_seed(seed)
    model = SCModel(dataclasses.replace(named_config("tiny", 8), selective_classes=SC_CLASSES))
    with torch.no_grad():
        model.encoder[-1][-1].weight.mul_(20.0)
    path = directory / f"{name}.pt"
    sha = zoo.save_weights(model, path)
    zoo.register_model(directory, name, path.name, sha, model.config,
                       info={"training": {"iterations": 0, "data": "none (test model)"}}, default=True)
    return model


def add_tiny_heads(directory: Path, model: GCModel, name: str = HEADED_MODEL, seed: int = 0) -> None:
    """Give ``name`` a random (non-zero) realism head and a random latent sampler."""
    from gcodec.models.orp import ResidualHead, head_config_for
    from gcodec.models.sampler import CodeGenerator, SamplerConfig

    torch.manual_seed(seed)
    head = ResidualHead(head_config_for(model.generator, width=4))
    with torch.no_grad():
        head.net[-1].weight.normal_(0, 0.3)
    sampler = CodeGenerator(SamplerConfig(channels=model.config.latent_channels, noise_channels=4, width=8))
    encoder = copy.deepcopy(model.encoder)  # an "amortised" encoder: the model's, its weights moved
    with torch.no_grad():
        for weight in encoder.parameters():
            weight.add_(torch.randn_like(weight) * 0.2 * weight.std().clamp_min(1e-3))
    for kind, module, config in (("realism", head, head.config.to_dict()), ("sampler", sampler, sampler.config.to_dict()),
                                 ("encoder", encoder, model.config.to_dict())):
        path = directory / f"{name}-{kind}.pt"
        zoo.register_head(directory, name, kind, path.name, zoo.save_head(module, path), config,
                          {"training": {"iterations": 0, "data": "none (test head)"}})


def make_tiny_weights(directory: Path, channels=TINY_CHANNELS, seed: int = 0, heads: bool = True) -> None:
    """Register tiny models ``gcz-c{C}`` (random weights, fixed seed; the defaults for their C, ahead of the
    shipped manifest's) in ``directory``; with ``heads``,
    ``gcz-c4`` also gets a realism head and a sampler and ``gcz-c2s`` is a stochastic C = 2 model."""
    directory.mkdir(parents=True, exist_ok=True)
    for c in channels:
        model = _register_tiny(directory, f"gcz-c{c}", named_config("tiny", c), seed + c, default=True)
        if heads and f"gcz-c{c}" == HEADED_MODEL:
            add_tiny_heads(directory, model)
    if heads:
        register_tiny_sc(directory)
        _register_tiny(directory, STOCHASTIC_MODEL, dataclasses.replace(named_config("tiny", 2), noise_channels=2),
                       seed + 100)


@pytest.fixture(scope="session", autouse=True)
def _fast_encodes():
    """Encodes skip the refinement (30 gradient steps) unless a test asks for it: ``GCZ_REFINE_STEPS=0``,
    which subprocesses inherit; tests of the default remove it (tests/test_refine.py)."""
    old = os.environ.get("GCZ_REFINE_STEPS")
    os.environ["GCZ_REFINE_STEPS"] = "0"
    yield
    if old is None:
        os.environ.pop("GCZ_REFINE_STEPS", None)
    else:
        os.environ["GCZ_REFINE_STEPS"] = old


@pytest.fixture(scope="session", autouse=True)
def _private_graph_cache(tmp_path_factory):
    """ONNX graphs built during the tests go to a temporary cache, never the user's ~/.cache."""
    old = os.environ.get("GCZ_CACHE")
    os.environ["GCZ_CACHE"] = str(tmp_path_factory.mktemp("gcz-cache"))
    yield
    if old is None:
        os.environ.pop("GCZ_CACHE", None)
    else:
        os.environ["GCZ_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A weights folder with tiny test models, put first on GCZ_WEIGHTS for the whole session."""
    directory = tmp_path_factory.mktemp("weights")
    make_tiny_weights(directory)
    old = os.environ.get("GCZ_WEIGHTS")
    os.environ["GCZ_WEIGHTS"] = str(directory)
    zoo._cache.clear()
    yield directory
    if old is None:
        os.environ.pop("GCZ_WEIGHTS", None)
    else:
        os.environ["GCZ_WEIGHTS"] = old
    zoo._cache.clear()


def photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth, photo-like uint8 RGB test image (gradients plus texture)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([np.sin(xx / 17.0 + c) * np.cos(yy / 23.0 - c) for c in range(3)], axis=-1)
    img = 127 + 90 * base + rng.normal(0, 12, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def photo_file(tmp_path) -> Path:
    """A 96x80 PNG test image on disk."""
    path = tmp_path / "photo.png"
    Image.fromarray(photo_like(80, 96)).save(path)
    return path


@contextmanager
def older_reader(*section_types: int) -> Iterator[None]:
    """Within this block ``gcodec.container`` reads like a gcz that predates ``section_types``."""
    from gcodec import container

    saved = dict(container.SECTION_NAMES)
    try:
        for kind in section_types:
            del container.SECTION_NAMES[kind]
        yield
    finally:
        container.SECTION_NAMES.clear()
        container.SECTION_NAMES.update(saved)


@pytest.fixture
def bare_weights(tmp_path, monkeypatch) -> Path:
    """A private weights folder of tiny models without heads, first on GCZ_WEIGHTS."""
    folder = tmp_path / "weights"
    make_tiny_weights(folder, heads=False)
    monkeypatch.setenv("GCZ_WEIGHTS", str(folder))
    zoo._cache.clear()
    yield folder
    zoo._cache.clear()
