"""Training data: the offline photo pool built from Debian packages.

See :func:`fetch_photo_pool` (``gcodec.data.fetch``) and the pure-Python
archive readers in ``gcodec.data.archives``.
"""

from gcodec.data.fetch import fetch_photo_pool

__all__ = ["fetch_photo_pool"]
