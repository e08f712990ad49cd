"""Automatic label maps: region classes from colour and texture, on a grid of cells.

Selective compression needs a semantic label map for the regions it
synthesizes.  Cityscapes and PSPNet are not available offline, so gcz ships
its own labeller: every ``cell`` x ``cell`` block of the image gets a feature
vector (CIE L*a*b* mean colour, luminance contrast at two scales, gradient
energy and orientation balance), which is assigned to the nearest of ``K``
centroids of a *codebook* fitted once by k-means on the training photos
(:func:`fit_codebook`).  Classes therefore mean the same thing in every
image (class 3 is, say, "dark, finely textured foliage"), which is what the
SC generator learns to synthesize from.  The raw assignment is cleaned into
connected regions (a 3x3 majority vote, then regions smaller than
``min_cells`` merged into their most common neighbour), because every region
costs bytes in the vector-graphics label section.

The labeller runs at encode time only; the decoder reads the stored map, so
nothing here needs to be bit-exact across machines.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import regions

#: Cell side in pixels of automatic label maps (= the SC latent grid).
DEFAULT_CELL = 8
#: Regions smaller than this many cells are merged into a neighbour.
DEFAULT_MIN_CELLS = 6
FEATURE_NAMES = ("L", "a", "b", "contrast", "contrast_coarse", "gradient", "orientation")


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB (..., 3) -> CIE L*a*b* (D65) as float32."""
    c = rgb.astype(np.float32) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], np.float32)
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883], np.float32)
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    lab = np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)
    return lab.astype(np.float32)


def _cell_mean(a: np.ndarray, cell: int) -> np.ndarray:
    h, w = a.shape[0] // cell, a.shape[1] // cell
    return a[:h * cell, :w * cell].reshape(h, cell, w, cell, *a.shape[2:]).mean(axis=(1, 3))


def cell_features(pixels: np.ndarray, cell: int = DEFAULT_CELL) -> np.ndarray:
    """Features (gh, gw, 7) of every cell of an (H, W, 3) uint8 image; H, W multiples of ``cell``."""
    if pixels.shape[0] % cell or pixels.shape[1] % cell:
        raise ValueError(f"image sides must be multiples of the cell size {cell}")
    lab = srgb_to_lab(pixels)
    lum = lab[..., 0]
    mean_lab = _cell_mean(lab, cell)
    contrast = np.sqrt(np.maximum(_cell_mean(lum ** 2, cell) - mean_lab[..., 0] ** 2, 0))
    # coarse contrast: spread of cell means over the 3x3 cell neighbourhood
    m = np.pad(mean_lab[..., 0], 1, mode="edge")
    gh, gw = mean_lab.shape[:2]
    stack = np.stack([m[dy:dy + gh, dx:dx + gw] for dy in range(3) for dx in range(3)])
    coarse = stack.std(axis=0)
    gx = np.abs(np.diff(lum, axis=1, append=lum[:, -1:]))
    gy = np.abs(np.diff(lum, axis=0, append=lum[-1:, :]))
    mgx, mgy = _cell_mean(gx, cell), _cell_mean(gy, cell)
    gradient = mgx + mgy
    orientation = (mgx - mgy) / (gradient + 1.0)
    return np.concatenate([mean_lab, contrast[..., None], coarse[..., None], gradient[..., None],
                           orientation[..., None]], axis=-1).astype(np.float32)


