"""Smoke test of the weights shipped in weights/: manifest, checksums, a real photo round trip."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gcodec import codec, container, zoo
from gcodec.selective import Selection

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "weights" / "manifest.json"
EXAMPLE = ROOT / "examples" / "mountain.jpg"
REQUIRED_INFO = {"training", "metrics"}


def shipped_entries() -> list[zoo.ModelEntry]:
    return zoo.read_manifest(ROOT / "weights")


def test_manifest_lists_c2_c4_c8():
    names = {e.name for e in shipped_entries()}
    assert {"gcz-c2", "gcz-c4", "gcz-c8"} <= names


@pytest.mark.parametrize("entry", shipped_entries(), ids=lambda e: e.name)
def test_shipped_model(entry, monkeypatch):
    monkeypatch.setenv("GCZ_WEIGHTS", "")
    assert entry.path.stat().st_size <= 16 * 2 ** 20
    assert zoo.sha256_file(entry.path) == entry.sha256
    assert REQUIRED_INFO <= set(entry.info), "manifest entry lacks training data/metrics"
    assert entry.info["training"]["iterations"] > 0
    image = Image.open(EXAMPLE).convert("RGB")
    selection = Selection(preserve=("all",)) if entry.arch.selective else None
    data = codec.compress(image, model=entry.name, selection=selection)
    bound_bytes = entry.bpp_bound * image.width * image.height / 8
    if entry.arch.selective:  # the stored label map comes on top of the latent's bound
        bound_bytes += len(container.read_sections(data)[-1].body)
    assert len(data) <= bound_bytes, f"{len(data)} bytes > bound {bound_bytes:.0f}"
    out = codec.decompress(data)
    assert out.size == image.size
    mse = np.mean((np.asarray(out, np.float64) - np.asarray(image, np.float64)) ** 2)
    psnr = 10 * math.log10(255 ** 2 / mse)
    assert psnr > 18.0, f"reconstruction not recognisable: {psnr:.1f} dB"


def test_shipped_label_codebook(monkeypatch):
    monkeypatch.setenv("GCZ_WEIGHTS", "")
    from gcodec.selective.autolabel import load_codebook

    entry = zoo.labeller_entry()
    assert entry.path.parent == ROOT / "weights" and zoo.sha256_file(entry.path) == entry.sha256
    book = load_codebook()
    assert book.classes == entry.info["classes"] and "training" in entry.info
    sc = [e for e in shipped_entries() if e.arch.selective]
    assert all(e.arch.selective_classes == book.classes for e in sc)


def test_shipped_c4_same_file_from_onnxruntime_and_torch(monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("GCZ_WEIGHTS", "")
    image = Image.open(EXAMPLE).convert("RGB")
    data = codec.compress(image, model="gcz-c4", backend="onnxruntime")
    assert data == codec.compress(image, model="gcz-c4", backend="torch")
    a = np.asarray(codec.decompress(data, backend="onnxruntime"), np.int16)
    b = np.asarray(codec.decompress(data, backend="torch"), np.int16)
    assert np.abs(a - b).max() <= 2 and (a != b).mean() < 0.01


@pytest.mark.parametrize("entry", [e for e in shipped_entries() if e.heads], ids=lambda e: e.name)
def test_shipped_heads(entry, monkeypatch):
    """Every shipped head verifies, records its training, and does what it is for on a real photo."""
    monkeypatch.setenv("GCZ_WEIGHTS", "")
    image = Image.open(EXAMPLE).convert("RGB")
    for kind, head in entry.heads.items():
        assert head.path.stat().st_size <= 16 * 2 ** 20
        assert zoo.sha256_file(head.path) == head.sha256
        assert head.info["training"]["iterations"] > 0
    if entry.supports_realism:
        data = codec.compress(image, model=entry.name, colour=False)  # the head itself, no COLOUR
        original = np.asarray(image, np.float64)
        low, full = (np.asarray(codec.decompress(data, realism=a), np.float64) for a in (0.0, 1.0))
        # the low-distortion end is closer to the photo than the GAN output
        assert np.mean((low - original) ** 2) < np.mean((full - original) ** 2)
    if entry.has_sampler:
        from gcodec import sampling

        sample = next(sampling.sample_images(entry, 1, 128, 96, seed=0))
        assert sample.shape == (96, 128, 3) and sample.std() > 1  # an image, not a flat field


@pytest.mark.parametrize("channels, default, encoder_of", [(4, "gcz-c4-v2", "gcz-c4"), (8, "gcz-c8-v2", "gcz-c8")])
def test_default_v2_models_keep_their_predecessors_encoder(channels, default, encoder_of, monkeypatch):
    """The v2 models retrained only G: the same symbols as their predecessor, so the same payload, and the
    predecessor's files still decode."""
    monkeypatch.setenv("GCZ_WEIGHTS", "")
    assert zoo.default_model_name(channels) == default
    image = Image.open(EXAMPLE).convert("RGB")
    new, old = codec.compress(image, channels=channels), codec.compress(image, model=encoder_of)
    assert codec.read_header(new).model_name == default
    payload = {s.type: s.body for s in container.read_sections(new)}
    assert payload[container.SEC_PAYLOAD] == {s.type: s.body for s in container.read_sections(old)}[
        container.SEC_PAYLOAD]
    assert codec.decompress(old).size == codec.decompress(new).size == image.size


def test_shipped_c4_refines(monkeypatch):
    """A few refinement steps with the shipped default model and feature network: a recognisable photo,
    a file still smaller than gcz 0.7's unrefined one (the context code), at most 1.5x the unrefined."""
    monkeypatch.setenv("GCZ_WEIGHTS", "")
    image = Image.open(EXAMPLE).convert("RGB")
    plain = codec.compress(image, channels=4, colour=False)
    static = codec.compress(image, channels=4, colour=False, context=False)
    refined = codec.compress(image, channels=4, colour=False, refine_steps=8)  # the first few steps may not beat the start
    assert refined != plain and len(refined) < min(1.5 * len(plain), len(static))
    out = np.asarray(codec.decompress(refined), np.float64)
    psnr = 10 * math.log10(255 ** 2 / np.mean((out - np.asarray(image, np.float64)) ** 2))
    assert psnr > 18.0, f"refined reconstruction not recognisable: {psnr:.1f} dB"


def test_defaults_point_at_a_current_measurement():
    entries = {e.name: e for e in shipped_entries()}
    for name in ("gcz-c2", "gcz-c4-v2", "gcz-c8-v2"):  # gcz models shows what gcz 0.8 writes, not the publication's bpp
        metrics = entries[name].info["metrics"]
        assert entries[name].current_metrics is metrics[metrics["current"]]
        assert entries[name].current_metrics["bpp"] < 0.9 * metrics["bpp"]  # context coding: smaller files
