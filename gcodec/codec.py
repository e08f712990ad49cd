"""The coding pipeline: image -> symbols -> tables + range coder -> container, and back.

Symbols are decided only by integer data stored in the file (tables,
payload), so any machine decodes the same symbols; only the generator's
floating-point synthesis may differ in the last bits between machines.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from . import colour as colour_mod
from . import container, limits, noise, zoo
from . import payload as payload_mod
from . import realism as realism_mod
from . import refine as refine_mod
from .errors import GczInputError
from .imageio import ImageLike, LoadedImage, load_image, pad_image, to_pil
from .profile import EncodeProfile

if TYPE_CHECKING:
    from .effort import Search
    from .selective.selection import Selection

#: Smallest padded side: the networks' reflection padding needs a latent of at least 2x2.
MIN_PADDED_SIDE = container.MIN_LATENT_SIDE * 16
VALID_CHANNELS = (2, 4, 8)


def resolve_model(channels: int | None, model: str | None, selective: bool = False) -> zoo.ModelEntry:
    """The model entry for ``--model`` or, if absent, the default model for ``channels``.

    ``selective`` asks for a selective-compression model (default C = 8, the paper's SC setting).
    """
    if model is None:
        channels = (8 if selective else 4) if channels is None else channels
        if channels not in VALID_CHANNELS:
            raise GczInputError(f"--channels must be one of {', '.join(map(str, VALID_CHANNELS))}, not {channels}")
        model = zoo.default_model_name(channels, selective)
        if selective and not any(e.name == model for e in zoo.list_models()):
            have = sorted(e.name for e in zoo.list_models() if e.arch.selective) or ["none"]
            raise GczInputError(f"no selective-compression model with C = {channels} is installed "
                                f"(selective models: {', '.join(have)})")
    entry = zoo.find_model(model)
    if channels is not None and entry.arch.latent_channels != channels:
        raise GczInputError(f"model {entry.name} has {entry.arch.latent_channels} channels, not {channels}")
    if entry.arch.selective != selective:
        raise GczInputError(f"model {entry.name} is a selective-compression model: say what to preserve "
                            "(--preserve-box, --preserve-mask, --preserve, --synthesize)" if entry.arch.selective
                            else f"model {entry.name} is not a selective-compression model")
    return entry


def compress_loaded(image: LoadedImage, entry: zoo.ModelEntry, profile: EncodeProfile = EncodeProfile()) -> bytes:
    """Compress an already loaded RGB image with the given model entry, as ``profile`` says.

    ``profile.backend`` / ``profile.device`` choose where the networks run (:func:`gcodec.backends.choose`);
    ``profile.realism`` is stored as the file's default (:mod:`gcodec.realism`), None stores nothing.
    ``profile.colour`` lets the encoder decode its own file and add a COLOUR correction where it is
    worth its bytes (:mod:`gcodec.colour`); False skips that decode (faster, no correction).
    The symbols come from the search of ``profile.search()`` (:mod:`gcodec.effort`): the model's
    amortised encoder where the level asks for it and the model ships one, then refinement steps by
    gradient descent through the decoder (:mod:`gcodec.refine`, on PyTorch).
    ``profile.context`` codes the symbols with context-adaptive models where that is smaller
    (:mod:`gcodec.payload`); False writes the static code that gcz before 0.8 reads.
    """
    from . import backends, tiling

    search = profile.search()
    stored = None if profile.realism is None else realism_mod.to_steps(entry, profile.realism)
    net = backends.load(entry, profile.backend, profile.device)
    padded = pad_image(image.pixels, tiling.SCALE, MIN_PADDED_SIDE)
    amortised = search.amortised and "encoder" in entry.heads
    if search.steps or amortised:
        symbols = _refined(entry, padded, image, search, amortised,
                           realism_mod.resolve(entry, stored, None), net.device, profile.context)
    else:
        symbols = tiling.encode(net.encode, padded, None if net.tileable else math.inf)
    code = payload_mod.code_latent(symbols, entry.arch.levels, use_context=profile.context)
    gcz = container.GczFile(
        width=image.width, height=image.height, model_name=entry.name, model_hash=entry.hash_prefix,
        channels=entry.arch.latent_channels, levels=entry.arch.levels, downsampling=tiling.SCALE,
        tables=code.tables, payload=code.payload, realism=stored, context_prior=code.context_prior)
    data = container.write(gcz)
    if not profile.colour:
        return data
    decoded = _synthesize(gcz, entry, net, symbols, realism_mod.resolve(entry, stored, None), noise.DEFAULT_SEED)
    gcz.colour = colour_mod.choose(image.pixels, decoded, len(data))
    return data if gcz.colour is None else container.write(gcz)


def _refined(entry: zoo.ModelEntry, padded: np.ndarray, image: LoadedImage, search: "Search", amortised: bool,
             alpha: float, device: str, context: bool) -> np.ndarray:
    """:func:`gcodec.refine.refine_symbols` for ``entry`` on PyTorch with ``search``'s steps and precision,
    from its amortised encoder (its ``encoder`` head) if ``amortised`` else its own, looking at the decode at ``alpha`` (with the default
    noise seed for a stochastic model), on ``device``; ``context``: the file will be context coded where
    that is smaller, so the rate is estimated per context."""
    import torch

    from .backends.torch_net import TorchNetwork

    net = TorchNetwork.load(entry, device)
    encoder = zoo.load_head(entry, "encoder", device) if amortised else None
    generate = None
    if alpha != realism_mod.FULL_REALISM:
        realism_net = refine_mod.fast_layout(net.realism_generator())
        a = torch.tensor([alpha], dtype=torch.float32, device=device)

        def generate(latent: torch.Tensor) -> torch.Tensor:
            return realism_net(latent, a)
    return refine_mod.refine_symbols(net.model, padded, image.height, image.width, search.steps, generate,
                                     noise.DEFAULT_SEED if entry.stochastic else None,
                                     objective=refine_mod.objective_for(context), encoder=encoder,
                                     bf16=search.bf16)


def _synthesize(gcz: container.GczFile, entry: zoo.ModelEntry, net: Any, symbols: np.ndarray,
                alpha: float, seed: int | None) -> np.ndarray:
    """The generator's image (HEIGHT, WIDTH, 3) uint8 of a GC file's symbols, before any COLOUR."""
    from . import tiling

    latent = net.generator_input(symbols, seed if entry.stochastic else None)
    pixels = tiling.synthesize(realism_mod.generate_at(net, alpha), latent, None if net.tileable else math.inf)
    return pixels[:gcz.height, :gcz.width]


def compress(image: ImageLike, channels: int | None = None, model: str | None = None, device: str = "auto",
             backend: str = "auto", max_pixels: int | None = None, realism: float | None = None,
             selection: "Selection | None" = None, labels: ImageLike | None = None,
             label_cell: int = 8, colour: bool = True, refine_steps: int | None = None,
             context: bool = True, effort: int | None = None) -> bytes:
    """Compress an image (path, bytes, PIL image or uint8 array) to ``.gcz`` bytes.

    With a non-empty ``selection`` the file is selectively compressed
    (:mod:`gcodec.selective`): an SC model (default C = 8) codes the latent only
    where the selection asks to preserve, and the rest is synthesized from the
    label map stored in the file.

    Args:
        image: anything :func:`gcodec.imageio.load_image` accepts.
        channels: latent channels C (2, 4 or 8) choosing the default model.
        model: a registry name overriding ``channels``' default model.
        device: ``auto``, ``cpu`` or ``cuda``.
        backend: ``auto`` (ONNX Runtime when installed), ``onnxruntime`` or ``torch``.
        max_pixels: refuse larger images (default: :mod:`gcodec.limits`).
        realism: default realism in [0, 1] to store in the file (models with a realism head only).
        selection: what to preserve (:class:`gcodec.selective.Selection`); None or empty: plain GC.
        labels: a label image (one class per pixel, the image's size) instead of the automatic label map.
        label_cell: label-map cell side in pixels (1, 2, 4, 8 or 16).
        colour: add a low-frequency colour correction where it pays for its bytes
            (:mod:`gcodec.colour`; plain GC files only). Costs one decode at encode time.
        refine_steps: the expert setting: gradient steps that refine the latent through the decoder from the
            model's own encoder (:mod:`gcodec.refine`; plain GC files only; 0: that encoder's symbols as they
            are; overrides ``effort``; gcz 0.8's encode).
        effort: how hard the encoder searches, 0 (one pass of the amortised encoder) .. :data:`gcodec.effort.MAX_EFFORT`
            (:mod:`gcodec.effort`; plain GC files only; None: ``$GCZ_EFFORT``, else the default level).
        context: code the symbols with context-adaptive models where that is smaller (:mod:`gcodec.context`,
            18 % smaller files, the same image); False writes files that gcz before 0.8 can read.
    """
    selective = selection is not None and not selection.empty
    if not selective and labels is not None:
        raise GczInputError("a label map is only used with a selection of what to preserve")
    entry = resolve_model(channels, model, selective)
    profile = EncodeProfile(realism=realism, colour=colour, context=context, effort=effort,
                            refine_steps=refine_steps, device=device, backend=backend)
    loaded = load_image(image, max_pixels)
    if not selective:
        return compress_loaded(loaded, entry, profile)
    if refine_steps:  # an explicit request (the default does not apply to selective files)
        refine_mod.check_steps(refine_steps)
        raise GczInputError("refinement works on plain files only, not with a selection of what to preserve")
    if realism is not None:
        realism_mod.to_steps(entry, realism)
    from .selective import compress_image
    return compress_image(loaded, entry, selection, labels, label_cell, device, context, max_pixels)


def read_header(data: bytes) -> container.GczFile:
    """Parse and verify a ``.gcz`` file without running any network."""
    return container.read(data)


def decode_symbols(gcz: container.GczFile) -> np.ndarray:
    """Entropy-decode the latent symbols (C, h, w) of a parsed plain (not selective) file."""
    return payload_mod.decode_latent(gcz.payload, gcz.tables, gcz.latent_shape, gcz.context_prior)


def decompress(data: bytes, device: str = "auto", seed: int | None = None, backend: str = "auto",
               max_pixels: int | None = None, realism: float | None = None, colour: bool = True) -> Image.Image:
    """Decode ``.gcz`` bytes to a PIL RGB image of the original size.

    The declared image size is checked against the pixel limit before anything
    of that size is allocated (:mod:`gcodec.limits`).

    Args:
        data: the file's bytes.
        device: ``auto``, ``cpu`` or ``cuda``.
        seed: seed of the generator's noise input (stochastic models; default 0, format_spec.md 8).
        backend: ``auto`` (ONNX Runtime when installed), ``onnxruntime`` or ``torch``; selectively
            compressed files (:mod:`gcodec.selective`) always decode on PyTorch.
        max_pixels: refuse files declaring more pixels (default: :mod:`gcodec.limits`).
        realism: alpha in [0, 1] overriding the file's default (:mod:`gcodec.realism`; without
            either, 1: the model's GAN output).
        colour: apply the file's COLOUR correction, if it has one (False: the generator's raw output).
            It is fitted at the file's default realism and applied only when decoding at that realism.
    """
    from . import backends, tiling

    gcz = container.read(data)
    limits.check_pixels(gcz.width, gcz.height, max_pixels, "declared image")
    entry = zoo.find_model(gcz.model_name, gcz.model_hash)
    if gcz.selective is not None or entry.arch.selective:
        from .selective import decompress_file
        realism_mod.resolve(entry, gcz.realism, realism)  # SC models have no realism head: A < 1 is refused
        return to_pil(_corrected(decompress_file(gcz, entry, device, max_pixels), gcz, colour))
    if (entry.arch.latent_channels, entry.arch.levels) != (gcz.channels, gcz.levels):
        raise GczInputError(f"model {entry.name} does not match the file's latent description")
    if gcz.downsampling != tiling.SCALE:
        raise GczInputError(f"file has downsampling {gcz.downsampling}; model {entry.name} needs {tiling.SCALE}")
    alpha = realism_mod.resolve(entry, gcz.realism, realism)
    seed = noise.check_seed(seed) if entry.stochastic else None
    net = backends.load(entry, backend, device)
    pixels = _synthesize(gcz, entry, net, decode_symbols(gcz), alpha, seed)
    # the grid was fitted to the image at the file's default realism; another realism shifts colours
    # differently (the low-distortion end hardly needs a correction), so it is applied only there
    at_default = alpha == realism_mod.resolve(entry, gcz.realism, None)
    return to_pil(_corrected(pixels, gcz, colour and at_default))


def _corrected(pixels: np.ndarray, gcz: container.GczFile, colour: bool) -> np.ndarray:
    """``pixels`` with the file's COLOUR grid added (format_spec.md 3.9), if any and wanted."""
    return colour_mod.apply(pixels, gcz.colour) if colour and gcz.colour is not None else pixels