@dataclass(frozen=True)
class Codebook:
    """K centroids in standardised feature space: the classes of automatic label maps.

    Attributes:
        centers: (K, F) centroids of standardised features.
        mean, scale: per-feature standardisation (feature - mean) / scale.
        weights: per-feature weight applied after standardisation.
        cell: cell side in pixels the codebook was fitted for.
    """

    centers: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    cell: int = DEFAULT_CELL

    @property
    def classes(self) -> int:
        """Number of classes K."""
        return int(self.centers.shape[0])

    def embed(self, features: np.ndarray) -> np.ndarray:
        """Standardised, weighted features (..., F)."""
        return (features - self.mean) / self.scale * self.weights

    def assign(self, features: np.ndarray) -> np.ndarray:
        """Nearest-centroid class (..., ) of raw features (..., F)."""
        z = self.embed(features)
        d = ((z[..., None, :] - self.centers) ** 2).sum(-1)
        return np.argmin(d, axis=-1).astype(np.uint8)

    def to_json(self) -> str:
        """Serialised codebook (the shipped ``weights/labels-*.json``)."""
        return json.dumps({"format": "gcz-codebook-1", "features": FEATURE_NAMES, "cell": self.cell,
                           "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                           "weights": self.weights.tolist(),
                           "centers": [[round(float(v), 6) for v in row] for row in self.centers]},
                          indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Codebook":
        """Inverse of :meth:`to_json`; raises ValueError on anything malformed."""
        doc = json.loads(text)
        if doc.get("format") != "gcz-codebook-1":
            raise ValueError("not a gcz codebook")
        centers = np.asarray(doc["centers"], np.float32)
        n = len(FEATURE_NAMES)
        if centers.ndim != 2 or centers.shape[1] != n or not 2 <= centers.shape[0] <= 255:
            raise ValueError("codebook centers have the wrong shape")
        return cls(centers, np.asarray(doc["mean"], np.float32), np.asarray(doc["scale"], np.float32),
                   np.asarray(doc["weights"], np.float32), int(doc["cell"]))

    @property
    def sha256(self) -> str:
        """Digest of the serialised codebook."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


#: Relative weight of each feature in the clustering: colour dominates, texture separates
#: flat from busy regions of similar colour.
FEATURE_WEIGHTS = np.array([1.4, 1.0, 1.0, 0.8, 0.6, 0.8, 0.4], np.float32)


def fit_codebook(images: list[np.ndarray], classes: int = 12, cell: int = DEFAULT_CELL,
                 iterations: int = 40, seed: int = 0, max_cells: int = 200_000) -> Codebook:
    """k-means (k-means++ start, fixed seed) over the cell features of ``images``."""
    rng = np.random.default_rng(seed)
    feats = []
    for img in images:
        h, w = (img.shape[0] // cell) * cell, (img.shape[1] // cell) * cell
        feats.append(cell_features(img[:h, :w], cell).reshape(-1, len(FEATURE_NAMES)))
    x = np.concatenate(feats)
    if len(x) > max_cells:
        x = x[rng.choice(len(x), max_cells, replace=False)]
    mean, scale = x.mean(0), x.std(0) + 1e-6
    book = Codebook(np.zeros((classes, x.shape[1]), np.float32), mean, scale, FEATURE_WEIGHTS, cell)
    z = book.embed(x)
    centers = [z[rng.integers(len(z))]]
    for _ in range(1, classes):
        d = np.min(((z[:, None, :] - np.stack(centers)[None]) ** 2).sum(-1), axis=1)
        centers.append(z[rng.choice(len(z), p=d / d.sum())])
    c = np.stack(centers)
    for _ in range(iterations):
        assign = np.argmin(((z[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        for k in range(classes):
            members = z[assign == k]
            if len(members):
                c[k] = members.mean(0)
    order = np.lexsort((c[:, 1], c[:, 0]))  # classes sorted by lightness: stable, readable ids
    return Codebook(c[order].astype(np.float32), mean, scale, FEATURE_WEIGHTS, cell)


def label_cells(pixels: np.ndarray, codebook: Codebook, min_cells: int = DEFAULT_MIN_CELLS) -> np.ndarray:
    """The cleaned automatic label map (gh, gw) uint8 of an image whose sides are multiples of the cell."""
    raw = codebook.assign(cell_features(pixels, codebook.cell))
    return regions.clean(regions.majority3(raw, codebook.classes), min_cells)


def load_codebook(path: Path | None = None) -> Codebook:
    """Read a codebook file (default: the shipped, checksum-verified one)."""
    from ..errors import GczModelError
    if path is None:
        from .. import zoo
        text = zoo.read_labeller()
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise GczModelError(f"cannot read codebook {path}: {exc.strerror}") from None
    try:
        return Codebook.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise GczModelError(f"malformed label codebook: {exc}") from None
