"""The coding pipeline: image -> symbols -> tables + range coder -> container, and back.

Symbols are decided only by integer data stored in the file (tables,
payload), so any machine decodes the same symbols; only the generator's
floating-point synthesis may differ in the last bits between machines.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from . import container, entropy, zoo
from .errors import GczInputError
from .imageio import ImageLike, LoadedImage, load_image, pad_image, to_pil

#: Smallest padded side: the networks' reflection padding needs a latent of at least 2x2.
MIN_PADDED_SIDE = container.MIN_LATENT_SIDE * 16
VALID_CHANNELS = (2, 4, 8)


def resolve_model(channels: int | None, model: str | None) -> zoo.ModelEntry:
    """The model entry for ``--model`` or, if absent, the default model for ``channels``."""
    if model is None:
        channels = 4 if channels is None else channels
        if channels not in VALID_CHANNELS:
            raise GczInputError(f"--channels must be one of {', '.join(map(str, VALID_CHANNELS))}, not {channels}")
        model = zoo.default_model_name(channels)
    entry = zoo.find_model(model)
    if channels is not None and entry.arch.latent_channels != channels:
        raise GczInputError(f"model {entry.name} has {entry.arch.latent_channels} channels, not {channels}")
    return entry


def _to_tensor(pixels: np.ndarray, device: str) -> Any:
    import torch
    x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float()
    return (x / 127.5 - 1.0).unsqueeze(0).to(device)


def _to_pixels(x: Any) -> np.ndarray:
    import torch
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x[0].permute(1, 2, 0).cpu().numpy()


def compress_loaded(image: LoadedImage, entry: zoo.ModelEntry, device: str = "cpu") -> bytes:
    """Compress an already loaded RGB image with the given model entry."""
    model = zoo.load_model(entry, device)
    ds = 16
    padded = pad_image(image.pixels, ds, MIN_PADDED_SIDE)
    from . import tiling  # imports torch: only when a network runs

    symbols = tiling.encode_symbols(model, _to_tensor(padded, device))[0].cpu().numpy()
    tables = entropy.best_tables(symbols, entry.arch.levels)
    gcz = container.GczFile(
        width=image.width, height=image.height, model_name=entry.name, model_hash=entry.hash_prefix,
        channels=entry.arch.latent_channels, levels=entry.arch.levels, downsampling=ds,
        tables=tables, payload=entropy.encode(symbols, tables))
    return container.write(gcz)


def compress(image: ImageLike, channels: int | None = 4, model: str | None = None, device: str = "cpu") -> bytes:
    """Compress an image (path, bytes, PIL image or uint8 array) to ``.gcz`` bytes.

    Args:
        image: anything :func:`gcodec.imageio.load_image` accepts.
        channels: latent channels C (2, 4 or 8) choosing the default model.
        model: a registry name overriding ``channels``' default model.
        device: torch device, e.g. ``"cpu"`` or ``"cuda"``.
    """
    return compress_loaded(load_image(image), resolve_model(channels if model is None else None, model), device)


def read_header(data: bytes) -> container.GczFile:
    """Parse and verify a ``.gcz`` file without running any network."""
    return container.read(data)


def decode_symbols(gcz: container.GczFile) -> np.ndarray:
    """Entropy-decode the latent symbols (C, h, w) of a parsed file."""
    return entropy.decode(gcz.payload, gcz.tables, gcz.latent_shape)


def decompress(data: bytes, device: str = "cpu", seed: int | None = None) -> Image.Image:
    """Decode ``.gcz`` bytes to a PIL RGB image of the original size.

    Args:
        data: the file's bytes.
        device: torch device.
        seed: seed of the generator's noise input (only for models with noise channels).
    """
    import torch

    gcz = container.read(data)
    entry = zoo.find_model(gcz.model_name, gcz.model_hash)
    if (entry.arch.latent_channels, entry.arch.levels) != (gcz.channels, gcz.levels):
        raise GczInputError(f"model {entry.name} does not match the file's latent description")
    model = zoo.load_model(entry, device)
    symbols = torch.from_numpy(decode_symbols(gcz)).unsqueeze(0).to(device)
    from . import tiling

    pixels = _to_pixels(tiling.decode_symbols(model, symbols, seed=seed))  # tiled above 2048x2048
    return to_pil(pixels[:gcz.height, :gcz.width])
