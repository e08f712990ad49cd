"""ONNX export of a model's encoder (image -> symbols) and generator (latent values -> image)."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from . import zoo
from .errors import GczInputError


class _EncoderToSymbols(nn.Module):
    """E followed by the quantizer's symbol mapping, so ONNX yields the coder's integers."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.low = float(model.quantizer.centers[0])
        self.levels = model.quantizer.levels

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        w = self.encoder(image)
        return torch.clamp(torch.round(w - self.low), 0, self.levels - 1).to(torch.int64)


class _SymbolsToImage(nn.Module):
    """Dequantize symbols and run G (models without a noise input)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.generator = model.generator
        self.register_buffer("centers", model.quantizer.centers.clone())

    def forward(self, symbols: torch.Tensor) -> torch.Tensor:
        return self.generator(self.centers[symbols])


def export_onnx(entry: zoo.ModelEntry, out_dir: Path, force: bool = False, opset: int = 17) -> list[Path]:
    """Write ``encoder.onnx`` (image in [-1,1], N x 3 x H x W -> int64 symbols) and
    ``generator.onnx`` (int64 symbols -> image in [-1,1]) with dynamic sizes."""
    if entry.arch.noise_channels:
        raise GczInputError("ONNX export of models with a noise input is not supported")
    out_dir.mkdir(parents=True, exist_ok=True)
    enc_path, gen_path = out_dir / "encoder.onnx", out_dir / "generator.onnx"
    for p in (enc_path, gen_path):
        if p.exists() and not force:
            raise GczInputError(f"{p} exists (use --force to overwrite)")
    model = zoo.load_model(entry, "cpu")
    image = torch.zeros(1, 3, 64, 64)
    symbols = torch.zeros(1, entry.arch.latent_channels, 4, 4, dtype=torch.int64)
    kwargs = dict(opset_version=opset, dynamo=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but handles dynamic sizes
        _export_pair(model, image, symbols, enc_path, gen_path, kwargs)
    return [enc_path, gen_path]


def _export_pair(model: nn.Module, image: torch.Tensor, symbols: torch.Tensor, enc_path: Path, gen_path: Path,
                 kwargs: dict) -> None:
    torch.onnx.export(_EncoderToSymbols(model).eval(), (image,), str(enc_path), input_names=["image"],
                      output_names=["symbols"], dynamic_axes={"image": {0: "n", 2: "h", 3: "w"},
                                                              "symbols": {0: "n", 2: "h16", 3: "w16"}}, **kwargs)
    torch.onnx.export(_SymbolsToImage(model).eval(), (symbols,), str(gen_path), input_names=["symbols"],
                      output_names=["image"], dynamic_axes={"symbols": {0: "n", 2: "h16", 3: "w16"},
                                                            "image": {0: "n", 2: "h", 3: "w"}}, **kwargs)
