"""The encode profile: every option of a plain encode, built once and passed whole.

The CLI (one set of click options, :func:`gcodec.cli_common.encode_options`),
the library (:func:`gcodec.compress`), ``gcz eval`` and ``gcz bench`` each
build one :class:`EncodeProfile` and hand it to
:func:`gcodec.codec.compress_loaded`; records name it with
:meth:`EncodeProfile.describe` instead of rebuilding a command line.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from . import effort as effort_mod
from . import refine
from .realism import check_alpha


@dataclass(frozen=True)
class EncodeProfile:
    """How to encode (the model is chosen separately, :func:`gcodec.codec.resolve_model`).

    Attributes:
        realism: default realism in [0, 1] stored in the file (models with a realism head); None: none.
        colour: add the COLOUR correction where it pays for its bytes (:mod:`gcodec.colour`).
        context: context-adaptive code where smaller (:mod:`gcodec.context`); False: what gcz < 0.8 reads.
        effort: effort level (:mod:`gcodec.effort`); None: ``$GCZ_EFFORT``, else the default level.
        refine_steps: the expert setting: refinement steps from the model's own encoder, overriding
            ``effort`` (gcz 0.8's encode); None: decided by the effort level.
        device: ``auto``, ``cpu`` or ``cuda``.
        backend: ``auto``, ``onnxruntime`` or ``torch`` (where the networks run when not refining).
    """

    realism: float | None = None
    colour: bool = True
    context: bool = True
    effort: int | None = None
    refine_steps: int | None = None
    device: str = "auto"
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.realism is not None:
            check_alpha(self.realism)
        if self.effort is not None:
            effort_mod.check_effort(self.effort)
        if self.refine_steps is not None:
            refine.check_steps(self.refine_steps)

    def search(self) -> effort_mod.Search:
        """How the symbols are found (:func:`gcodec.effort.search_for`, environment included)."""
        return effort_mod.search_for(self.effort, self.refine_steps)

    def resolved(self) -> EncodeProfile:
        """This profile with the environment's defaults made explicit (so it reads the same anywhere)."""
        if self.refine_steps is not None or self.effort is not None:
            return self
        found = self.search()
        if not found.amortised:
            return replace(self, refine_steps=found.steps)
        return replace(self, effort=effort_mod.LEVELS.index(found))

    def describe(self) -> str:
        """The options that decide the bytes, e.g. ``context effort 2 (amortised + 8 steps)`` or, for the
        expert setting, ``context refine 30`` (the words gcz 0.8's records used)."""
        found = self.search()
        words = [w for w, on in (("context", self.context), ("no-colour", not self.colour)) if on]
        if not found.amortised:
            words += [f"refine {found.steps}"] if found.steps else []
        else:
            level = self.effort if self.effort is not None else effort_mod.LEVELS.index(found)
            words.append(f"effort {level} ({found.describe()})")
        if self.realism is not None:
            words.append(f"realism {self.realism:g}")
        return " ".join(words)
