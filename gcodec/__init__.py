"""gcz: generative image compression at extreme bitrates (0.02-0.1 bpp).

Library API::

    import gcodec
    data = gcodec.compress("photo.jpg", channels=4)   # -> bytes of a .gcz file
    image = gcodec.decompress(data)                  # -> PIL.Image.Image
    header = gcodec.read_header(data)                # no network is run
"""
from __future__ import annotations

from .codec import compress, decompress, read_header
from .errors import GczEntropyError, GczError, GczFormatError, GczInputError, GczLimitError, GczModelError
from .version import __version__

__all__ = ["compress", "decompress", "read_header", "GczError", "GczFormatError", "GczModelError",
           "GczInputError", "GczLimitError", "GczEntropyError", "__version__"]
