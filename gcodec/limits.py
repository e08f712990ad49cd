"""Resource limits against hostile inputs: the largest image gcz encodes or decodes.

A ``.gcz`` file of two kilobytes can declare 65535 x 65535 pixels (a skewed
frequency table codes millions of symbols in a few bytes), and a PNG of one
megabyte can hold 30000 x 30000 pixels of one colour.  Both are refused from
their headers, before anything of their size is allocated, when their pixel
count exceeds the limit.

The limit, in order of precedence: the ``max_pixels`` argument (the CLI's
``--max-pixels``), the ``GCZ_MAX_PIXELS`` environment variable (for services),
then :data:`DEFAULT_MAX_PIXELS`.

Input files are bounded in bytes too (:func:`max_input_bytes`): a reader stops
at the limit instead of growing with ``/dev/zero`` or an endless pipe.
"""
from __future__ import annotations

import os
import re

from .errors import GczInputError, GczLimitError

#: 2^27 = 134,217,728 pixels: 100-megapixel medium-format frames (11648 x 8736) and
#: 16384 x 8192 panoramas fit; decoding one at the limit stays near 1.5 GB of memory.
DEFAULT_MAX_PIXELS = 1 << 27
ENV_VAR = "GCZ_MAX_PIXELS"
#: The largest pixel limit that means anything: the format's largest image, 65535 x 65535.
MAX_PIXEL_LIMIT = 65535 * 65535
#: Largest input image file (any format) in bytes: 1 GiB holds a 2^27-pixel 16-bit TIFF.
DEFAULT_MAX_IMAGE_BYTES = 1 << 30
#: Largest ``.gcz`` input in bytes: a file at the default pixel limit holds a few megabytes.
DEFAULT_MAX_GCZ_BYTES = 64 << 20
INPUT_BYTES_ENV_VAR = "GCZ_MAX_INPUT_BYTES"
_DIGITS = re.compile(r"[0-9][0-9_]*\Z")


def max_pixels(override: int | None = None) -> int:
    """The pixel limit in force: ``override``, else ``$GCZ_MAX_PIXELS``, else the default."""
    if override is not None:
        if not 1 <= override <= MAX_PIXEL_LIMIT:
            raise GczInputError(f"--max-pixels must be a positive integer up to {MAX_PIXEL_LIMIT}, not {override}")
        return int(override)
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    return parse_count(raw, ENV_VAR, MAX_PIXEL_LIMIT)


def parse_count(raw: str, what: str, maximum: int) -> int:
    """A positive integer of ASCII digits (``_`` allowed between them) up to ``maximum``, else GczInputError."""
    if not _DIGITS.match(raw) or int(raw.replace("_", "")) < 1:
        raise GczInputError(f"{what} must be a positive integer, not {raw!r}")
    value = int(raw.replace("_", ""))
    if value > maximum:
        raise GczInputError(f"{what} must be at most {maximum}, not {raw!r}")
    return value


def max_input_bytes(kind: str = "image") -> int:
    """The byte limit on one input file: ``$GCZ_MAX_INPUT_BYTES``, else the default of ``kind``
    (``image``: :data:`DEFAULT_MAX_IMAGE_BYTES`, ``gcz``: :data:`DEFAULT_MAX_GCZ_BYTES`)."""
    raw = os.environ.get(INPUT_BYTES_ENV_VAR, "").strip()
    if raw:
        return parse_count(raw, INPUT_BYTES_ENV_VAR, 1 << 40)
    return DEFAULT_MAX_GCZ_BYTES if kind == "gcz" else DEFAULT_MAX_IMAGE_BYTES


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


#: Selective files are synthesized in one piece, about 300 bytes of memory per pixel (plain files go
#: through tiles, about 11): they may use this fraction of the pixel limit, so that both stay near the
#: same memory (about 1.2 GB at the default limit).
SELECTIVE_SHARE = 32


def check_selective_pixels(width: int, height: int, limit: int | None = None, what: str = "selective image") -> None:
    """Raise :class:`GczLimitError` if a selectively compressed image exceeds 1/:data:`SELECTIVE_SHARE`
    of the pixel limit (``limit`` or :func:`max_pixels`')."""
    allowed = max(1, max_pixels(limit) // SELECTIVE_SHARE)
    if width * height > allowed:
        raise GczLimitError(
            f"{what} of {width}x{height} ({width * height / 1e6:.1f} megapixels) exceeds the limit of selective "
            f"files, 1/{SELECTIVE_SHARE} of the pixel limit: {allowed} pixels (they are synthesized in one "
            f"piece); raise it with --max-pixels or {ENV_VAR}")
