"""The package's version is the one the distribution declares."""
from __future__ import annotations

import re
from pathlib import Path

import gcodec
from gcodec.version import __version__


def test_version_matches_pyproject():
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1)
    assert __version__ == declared == gcodec.__version__
