"""G's upsampling: resize-convolutions cannot draw a grid; transposed kernels carry over."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from gcodec.grid import grid_energy
from gcodec.models import ArchConfig, GCModel, named_config
from gcodec.models.upsampling import (ResizeConv2d, convert_generator_state, resize_kernel_from_transposed,
                                      transposed_weight_keys, upsampling_conv)


def _tiny(upsample: str) -> GCModel:
    return GCModel(dataclasses.replace(named_config("tiny", 4), upsample=upsample)).eval()


def test_constant_input_gives_a_grid_only_through_transposed_convolutions():
    torch.manual_seed(0)
    flat = torch.ones(1, 1, 8, 8)
    transposed, resize = upsampling_conv(1, 1, "transposed"), upsampling_conv(1, 1, "resize")
    with torch.no_grad():
        out_t, out_r = transposed(flat)[0, 0, 2:-2, 2:-2], resize(flat)[0, 0, 2:-2, 2:-2]
    assert out_t.shape == out_r.shape == (12, 12)
    assert out_t.std() > 1e-3           # four phases, four different tap sums
    assert out_r.std() < 1e-6           # every output pixel the same


def test_resize_generator_output_has_no_period_two_energy_for_a_constant_latent():
    torch.manual_seed(1)
    symbols = torch.full((1, 4, 8, 8), 3, dtype=torch.int64)
    energy = {kind: grid_energy(_tiny(kind).decode_symbols(symbols).mean(1))[0] for kind in ("transposed", "resize")}
    assert energy["resize"][0] < 1e-3 * energy["transposed"][0]


def test_config_stores_upsample_only_when_not_the_papers():
    assert "upsample" not in named_config("cpu", 4).to_dict()
    cfg = dataclasses.replace(named_config("cpu", 4), upsample="resize")
    assert cfg.to_dict()["upsample"] == "resize"
    assert ArchConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="upsample"):
        dataclasses.replace(cfg, upsample="bilinear")


def test_resize_model_keeps_shapes_and_keys():
    old, new = _tiny("transposed"), _tiny("resize")
    assert old.state_dict().keys() == new.state_dict().keys()
    assert sum(isinstance(m, ResizeConv2d) for m in new.modules()) == 4
    symbols = torch.randint(0, 5, (1, 4, 3, 5))
    assert new.decode_symbols(symbols).shape == old.decode_symbols(symbols).shape == (1, 3, 48, 80)


def test_white_noise_conversion_beats_every_other_kernel_and_keeps_the_mean():
    torch.manual_seed(2)
    weight, bias = torch.randn(3, 2, 3, 3), torch.randn(2)
    kernel, new_bias = resize_kernel_from_transposed(weight, bias)
    assert kernel.shape == (2, 3, 3, 3) and torch.equal(new_bias, bias)
    # constant input: the resize output equals the transposed output averaged over its four phases
    assert torch.allclose(kernel.sum(dim=(1, 2, 3)), weight.sum(dim=(0, 2, 3)) / 4, atol=1e-5)
    x = torch.randn(64, 3, 12, 12)
    conv_t = upsampling_conv(3, 2, "transposed")
    conv_r = upsampling_conv(3, 2, "resize")
    with torch.no_grad():
        conv_t.weight.copy_(weight); conv_t.bias.copy_(bias)
        conv_r.weight.copy_(kernel); conv_r.bias.copy_(bias)
        target = conv_t(x)[..., 2:-2, 2:-2]
        fitted = (conv_r(x)[..., 2:-2, 2:-2] - target).pow(2).mean()
        for _ in range(3):  # perturbing the fitted kernel while keeping its sum only makes it worse
            noise = torch.randn_like(kernel) * 0.05
            conv_r.weight.copy_(kernel + noise - noise.mean(dim=(1, 2, 3), keepdim=True))
            assert (conv_r(x)[..., 2:-2, 2:-2] - target).pow(2).mean() > fitted


def test_convert_generator_state_converts_exactly_the_transposed_kernels():
    old, new = _tiny("transposed"), _tiny("resize")
    keys = transposed_weight_keys(old, "")
    assert len(keys) == 4 and all(k.startswith("generator.net.") for k in keys)
    state = convert_generator_state(old.state_dict(), keys)
    new.load_state_dict(state)  # the converted shapes fit the resize model
    for key, value in old.state_dict().items():
        if key not in keys:
            assert torch.equal(state[key], value)
