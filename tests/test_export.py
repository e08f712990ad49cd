"""ONNX export: the exported encoder gives the same symbols as torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gcodec import zoo
from gcodec.errors import GczInputError
from gcodec.export import export_onnx

from conftest import photo_like

ort = pytest.importorskip("onnxruntime")


def test_onnx_matches_torch(tiny_weights, tmp_path):
    entry = zoo.find_model("gcz-c4")
    enc_path, gen_path = export_onnx(entry, tmp_path)
    model = zoo.load_model(entry)
    for h, w in [(64, 96), (32, 48), (128, 80)]:
        x = torch.from_numpy(photo_like(h, w, seed=h)).permute(2, 0, 1)[None].float() / 127.5 - 1
        ref = model.encode_symbols(x).numpy()
        sym = ort.InferenceSession(str(enc_path)).run(None, {"image": x.numpy()})[0]
        assert np.array_equal(sym, ref)
        img = ort.InferenceSession(str(gen_path)).run(None, {"symbols": ref})[0]
        assert np.abs(img - model.decode_symbols(torch.from_numpy(ref)).numpy()).max() < 1e-3
    with pytest.raises(GczInputError, match="exists"):
        export_onnx(entry, tmp_path)
