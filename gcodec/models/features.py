"""EfficientNet-Lite0's first eleven blocks as a frozen feature pyramid, in plain PyTorch.

The same network (and the same state-dict key names) as the training's
perceptual loss (:mod:`gcodec.train.perceptual`), written out here so that
the encoder's refinement (:mod:`gcodec.refine`) needs no package beyond
PyTorch: its weights ship in ``weights/`` as a verified file
(:func:`gcodec.zoo.read_features`).

Layout (Tan & Le 2019, the Lite variant: ReLU6, no squeeze-excitation):
a 3x3 stride-2 stem to 32 channels, then MBConv blocks (1x1 expansion x6,
depthwise k x k, 1x1 projection, identity skip where shapes allow).
Convolutions pad like TensorFlow's ``SAME`` (extra pixel at the bottom/right),
as the original weights were trained with.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

#: (kernel, stride, expand ratio, input channels, output channels) of blocks 0..10.
BLOCKS = ((3, 1, 1, 32, 16),
          (3, 2, 6, 16, 24), (3, 1, 6, 24, 24),
          (5, 2, 6, 24, 40), (5, 1, 6, 40, 40),
          (3, 2, 6, 40, 80), (3, 1, 6, 80, 80), (3, 1, 6, 80, 80),
          (5, 1, 6, 80, 112), (5, 1, 6, 112, 112), (5, 1, 6, 112, 112))
#: Blocks whose outputs form the pyramid (strides 2, 4, 8, 16, 16).
TAPS = (0, 2, 4, 7, 10)
#: Weights of the pyramid's levels in :func:`pyramid_l1` (pix2pixHD's VGG loss weights).
LEVEL_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
BN_EPS = 1e-3


class SameConv2d(nn.Conv2d):
    """A bias-free convolution padded like TensorFlow's ``SAME``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
            total = max((math.ceil(size / self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


class MBConv(nn.Module):
    """Inverted residual block: expansion, depthwise convolution, projection."""

    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if hasattr(self, "_expand_conv"):
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class FrozenPyramid(nn.Module):
    """A frozen network whose output is the feature maps after its tapped layers; always in eval mode."""

    def train(self, mode: bool = True) -> "FrozenPyramid":  # frozen: always eval
        return super().train(False)

    @staticmethod
    def tapped(layers: nn.Module, x: torch.Tensor, taps: tuple[int, ...]) -> list[torch.Tensor]:
        """Run ``x`` through ``layers`` in order; the outputs of the layers at indices ``taps``."""
        feats = []
        for i, layer in enumerate(layers):
            x = layer(x)
            if i in taps:
                feats.append(x)
        return feats


class LiteFeatures(FrozenPyramid):
    """Frozen multi-level features of EfficientNet-Lite0 (after blocks 0, 2, 4, 7, 10).

    Load weights with ``load_state_dict`` (keys ``stem.0.weight``, ``stem.1.*``,
    ``blocks.N._expand_conv.weight``, ...).
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(SameConv2d(3, 32, 3, 2), nn.BatchNorm2d(32, eps=BN_EPS), nn.ReLU6())
        self.blocks = nn.ModuleList(MBConv(*spec) for spec in BLOCKS)
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Images (N, 3, H, W) in [-1, 1] -> the five tapped feature maps.

        EfficientNet-Lite normalises as (x01 - 0.498) / 0.502, i.e. about ``x`` itself.
        """
        return self.tapped(self.blocks, self.stem(((x + 1) / 2 - 0.498) / 0.502), TAPS)


def pyramid_l1(pred: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
    """The perceptual distance between two feature pyramids: L1 per level, weighted by :data:`LEVEL_WEIGHTS`."""
    return sum(w * F.l1_loss(p.float(), t.float()) for w, p, t in zip(LEVEL_WEIGHTS, pred, target))
