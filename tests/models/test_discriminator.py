import pytest
import torch

from vqagan_lib.models.discriminator import Discriminator, DiscriminatorConfig
from vqagan_lib.errors import VQAGanError


@pytest.mark.parametrize("layer, shape", [(1, (16, 32, 32)), (3, (64, 8, 8)), (4, (64, 4, 4))])
def test_logits_and_feature_tap_shapes(layer, shape):
    torch.manual_seed(0)
    disc = Discriminator(DiscriminatorConfig(feature_layer=layer))
    logits, features = disc(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2,)
    assert features.shape == (2, *shape)  # each stride-2 block halves the side: 64 / 2^layer


def test_each_image_is_judged_alone():
    # GroupNorm, not batch norm: a real+fake concatenated batch gives each image its own logit.
    torch.manual_seed(0)
    disc = Discriminator()
    a, b = torch.rand(3, 3, 64, 64), torch.rand(5, 3, 64, 64)
    both, feats = disc(torch.cat([a, b]))
    alone, feats_a = disc(a)
    torch.testing.assert_close(both[:3], alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(feats[:3], feats_a, rtol=1e-5, atol=1e-5)
    assert len(list(disc.buffers())) == 0  # no running statistics that a forward pass could change


@pytest.mark.parametrize("kwargs", [{"feature_layer": 5}, {"feature_layer": 0}, {"groups": 3},
                                    {"channels": (8, 8, 8, 8, 8, 8, 8)}])
def test_bad_configs_are_refused(kwargs):
    with pytest.raises(VQAGanError):
        Discriminator(DiscriminatorConfig(**kwargs))


def test_small_stack_for_tiny_runs():
    disc = Discriminator(DiscriminatorConfig(channels=(8, 8, 16), groups=4, feature_layer=2))
    logits, features = disc(torch.rand(4, 3, 64, 64))
    assert logits.shape == (4,) and features.shape == (4, 8, 16, 16)
