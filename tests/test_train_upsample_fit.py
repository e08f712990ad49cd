"""Carrying a transposed-upsampling generator over to resize-convolutions."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from gcodec.models import GCModel, named_config
from gcodec.models.upsampling import ResizeConv2d, convert_generator_state, transposed_weight_keys
from gcodec.train.upsample_fit import fit_resize_upsampling


def _pair(seed: int = 0) -> tuple[GCModel, GCModel]:
    torch.manual_seed(seed)
    cfg = dataclasses.replace(named_config("tiny", 4), width=0.125)
    old = GCModel(cfg).eval()
    for p in old.generator.parameters():  # a generator that does something (SkipInit starts at identity)
        p.data.add_(torch.randn_like(p) * 0.05)
    new = GCModel(dataclasses.replace(cfg, upsample="resize")).eval()
    new.load_state_dict(convert_generator_state(old.state_dict(), transposed_weight_keys(old)))
    return old, new


def _latents(n: int, seed: int) -> list[torch.Tensor]:
    """Spatially smooth latents, as photos give (white-noise latents are what the plain conversion fits)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = [torch.rand(1, 4, 3, 3, generator=gen) * 4 - 2 for _ in range(n)]
    return [torch.nn.functional.interpolate(c, size=(8, 8), mode="bilinear").round() for c in coarse]


def _first_up(gen: torch.nn.Module) -> int:
    return next(i for i, b in enumerate(gen.net) if isinstance(b, torch.nn.Sequential)
                and isinstance(b[0], (torch.nn.ConvTranspose2d, ResizeConv2d)))


def test_fit_matches_the_old_upsampling_on_its_latents_better_than_the_white_noise_conversion():
    old, new = _pair()
    latents = _latents(24, seed=1)
    i = _first_up(old.generator)
    with torch.no_grad():
        feats = torch.cat([old.generator.net[:i](z) for z in latents])
        target = old.generator.net[i][1](old.generator.net[i][0](feats))   # before the ReLU
        converted = new.generator.net[i][1](new.generator.net[i][0](feats))
    residuals = fit_resize_upsampling(old.generator, new.generator, latents)
    with torch.no_grad():
        fitted = new.generator.net[i][1](new.generator.net[i][0](feats))
    assert len(residuals) == 4 and all(0 <= r < 1 for r in residuals)
    assert (fitted - target).pow(2).mean() < 0.9 * (converted - target).pow(2).mean()


def test_fit_touches_only_the_upsampling_blocks():
    old, new = _pair(seed=3)
    kept = {k: v.clone() for k, v in new.state_dict().items()}
    fit_resize_upsampling(old.generator, new.generator, _latents(8, seed=2))
    state = new.state_dict()
    up_blocks = {f"generator.net.{i}." for i, block in enumerate(new.generator.net)
                 if isinstance(block, torch.nn.Sequential) and isinstance(block[0], ResizeConv2d)}
    assert len(up_blocks) == 4
    for key, value in kept.items():
        if not any(key.startswith(b) for b in up_blocks):
            assert torch.equal(state[key], value), key


def test_fit_refuses_generators_that_do_not_pair():
    old, _ = _pair()
    with pytest.raises(ValueError, match="resize"):
        fit_resize_upsampling(old.generator, old.generator, _latents(2, seed=0))
