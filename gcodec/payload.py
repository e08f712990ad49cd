"""The latent's code in a file: TABLES + PAYLOAD, static (format_spec.md 5) or with contexts (5.2).

The encoder codes the symbols both ways and keeps the smaller: the context code
(:mod:`gcodec.context`) costs a 4-byte CONTEXT section and an old reader's support
(gcz < 0.8 refuses such files), the static code is what every gcz reads.  The
decoder follows the file.  Used by plain and selective files alike.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import container, context, entropy
from .entropy import FrequencyTables

#: Bytes a CONTEXT section takes in the file (TYPE, FLAGS, LENGTH, one byte of body).
CONTEXT_SECTION_BYTES = 4
#: Table precision of the context code: its tables only start the models, and coarse ones cost
#: fewer bytes (P = 4 codes the photo pool 0.5-0.9 % smaller than the static code's best P).
CONTEXT_PRECISION = 4


@dataclass(frozen=True)
class CodedLatent:
    """What TABLES, PAYLOAD and CONTEXT hold for one latent.

    Attributes:
        tables: the per-channel tables (the static code, or the context models' start).
        payload: the range-coded symbols.
        context_prior: the CONTEXT section's prior weight; None for the static code.
    """

    tables: FrequencyTables
    payload: bytes
    context_prior: int | None


def code_latent(symbols: np.ndarray, levels: int, coded: np.ndarray | None = None,
                use_context: bool = True) -> CodedLatent:
    """The smaller code of ``symbols`` (C, h, w); ``coded`` (h, w) bool codes only those positions
    (selective files).  ``use_context=False`` writes the static code that every gcz reads."""
    symbols = np.asarray(symbols, dtype=np.int64)
    stream = symbols if coded is None else symbols[:, coded]
    tables = entropy.best_tables(stream, levels)
    static = CodedLatent(tables, entropy.encode(stream, tables), None)
    if not use_context or stream.shape[1] == 0:
        return static
    prior = context.DEFAULT_PRIOR
    start = entropy.tables_for(stream, levels, CONTEXT_PRECISION)
    adaptive = CodedLatent(start, context.encode(symbols, start, prior, coded), prior)
    return adaptive if _bytes(adaptive) < _bytes(static) else static


def _bytes(code: CodedLatent) -> int:
    """Bytes of TABLES' body, PAYLOAD's body and a CONTEXT section (section headers of the first
    two are the same for both codes, but for a LENGTH field's size)."""
    return (len(container.pack_tables(code.tables)) + len(code.payload)
            + (0 if code.context_prior is None else CONTEXT_SECTION_BYTES))


def decode_latent(payload: bytes, tables: FrequencyTables, shape: tuple[int, int, int],
                  context_prior: int | None, coded: np.ndarray | None = None) -> np.ndarray:
    """The symbols (C, h, w) of a PAYLOAD; with ``coded`` the centre symbol where it is False.

    Any payload decodes to some symbols; integrity is the container's CRC32's job.
    """
    if context_prior is not None:
        return context.decode(payload, tables, shape, context_prior, coded)
    if coded is None:
        return entropy.decode(payload, tables, shape)
    symbols = np.full(shape, tables.levels // 2, np.int64)
    count = int(coded.sum())
    if count:
        symbols[:, coded] = entropy.decode(payload, tables, (shape[0], count))
    return symbols
