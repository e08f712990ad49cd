"""Architectures: parameter counts, shapes, quantizer, normalisation switch."""
from __future__ import annotations

import pytest
import torch

from gcodec.models import ArchConfig, GCModel, count_parameters, named_config
from gcodec.models.discriminator import MultiScaleDiscriminator
from gcodec.models.layers import SwitchableNorm, set_fixed_norm
from gcodec.models.quantizer import Quantizer


def test_paper_configuration_matches_published_sizes():
    model = GCModel(named_config("paper", 4))
    assert abs(count_parameters(model.encoder) / 1e6 - 5.6) < 0.1
    assert abs(count_parameters(model.generator) / 1e6 - 155) < 1.0
    assert model.config.encoder_widths == (60, 120, 240, 480, 960)


def test_cpu_configuration_size():
    model = GCModel(named_config("cpu", 4))
    assert abs(count_parameters(model.generator) / 1e6 - 9.7) < 0.1
    assert model.config.encoder_widths == (15, 30, 60, 120, 240)


@pytest.mark.parametrize("channels", [2, 4, 8])
def test_shapes(channels):
    model = GCModel(named_config("tiny", channels)).eval()
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    symbols = model.encode_symbols(x)
    assert symbols.shape == (2, channels, 4, 6) and symbols.dtype == torch.int64
    assert symbols.min() >= 0 and symbols.max() <= 4
    y = model.decode_symbols(symbols)
    assert y.shape == x.shape and y.abs().max() <= 1
    with pytest.raises(ValueError):
        model.encode_symbols(torch.zeros(1, 3, 40, 64))


def test_quantizer_hard_forward_soft_backward():
    q = Quantizer([-2, -1, 0, 1, 2]).train()
    w = torch.tensor([-3.0, -1.4, 0.2, 0.6, 2.7], requires_grad=True)
    out = q(w)
    assert out.tolist() == [-2, -1, 0, 1, 2]
    out.sum().backward()
    assert torch.all(w.grad.abs() > 0) or torch.any(w.grad.abs() > 0)
    assert q.symbols(w).tolist() == [0, 1, 2, 3, 4]
    assert q.dequantize(q.symbols(w)).tolist() == [-2, -1, 0, 1, 2]


def test_quantizer_reads_nothing_back_from_the_device(monkeypatch):
    """The training step's quantizer never turns a tensor into a Python number: on a GPU each such
    read (``float(t)``, ``t.item()``) makes the step wait for the device, and breaks torch.compile's
    graph."""
    q = Quantizer([-2, -1, 0, 1, 2]).train()
    w = torch.tensor([-3.0, -1.4, 0.2, 0.6, 2.7], requires_grad=True)

    def refuse(self, *args):
        raise AssertionError("host sync")

    for name in ("__float__", "__int__", "item"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    assert q.levels == 5
    out = q(w)
    symbols = q.symbols(w)
    monkeypatch.undo()
    assert out.tolist() == [-2, -1, 0, 1, 2]
    assert symbols.tolist() == [0, 1, 2, 3, 4]


def test_noise_channels_and_seeded_decoding():
    cfg = ArchConfig(latent_channels=2, width=0.0625, res_blocks=1, noise_channels=2)
    model = GCModel(cfg).eval()
    symbols = torch.randint(0, 5, (1, 2, 2, 2))
    a, b = model.decode_symbols(symbols, seed=1), model.decode_symbols(symbols, seed=1)
    c = model.decode_symbols(symbols, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_switchable_norm_fixed_statistics():
    norm = SwitchableNorm(3, momentum=1.0).train()
    x = torch.randn(4, 3, 8, 8) * 3 + 5
    norm(x)
    set_fixed_norm(norm, True)
    norm.eval()
    y = norm(x)
    assert abs(float(y.mean())) < 0.5
    assert not torch.allclose(y, SwitchableNorm(3)(x))


def test_discriminator_scales_and_features():
    cfg = named_config("tiny", 4)
    disc = MultiScaleDiscriminator(cfg, extra_channels=3)
    outs = disc(torch.zeros(1, 6, 64, 64))
    assert len(outs) == cfg.disc_scales and len(outs[0]) == 5 and outs[0][-1].shape[1] == 1


def test_config_round_trip_and_validation():
    cfg = named_config("cpu", 8)
    assert ArchConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        ArchConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError):
        named_config("nope", 4)
    assert cfg.centers == [-2, -1, 0, 1, 2]
