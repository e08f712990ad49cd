"""ONNX export: the exported encoder gives the same symbols as torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gcodec import zoo
from gcodec.errors import GczInputError
from gcodec.export import export_onnx
from gcodec.models.orp import RealismGenerator

from conftest import photo_like

ort = pytest.importorskip("onnxruntime")


def test_onnx_matches_torch(tiny_weights, tmp_path):
    entry = zoo.find_model("gcz-c4")
    enc_path, gen_path, realism_path = export_onnx(entry, tmp_path)
    assert realism_path.name == "generator_realism.onnx"  # the tiny gcz-c4 has a realism head
    model = zoo.load_model(entry)
    realism = RealismGenerator(model.generator, zoo.load_head(entry, "realism"))
    for h, w in [(64, 96), (32, 48), (128, 80)]:
        x = torch.from_numpy(photo_like(h, w, seed=h)).permute(2, 0, 1)[None].float() / 127.5 - 1
        ref = model.encode_symbols(x).numpy()
        sym = ort.InferenceSession(str(enc_path)).run(None, {"image": x.numpy()})[0]
        assert np.array_equal(sym, ref)
        img = ort.InferenceSession(str(gen_path)).run(None, {"symbols": ref})[0]
        assert np.abs(img - model.decode_symbols(torch.from_numpy(ref)).numpy()).max() < 1e-3
        latent = model.quantizer.dequantize(torch.from_numpy(ref))
        for alpha in (0.0, 0.3, 1.0):
            a = np.array([alpha], dtype=np.float32)
            out = ort.InferenceSession(str(realism_path)).run(None, {"symbols": ref, "alpha": a})[0]
            with torch.no_grad():
                expected = realism(latent, torch.from_numpy(a)).numpy()
            assert np.abs(out - expected).max() < 1e-3
    with pytest.raises(GczInputError, match="exists"):
        export_onnx(entry, tmp_path)
