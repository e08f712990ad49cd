"""Resource limits against hostile inputs: the largest image gcz encodes or decodes.

A ``.gcz`` file of two kilobytes can declare 65535 x 65535 pixels (a skewed
frequency table codes millions of symbols in a few bytes), and a PNG of one
megabyte can hold 30000 x 30000 pixels of one colour.  Both are refused from
their headers, before anything of their size is allocated, when their pixel
count exceeds the limit.

The limit, in order of precedence: the ``max_pixels`` argument (the CLI's
``--max-pixels``), the ``GCZ_MAX_PIXELS`` environment variable (for services),
then :data:`DEFAULT_MAX_PIXELS`.
"""
from __future__ import annotations

import os

from .errors import GczInputError, GczLimitError

#: 2^27 = 134,217,728 pixels: 100-megapixel medium-format frames (11648 x 8736) and
#: 16384 x 8192 panoramas fit; decoding one at the limit stays near 1.5 GB of memory.
DEFAULT_MAX_PIXELS = 1 << 27
ENV_VAR = "GCZ_MAX_PIXELS"


def max_pixels(override: int | None = None) -> int:
    """The pixel limit in force: ``override``, else ``$GCZ_MAX_PIXELS``, else the default."""
    if override is not None:
        if override < 1:
            raise GczInputError(f"--max-pixels must be a positive integer, not {override}")
        return int(override)
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise GczInputError(f"{ENV_VAR} must be a positive integer, not {raw!r}") from None
    if value < 1:
        raise GczInputError(f"{ENV_VAR} must be a positive integer, not {raw!r}")
    return value


def check_pixels(width: int, height: int, limit: int | None = None, what: str = "image") -> None:
    """Raise :class:`GczLimitError` if ``width`` x ``height`` exceeds the pixel limit.

    Args:
        width, height: the size to check (as declared by a header, before any allocation).
        limit: explicit limit, else :func:`max_pixels`'s.
        what: how the message names the image (e.g. a file name).
    """
    allowed = max_pixels(limit)
    if width * height > allowed:
        raise GczLimitError(
            f"{what} of {width}x{height} ({width * height / 1e6:.1f} megapixels) exceeds the pixel limit of "
            f"{allowed} ({allowed / 1e6:.1f} megapixels); raise it with --max-pixels or {ENV_VAR}")
