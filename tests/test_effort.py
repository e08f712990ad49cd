"""Effort levels (gcodec.effort), the encode profile (gcodec.profile) and the amortised encoder's encode path."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

import gcodec
from gcodec import codec, effort, refine, zoo
from gcodec.cli import main
from gcodec.errors import GczInputError
from gcodec.imageio import LoadedImage, pad_image, to_unit
from gcodec.profile import EncodeProfile

from conftest import HEADED_MODEL, photo_like


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv(effort.ENV_VAR, raising=False)
    monkeypatch.delenv(refine.ENV_VAR, raising=False)
    return monkeypatch


def test_the_search_follows_argument_then_environment_then_default(clean_env):
    assert effort.search_for() == effort.DEFAULT_SEARCH == effort.Search(amortised=False, steps=refine.DEFAULT_STEPS)
    assert effort.search_for(0) == effort.Search(amortised=True, steps=0)
    assert effort.search_for(3, refine_steps=30) == effort.Search(amortised=False, steps=30)  # expert wins
    clean_env.setenv(refine.ENV_VAR, "12")
    assert effort.search_for() == effort.Search(amortised=False, steps=12)
    clean_env.setenv(effort.ENV_VAR, " 1 ")  # an effort in the environment wins over the older variable
    assert effort.search_for() == effort.LEVELS[1]
    assert effort.search_for(4) == effort.LEVELS[4]
    for bad in ("-1", "x", "1.5", str(effort.MAX_EFFORT + 1)):
        clean_env.setenv(effort.ENV_VAR, bad)
        with pytest.raises(GczInputError, match=effort.ENV_VAR):
            effort.search_for()


def test_levels_search_longer_as_they_rise():
    steps = [level.steps for level in effort.LEVELS]
    assert steps == sorted(steps) and len(set(steps)) == len(steps) and steps[0] == 0
    assert all(level.amortised for level in effort.LEVELS)


@pytest.mark.parametrize("bad", [-1, effort.MAX_EFFORT + 1, 1.0, True, "2", None])
def test_bad_effort_levels_are_refused(bad):
    with pytest.raises(GczInputError, match="effort"):
        effort.check_effort(bad)


def test_profiles_check_their_values_and_name_themselves(clean_env):
    with pytest.raises(GczInputError):
        EncodeProfile(realism=1.5)
    with pytest.raises(GczInputError):
        EncodeProfile(effort=effort.MAX_EFFORT + 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        EncodeProfile().effort = 1
    # the expert setting reads as gcz 0.8's records did, so their evaluation rows stay valid
    assert EncodeProfile(refine_steps=30).describe() == "context refine 30"
    assert EncodeProfile(refine_steps=0, context=False, colour=False).describe() == "no-colour"
    assert EncodeProfile(effort=0).describe() == "context effort 0 (amortised)"
    assert EncodeProfile(effort=2, realism=0.5).describe() == (
        f"context effort 2 (amortised + {effort.LEVELS[2].steps} steps) realism 0.5")
    clean_env.setenv(effort.ENV_VAR, "1")
    fixed = EncodeProfile().resolved()
    assert fixed.effort == 1
    clean_env.delenv(effort.ENV_VAR)
    assert fixed.search() == effort.LEVELS[1]  # the environment no longer matters once resolved
    clean_env.setenv(refine.ENV_VAR, "5")
    assert EncodeProfile().resolved() == EncodeProfile(refine_steps=5)


def _head_symbols(entry: zoo.ModelEntry, pixels: np.ndarray) -> np.ndarray:
    import torch

    encoder = zoo.load_head(entry, "encoder")
    padded = pad_image(pixels, 16, codec.MIN_PADDED_SIDE)
    with torch.no_grad():
        latent = encoder(torch.from_numpy(to_unit(padded)))
    return zoo.load_model(entry).quantizer.symbols(latent)[0].numpy()


def test_effort_zero_codes_the_amortised_encoders_symbols(tiny_weights, clean_env):
    pixels = photo_like(64, 80, seed=3)
    entry = zoo.find_model(HEADED_MODEL)
    fast = codec.compress_loaded(LoadedImage(pixels), entry, EncodeProfile(effort=0, colour=False))
    own = codec.compress_loaded(LoadedImage(pixels), entry, EncodeProfile(refine_steps=0, colour=False))
    fast_symbols = codec.decode_symbols(gcodec.read_header(fast))
    assert np.array_equal(fast_symbols, _head_symbols(entry, pixels))
    assert not np.array_equal(fast_symbols, codec.decode_symbols(gcodec.read_header(own)))
    # the decoder does not know or care which encoder chose the symbols
    assert np.asarray(gcodec.decompress(fast)).shape == (64, 80, 3)


def test_a_model_without_an_encoder_head_searches_from_its_own_encoder(tiny_weights, clean_env, monkeypatch):
    pixels = photo_like(48, 64, seed=4)
    assert "encoder" not in zoo.find_model("gcz-c8").heads
    at_zero = gcodec.compress(pixels, channels=8, effort=0, colour=False)
    assert at_zero == gcodec.compress(pixels, channels=8, refine_steps=0, colour=False)
    calls = []
    real = refine.refine_symbols
    monkeypatch.setattr(refine, "refine_symbols", lambda *a, **k: (calls.append((a[4], k)), real(*a, **k))[1])
    gcodec.compress(pixels, channels=8, effort=1, colour=False)
    (steps, options), = calls
    assert steps == effort.LEVELS[1].steps and options["encoder"] is None and options["bf16"] == effort.LEVELS[1].bf16


def test_the_expert_setting_ignores_the_encoder_head(tiny_weights, clean_env, monkeypatch):
    """--refine N is gcz 0.8's encode: the model's own encoder, whatever heads the model has."""
    pixels = photo_like(48, 64, seed=5)
    with_head = gcodec.compress(pixels, channels=4, refine_steps=2, colour=False)
    entry = zoo.find_model(HEADED_MODEL)
    monkeypatch.setattr(zoo.ModelEntry, "heads", property(lambda self: {}), raising=False)
    try:
        without = codec.compress_loaded(LoadedImage(pixels), entry, EncodeProfile(refine_steps=2, colour=False))
    finally:
        monkeypatch.undo()
    assert with_head == without


def test_compress_cli_takes_an_effort_and_records_the_profile(tiny_weights, clean_env, photo_file, tmp_path):
    out = tmp_path / "p.gcz"
    result = CliRunner().invoke(main, ["compress", str(photo_file), "-c", "4", "--effort", "0", "-o", str(out),
                                       "--json", "--no-colour"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.strip().splitlines()[-1])
    assert record["encoder"] == "amortised" and record["refine_steps"] == 0
    assert record["profile"] == "context no-colour effort 0 (amortised)"
    entry = zoo.find_model(HEADED_MODEL)
    pixels = np.asarray(gcodec.imageio.load_image(str(photo_file)).pixels)
    assert out.read_bytes() == codec.compress_loaded(LoadedImage(pixels), entry, EncodeProfile(effort=0, colour=False))
    bad = CliRunner().invoke(main, ["compress", str(photo_file), "--effort", str(effort.MAX_EFFORT + 1),
                                    "-o", str(tmp_path / "q.gcz")])
    assert bad.exit_code == 2 and not (tmp_path / "q.gcz").exists()
    selective = CliRunner().invoke(main, ["compress", str(photo_file), "--effort", "1", "--preserve-box", "0,0,8,8",
                                          "-o", str(tmp_path / "s.gcz")])
    assert selective.exit_code != 0 and "plain files only" in selective.output
