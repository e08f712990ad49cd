"""Typed errors of the gcz library.

Library code raises these; only the command-line boundary (:mod:`gcodec.cli`)
turns them into one-line ``gcz: error: ...`` messages.
"""
from __future__ import annotations


class GczError(Exception):
    """Base class of every error gcz reports to users."""


class GczFormatError(GczError):
    """A ``.gcz`` file is truncated, corrupted, of an unknown version or malformed."""


class GczModelError(GczError):
    """A model is unknown, its weights are missing or fail their checksum."""


class GczInputError(GczError):
    """An input image or argument cannot be used."""


class GczEntropyError(GczError):
    """Symbols or frequency tables are invalid for the entropy coder."""


class GczLimitError(GczInputError):
    """An image (to encode, or declared by a ``.gcz`` file) exceeds the configured resource limit."""
