"""ONNX export of a model's encoder (image -> symbols) and generator (symbols -> image).

Before export, the per-channel affine layers of the generator are folded into
the (transposed) convolutions before them (:func:`inference_generator`):
ONNX Runtime fuses them into Conv but not into ConvTranspose, where they cost
two passes over the largest feature maps.  The rewrite changes nothing but
floating-point rounding.  (Rewriting the transposed convolutions as 2x2
convolutions + depth-to-space was measured too: no faster, its DepthToSpace
is slow.)
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn

from . import zoo
from .backends.graphs import generator_input_name, graph_names
from .errors import GczInputError
from .models.layers import Affine


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


class _GeneratorGraph(nn.Module):
    """What ``generator.onnx`` / ``generator_realism.onnx`` compute.

    Input: int64 symbols, dequantized inside the graph, or for models with a
    noise input the float latent with its noise channels (the caller draws the
    noise from a seed, :mod:`gcodec.noise`).  With an ORP ``head`` a second
    input ``alpha`` (float32[1]) sets the realism (:mod:`gcodec.models.orp`).
    """

    def __init__(self, generator: nn.Module, centers: torch.Tensor | None, head: nn.Module | None = None) -> None:
        super().__init__()
        from .models.orp import RealismGenerator

        self.generator = generator if head is None else RealismGenerator(generator, head)
        self.dequantize = centers is not None
        self.register_buffer("centers", centers.clone() if centers is not None else torch.zeros(0))

    def forward(self, x: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
        z = self.centers[x] if self.dequantize else x
        return self.generator(z) if alpha is None else self.generator(z, alpha)


def _fold_affine(conv: nn.Module, affine: Affine) -> None:
    """Scale ``conv``'s output channels by ``affine``'s weight and add its bias, in place."""
    scale, shift = affine.weight.detach(), affine.bias.detach()
    with torch.no_grad():
        if isinstance(conv, nn.ConvTranspose2d):  # weight (in, out, k, k)
            conv.weight.mul_(scale.view(1, -1, 1, 1))
        else:  # weight (out, in, k, k)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
        if conv.bias is None:
            conv.bias = nn.Parameter(torch.zeros_like(scale))
        conv.bias.mul_(scale).add_(shift)


def inference_generator(generator: nn.Module) -> nn.Module:
    """A copy of ``generator`` with every affine layer folded into the convolution before it."""
    gen = copy.deepcopy(generator).eval()
    for seq in [m for m in gen.modules() if isinstance(m, nn.Sequential)]:
        for i in range(1, len(seq)):
            if isinstance(seq[i], Affine) and isinstance(seq[i - 1], (nn.Conv2d, nn.ConvTranspose2d)):
                _fold_affine(seq[i - 1], seq[i])
                seq[i] = nn.Identity()
    return gen


def export_onnx(entry: zoo.ModelEntry, out_dir: Path, force: bool = False, opset: int = 17) -> list[Path]:
    """Write ``encoder.onnx`` (image in [-1,1], N x 3 x H x W -> int64 symbols) and
    ``generator.onnx`` (int64 ``symbols`` -> image in [-1,1]; for models with a noise input the
    float ``latent``, noise channels included) with dynamic sizes, and for models with a
    realism head ``generator_realism.onnx`` (the same input and ``alpha`` float32[1] -> image)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in graph_names(entry)]
    enc_path, gen_path = paths[:2]
    for p in paths:
        if p.exists() and not force:
            raise GczInputError(f"{p} exists (use --force to overwrite)")
    model = zoo.load_model(entry, "cpu")
    image = torch.zeros(1, 3, 64, 64)
    noisy = entry.arch.noise_channels > 0
    name = generator_input_name(entry)
    sample = (torch.zeros(1, entry.arch.latent_channels + entry.arch.noise_channels, 4, 4) if noisy
              else torch.zeros(1, entry.arch.latent_channels, 4, 4, dtype=torch.int64))
    centers = None if noisy else model.quantizer.centers
    axes = {name: {0: "n", 2: "h16", 3: "w16"}, "image": {0: "n", 2: "h", 3: "w"}}
    kwargs = dict(opset_version=opset, dynamo=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but handles dynamic sizes
        torch.onnx.export(_EncoderToSymbols(model).eval(), (image,), str(enc_path), input_names=["image"],
                          output_names=["symbols"], dynamic_axes={"image": {0: "n", 2: "h", 3: "w"},
                                                                  "symbols": {0: "n", 2: "h16", 3: "w16"}},
                          **kwargs)
        torch.onnx.export(_GeneratorGraph(inference_generator(model.generator), centers).eval(), (sample,),
                          str(gen_path), input_names=[name], output_names=["image"], dynamic_axes=axes, **kwargs)
        if entry.supports_realism:
            realism = _GeneratorGraph(inference_generator(model.generator), centers,
                                      zoo.load_head(entry, "realism")).eval()
            torch.onnx.export(realism, (sample, torch.ones(1)), str(paths[2]), input_names=[name, "alpha"],
                              output_names=["image"], dynamic_axes=axes, **kwargs)
    return paths
