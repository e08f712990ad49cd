"""Effort levels: how hard the encoder searches for a photo's symbols.

Like ``cjxl -e`` or ``avifenc -s``, ``gcz compress --effort N`` trades encode
time for quality without changing the decoder or the format.  A level is a
combination of two things:

* **the encoder**: the model's *amortised encoder* (its ``encoder`` head,
  :mod:`gcodec.train.encoder`: E fine-tuned on the refinement's own
  objective, so one pass lands near where a refinement would end) where the
  model ships one, else the model's own encoder;
* **refinement steps** (:mod:`gcodec.refine`) that start from the encoder's
  latent.

``--refine N`` (and ``$GCZ_REFINE_STEPS``) stay for experts: N steps from the
model's *own* encoder, exactly what gcz 0.8 did (the same bytes for the same
options).
"""
from __future__ import annotations

import operator
import os
from dataclasses import dataclass

from . import refine
from .errors import GczInputError

#: Environment variable setting the default effort level.
ENV_VAR = "GCZ_EFFORT"


@dataclass(frozen=True)
class Search:
    """What an encode does to find its symbols."""

    #: Start from the model's amortised encoder (if it ships one) rather than its own.
    amortised: bool
    #: Refinement steps from there (:func:`gcodec.refine.refine_symbols`).
    steps: int
    #: Refine in bfloat16 where the machine computes it natively (:func:`gcodec.refine.bf16_native`).
    bf16: bool = False

    def describe(self) -> str:
        """A short name for records: ``amortised + 8 steps``, ``refine 30``."""
        if not self.amortised:
            return f"refine {self.steps}" if self.steps else "encoder"
        return "amortised" + (f" + {self.steps} steps" if self.steps else "")


#: The levels, fastest first: the amortised encoder alone, then more and more refinement from it.
LEVELS: tuple[Search, ...] = (
    Search(amortised=True, steps=0),
    Search(amortised=True, steps=4, bf16=True),
    Search(amortised=True, steps=8, bf16=True),
    Search(amortised=True, steps=16, bf16=True),
    Search(amortised=True, steps=30, bf16=True),
    Search(amortised=True, steps=60, bf16=True),
)
MAX_EFFORT = len(LEVELS) - 1
#: The search of an encode that names no effort: gcz 0.8's (the model's own encoder, 30 float32 steps, the
#: same bytes), until a faster level is shown by blind preference not to lose to it.
DEFAULT_SEARCH = Search(amortised=False, steps=refine.DEFAULT_STEPS)


def check_effort(effort: int) -> int:
    """``effort`` as an int in 0..:data:`MAX_EFFORT`; GczInputError otherwise."""
    try:
        value = operator.index(effort)
    except TypeError:
        value = -1
    if isinstance(effort, bool) or not 0 <= value <= MAX_EFFORT:
        raise GczInputError(f"effort must be an integer from 0 to {MAX_EFFORT}, not {effort!r}")
    return value


def search_for(effort: int | None = None, refine_steps: int | None = None) -> Search:
    """The search of an encode: ``refine_steps`` (the expert setting: the model's own encoder and that many
    steps) if given, else ``effort``, else ``$GCZ_EFFORT``, else ``$GCZ_REFINE_STEPS`` (as ``refine_steps``),
    else :data:`DEFAULT_SEARCH`."""
    if refine_steps is not None:
        return Search(amortised=False, steps=refine.check_steps(refine_steps))
    if effort is not None:
        return LEVELS[check_effort(effort)]
    raw = os.environ.get(ENV_VAR, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) > MAX_EFFORT:
            raise GczInputError(f"{ENV_VAR} must be an integer from 0 to {MAX_EFFORT}, not {raw!r}")
        return LEVELS[int(raw)]
    if os.environ.get(refine.ENV_VAR, "").strip():
        return Search(amortised=False, steps=refine.steps_in_force())
    return DEFAULT_SEARCH
