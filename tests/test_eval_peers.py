"""Peer codecs and the per-image search for a byte target."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import photo_like
from gcodec.errors import GczInputError
from gcodec.eval import peers
from gcodec.eval.peers import Knob, match_size


def fake_codec(curve):
    """size_at(value, mode) from ``curve(value, mode)``, counting calls."""
    calls = []

    def size_at(value, mode):
        calls.append((value, mode))
        return int(curve(value, mode))
    return size_at, calls


def test_integer_knob_finds_the_closest_size():
    size_at, calls = fake_codec(lambda q, m: 100 + 37 * q)  # q = 0..100 -> 100..3800 bytes
    result = match_size(size_at, 1000, [Knob("-q", 0, 100)])
    # 100 + 37 * 24 = 988 is the closest (1025 at q=25)
    assert (result.value, result.size, result.status, result.reached) == (24.0, 988, "ok", True)
    assert result.evaluations == len(calls) <= 12
    assert len(set(calls)) == len(calls)  # no setting is encoded twice


def test_decreasing_log_float_knob():
    size_at, _ = fake_codec(lambda d, m: 50_000 / d)  # JPEG XL-like: larger distance, smaller file
    knob = Knob("-d", 0.1, 25.0, integer=False, increasing=False, log=True)
    result = match_size(size_at, 4321, [knob])
    assert result.reached and abs(result.rel_error) < 0.005
    assert result.value == pytest.approx(50_000 / 4321, rel=0.01)


def test_target_below_the_smallest_file_is_reported_not_substituted():
    size_at, calls = fake_codec(lambda q, m: 2000 + 10 * q)
    result = match_size(size_at, 500, [Knob("-q", 0, 100)])
    assert result.status == "above" and not result.reached
    assert (result.value, result.size) == (0.0, 2000)  # the closest achievable, flagged
    assert len(calls) == 1


def test_target_above_the_largest_file():
    size_at, _ = fake_codec(lambda q, m: 100 + q)
    result = match_size(size_at, 10_000, [Knob("-q", 0, 100)])
    assert result.status == "below" and result.size == 200


def test_within_tolerance_but_not_exact_is_ok():
    size_at, _ = fake_codec(lambda q, m: 1000 * 2 ** (q / 10))  # coarse steps of ~7%
    result = match_size(size_at, 1500, [Knob("-q", 0, 100)], tolerance=0.05)
    assert result.reached and abs(result.rel_error) <= 0.05


def test_coarse_parameter_gap_is_flagged():
    size_at, _ = fake_codec(lambda q, m: 1000 if q < 50 else 3000)
    result = match_size(size_at, 2000, [Knob("-q", 0, 100)])
    assert result.status == "gap" and not result.reached
    assert result.size in (1000, 3000)


def test_next_mode_used_only_when_the_first_cannot_get_small_enough():
    def curve(d, mode):
        return (60_000 if mode == 0 else 15_000) / d
    knobs = [Knob("-d", 1.0, 25.0, integer=False, increasing=False, log=True),
             Knob("-d", 1.0, 25.0, integer=False, increasing=False, log=True, extra=("--resampling=4",))]
    size_at, calls = fake_codec(curve)
    low = match_size(size_at, 1000, knobs)  # mode 0 bottoms out at 2400 bytes
    assert low.mode == 1 and low.reached
    assert knobs[low.mode].describe(low.value).endswith("--resampling=4")
    size_at, calls = fake_codec(curve)
    high = match_size(size_at, 5000, knobs)
    assert high.mode == 0 and high.reached and all(m == 0 for _, m in calls)


def test_non_monotone_codec_still_returns_the_closest_seen():
    size_at, _ = fake_codec(lambda q, m: 100 * q + (500 if q == 13 else 0))
    result = match_size(size_at, 1300, [Knob("-q", 0, 100)])
    assert result.size == min((abs(s - 1300), s) for _, _, s in result.tried)[1]


def test_bad_target():
    with pytest.raises(GczInputError):
        match_size(lambda v, m: 1, 0, [Knob("-q", 0, 10)])


def test_knob_value_mapping():
    k = Knob("-q", 0, 100)
    assert (k.value(0.0), k.value(1.0)) == (0.0, 100.0)
    dec = Knob("--max", 0, 63, increasing=False)
    assert (dec.value(0.0), dec.value(1.0)) == (63.0, 0.0)  # u = 0 -> smallest file
    lg = Knob("-r", 1.0, 10_000.0, integer=False, increasing=False, log=True)
    assert lg.value(0.5) == pytest.approx(100.0)
    assert lg.describe(123.456) == "-r 123.5"


def test_unknown_codec():
    with pytest.raises(GczInputError):
        peers.get_peer("bpg")


def test_jpeg_via_pillow_matches_a_real_target():
    img = photo_like(64, 96)
    target = len(peers.PEERS["jpeg"].encode(img, 30))
    enc = peers.encode_to_size(peers.PEERS["jpeg"], img, target)
    assert enc.match.reached and enc.decoded.shape == img.shape
    assert enc.encoding_time >= 0 and enc.decoding_time >= 0
    assert len(enc.data) == enc.match.size


@pytest.mark.parametrize("name", [n for n in peers.PEERS if peers.PEERS[n].tools])
def test_command_line_peer_roundtrip(name):
    codec = peers.PEERS[name]
    if codec.missing_tools():
        pytest.skip(f"{name}: {', '.join(codec.missing_tools())} not installed ({codec.install_hint()})")
    img = photo_like(64, 96)
    knob = codec.knobs[0]
    lo, hi = (knob.value(0.0), knob.value(1.0))
    small, large = len(codec.encode(img, lo)), len(codec.encode(img, hi))
    assert small < large
    target = int(math.sqrt(small * large))
    enc = peers.encode_to_size(codec, img, target)
    assert enc.decoded.shape == img.shape and enc.decoded.dtype == np.uint8
    assert enc.match.size == len(enc.data)
    assert enc.match.status in ("ok", "gap")
