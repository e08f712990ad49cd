"""Images from sampled codes (gcodec.sampling): sizes, seeds, methods, errors."""
from __future__ import annotations

import numpy as np
import pytest

from gcodec import sampling, zoo
from gcodec.errors import GczInputError, GczLimitError, GczModelError

from conftest import HEADED_MODEL


@pytest.mark.parametrize("method", sampling.METHODS)
def test_symbols_are_valid_and_seeded(tiny_weights, method):
    entry = zoo.find_model(HEADED_MODEL)
    a = sampling.sample_symbols(entry, method, 100, 40, seed=3)
    assert a.shape == (4, 3, 7) and a.dtype == np.int64 and a.min() >= 0 and a.max() < 5
    assert np.array_equal(a, sampling.sample_symbols(entry, method, 100, 40, seed=3))
    big = sampling.sample_symbols(entry, method, 512, 512, seed=4)
    assert not np.array_equal(big, sampling.sample_symbols(entry, method, 512, 512, seed=5))


def test_images_have_the_requested_size(tiny_weights):
    entry = zoo.find_model(HEADED_MODEL)
    images = list(sampling.sample_images(entry, 3, 70, 40, seed=1, method="sampler"))
    assert [im.shape for im in images] == [(40, 70, 3)] * 3 and images[0].dtype == np.uint8
    assert not np.array_equal(images[0], images[1])
    again = next(sampling.sample_images(entry, 1, 70, 40, seed=1, method="sampler"))
    assert np.array_equal(again, images[0])
    low = next(sampling.sample_images(entry, 1, 70, 40, seed=1, method="sampler", realism=0.0))
    assert not np.array_equal(low, images[0])


def test_errors_come_before_any_work(tiny_weights):
    plain = zoo.find_model("gcz-c8")
    with pytest.raises(GczModelError, match="sampler"):
        sampling.sample_images(plain, 1, 64, 64, method="sampler")
    entry = zoo.find_model(HEADED_MODEL)
    with pytest.raises(GczInputError, match="-n"):
        sampling.sample_images(entry, 0, 64, 64)
    with pytest.raises(GczLimitError):
        sampling.sample_images(entry, 1, 60000, 60000)
    with pytest.raises(GczInputError, match="method"):
        sampling.sample_images(entry, 1, 64, 64, method="magic")
    for bad in ("64", "axb", "8x8", "64x70000"):
        with pytest.raises(GczInputError, match="size"):
            sampling.parse_size(bad)
    assert sampling.parse_size("640X480") == (640, 480)


def test_a_model_without_a_sampler_hands_over_to_one_of_its_channels_that_has_one(tiny_weights, monkeypatch):
    import dataclasses

    headed = zoo.find_model(HEADED_MODEL)
    bare = dataclasses.replace(headed, name="bare-c4", heads={})
    assert sampling.model_with_sampler(headed) is headed
    monkeypatch.setattr(zoo, "list_models", lambda: [bare, headed])
    assert sampling.model_with_sampler(bare) is headed
    monkeypatch.setattr(zoo, "list_models", lambda: [bare])
    with pytest.raises(GczInputError, match="--uniform"):
        sampling.model_with_sampler(bare)


def test_gcz_sample_works_with_the_default_model_even_without_its_own_sampler(tmp_path):
    """The shipped default C = 4 model has no sampler; the command takes the one that has and says so."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "GCZ_WEIGHTS": ""}  # the shipped weights only
    done = subprocess.run([sys.executable, "-m", "gcodec.cli", "sample", "-n", "1", "--size", "64x48", "-o",
                           str(tmp_path / "s"), "--backend", "torch"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    import json

    shipped = json.loads((zoo.SHIPPED_DIR / "manifest.json").read_text())
    if "sampler" not in shipped["models"][shipped["defaults"]["4"]].get("heads", {}):
        assert "no trained latent sampler" in done.stderr
    assert (tmp_path / "s" / "sample-0000.png").is_file()
