"""The realism slider: which alpha a decode runs at, and how a file stores its default.

alpha = 1 is the model's GAN output (what every file decoded to before this
existed), alpha = 0 its low-distortion reconstruction from the ORP head
(:mod:`gcodec.models.orp`).  The encoder may store a default in the optional
REALISM section (format_spec.md 3.6, in 1/100 steps); the decoder's request
overrides it; files without it decode at 1.
"""
from __future__ import annotations

from functools import partial
from typing import Any

from .container import REALISM_STEPS
from .errors import GczInputError, GczModelError
from .zoo import ModelEntry

#: The realism a file decodes at when neither it nor the caller says otherwise.
FULL_REALISM = 1.0


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float in [0, 1]; GczInputError otherwise."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise GczInputError(f"--realism takes a number between 0 and 1, not {alpha!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise GczInputError(f"--realism must be between 0 and 1, not {alpha}")
    return value


def to_steps(entry: ModelEntry, alpha: float) -> int:
    """The REALISM byte an encoder stores for ``alpha`` (refused for a model without a realism head)."""
    value = check_alpha(alpha)
    if not entry.supports_realism:
        raise GczModelError(f"model {entry.name} has no realism head (ORP), so a file cannot store a realism")
    return round(value * REALISM_STEPS)


def resolve(entry: ModelEntry, stored_steps: int | None, requested: float | None) -> float:
    """The alpha to decode at: the caller's request, else the file's default, else 1."""
    if requested is not None:
        alpha = check_alpha(requested)
    elif stored_steps is not None:
        alpha = stored_steps / REALISM_STEPS
    else:
        alpha = FULL_REALISM
    if alpha < FULL_REALISM and not entry.supports_realism:
        source = "--realism" if requested is not None else "the file's stored realism"
        raise GczModelError(f"model {entry.name} has no realism head (ORP), so {source} {alpha:g} cannot be "
                            f"decoded; use --realism 1")
    return alpha


def generate_at(net: Any, alpha: float) -> Any:
    """The generate callable of a backend network (:mod:`gcodec.backends`) at realism ``alpha``:
    the plain generator at 1 (the GAN output exactly), the one with the realism head below."""
    return net.generate if alpha == FULL_REALISM else partial(net.generate_realism, alpha=alpha)
