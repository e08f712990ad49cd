"""The grid measure: periodic energy per period, ratios and the training penalty."""
from __future__ import annotations

import math

import pytest
import torch

from gcodec.grid import PERIODS, grid_energy, grid_excess, grid_ratios, luminance


def _smooth(h: int = 128, w: int = 192, seed: int = 0) -> torch.Tensor:
    """A smooth random image (N, 3, H, W) in [0, 1]: low-frequency noise, upsampled bilinearly."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, h // 16, w // 16, generator=gen)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)


def _pattern(period: int, h: int = 128, w: int = 192) -> torch.Tensor:
    """A pattern of exactly ``period`` px along both axes (zero mean), the same in every channel."""
    y = torch.arange(h).view(-1, 1) % period
    x = torch.arange(w).view(1, -1) % period
    base = torch.cos(2 * math.pi * y / period) + torch.cos(2 * math.pi * x / period)
    return base.expand(1, 3, h, w).float()


@pytest.mark.parametrize("period", PERIODS)
def test_a_pattern_shows_at_its_own_period_only(period):
    energy = grid_energy(luminance(_pattern(period) * 0.05))[0]
    own = PERIODS.index(period)
    assert energy[own] > 1e-4
    others = [e for i, e in enumerate(energy) if i != own]
    assert max(others) < 1e-3 * energy[own]


def test_energy_is_parseval_exact_for_a_lattice_frequency():
    # cos(2 pi x / 4) with amplitude a on a tile has variance a^2 / 2, all of it at period 4
    a = 0.2
    luma = a * torch.cos(2 * math.pi * torch.arange(128).view(1, 1, -1) / 4).expand(1, 128, 128)
    energy = grid_energy(luma)[0]
    assert energy[1] == pytest.approx(a * a / 2, rel=1e-5)


def test_ratios_are_one_for_identical_images_above_one_for_a_grid_below_for_blur():
    original = _smooth() * 0.6 + 0.2 + 0.1 * torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(grid_ratios(original, original), torch.ones(1, 4))
    gridded = original + 0.02 * _pattern(2)
    assert grid_ratios(gridded, original)[0, 0] > 10
    blurred = torch.nn.functional.avg_pool2d(original, 3, stride=1, padding=1, count_include_pad=False)
    assert grid_ratios(blurred, original)[0, 0] < 0.5


def test_excess_penalises_only_grids_and_has_a_gradient():
    original = (_smooth(seed=4) + 0.1 * torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(5))) * 2 - 1
    assert grid_excess(original, original).item() == pytest.approx(0.0, abs=1e-6)
    blurred = torch.nn.functional.avg_pool2d(original, 3, stride=1, padding=1, count_include_pad=False)
    assert grid_excess(blurred, original).item() == pytest.approx(0.0, abs=1e-6)  # blur costs nothing
    gridded = (original + 0.05 * _pattern(4)).requires_grad_(True)
    loss = grid_excess(gridded, original)
    assert loss.item() > 0.5
    loss.backward()
    assert gridded.grad.abs().sum() > 0


def test_small_images_use_one_smaller_tile_and_tiny_ones_are_refused():
    assert grid_energy(torch.rand(2, 48, 40)).shape == (2, 4)
    with pytest.raises(ValueError):
        grid_energy(torch.rand(1, 12, 12))
