"""Person segmentation (optional MediaPipe extra): the error without it, silenced native banners."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gcodec.errors import GczInputError
from gcodec.selective import person


def test_native_stderr_is_silenced_and_restored():
    code = ("import os; from gcodec.selective import person\n"
            "with person._quiet_native_stderr():\n    os.write(2, b'TFLite banner\\n')\n"
            "os.write(2, b'after\\n')\n")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60).stderr.decode()
    assert "TFLite banner" not in err and "after" in err


@pytest.mark.skipif(person.available(), reason="MediaPipe is installed")
def test_missing_extra_is_a_clear_error():
    with pytest.raises(GczInputError, match=r"pip install 'gcz\[person\]'"):
        person.person_mask(np.zeros((32, 32, 3), np.uint8))


@pytest.mark.skipif(not person.available(), reason="needs pip install 'gcz[person]'")
def test_no_person_in_a_flat_image():
    with pytest.raises(GczInputError, match="no person"):
        person.person_mask(np.full((64, 64, 3), 90, np.uint8))
