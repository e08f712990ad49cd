"""ORP realism head and latent sampler networks (gcodec.models.orp, gcodec.models.sampler)."""
from __future__ import annotations

import torch

from gcodec.models import GCModel, named_config
from gcodec.models.orp import RealismGenerator, ResidualHead, generator_features, head_config_for
from gcodec.models.sampler import CodeCritic, CodeGenerator, SamplerConfig, noise_shape, one_hot_codes


def _model() -> GCModel:
    torch.manual_seed(0)
    return GCModel(named_config("tiny", 4)).eval()


def test_features_are_the_generators_own_pass():
    model = _model()
    z = torch.randn(2, 4, 3, 5)
    features, image = generator_features(model.generator, z)
    assert features.shape == (2, head_config_for(model.generator).features, 48, 80)
    assert torch.equal(image, model.generator(z))


def test_new_head_starts_at_the_gan_output_and_alpha_one_is_exact():
    model = _model()
    head = ResidualHead(head_config_for(model.generator))
    realism = RealismGenerator(model.generator, head).eval()
    z = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        gan = model.generator(z)
        assert torch.equal(realism(z, torch.zeros(1)), gan)  # zero-initialised last layer: R = 0
        head.net[-1].weight.normal_()
        assert not torch.equal(realism(z, torch.zeros(1)), gan)
        assert torch.equal(realism(z, torch.ones(1)), gan)
        half = realism(z, torch.tensor([0.5]))
        assert torch.allclose(half, (gan + realism(z, torch.zeros(1))) / 2, atol=1e-5)


def test_sampler_shapes_any_size_and_critic():
    cfg = SamplerConfig(channels=4, noise_channels=8, width=8, critic_width=4)
    gen, critic = CodeGenerator(cfg), CodeCritic(cfg)
    for h, w in ((16, 16), (5, 9)):
        logits = gen(torch.randn(3, *noise_shape(h, w, cfg)))
        assert logits.shape[:3] == (3, 4, 5) and logits.shape[3] >= h and logits.shape[4] >= w
    probs = one_hot_codes(torch.randint(0, 5, (2, 4, 16, 16)), 5)
    assert probs.shape == (2, 4, 5, 16, 16) and torch.all(probs.sum(dim=2) == 1)
    assert critic(probs).shape == (2,)
