import pytest
import torch
from torch import nn

from vqagan_lib.models.discriminator import Discriminator, DiscriminatorConfig
from vqagan_lib.training.losses import (GANConfig, adaptive_weight, feature_loss, generator_gan_loss, hinge_d_loss,
                                   hinge_g_loss)


def test_hinge_d_loss_values():
    loss, logs = hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -3.0))
    assert loss.item() == 0.0 and logs["train/d_acc"].item() == 1.0  # beyond both margins: nothing to learn
    loss, _ = hinge_d_loss(torch.zeros(4), torch.zeros(4))
    assert loss.item() == pytest.approx(2.0)
    loss, _ = hinge_d_loss(torch.tensor([0.5]), torch.tensor([0.5]))
    assert loss.item() == pytest.approx(0.5 + 1.5)
    assert all(not v.requires_grad for v in logs.values())


def test_generator_loss_never_saturates():
    logits = torch.tensor([-50.0, -10.0], requires_grad=True)  # D is winning badly
    hinge_g_loss(logits).backward()
    torch.testing.assert_close(logits.grad, torch.tensor([-0.5, -0.5]))


def test_feature_loss_treats_real_features_as_targets():
    real = torch.rand(2, 4, 3, 3, requires_grad=True)
    fake = torch.rand(2, 4, 3, 3, requires_grad=True)
    assert feature_loss(real, real.clone()).item() == 0.0
    feature_loss(real, fake).backward()
    assert real.grad is None and fake.grad is not None


def test_adaptive_weight_is_the_gradient_norm_ratio():
    layer = nn.Linear(3, 2)
    x = torch.randn(5, 3)
    y = layer(x)
    nll, g = (y ** 2).mean(), 7.0 * y.sum()
    expected = torch.autograd.grad(nll, layer.weight, retain_graph=True)[0].norm() / (
        torch.autograd.grad(g, layer.weight, retain_graph=True)[0].norm() + 1e-4)
    w = adaptive_weight(nll, g, layer.weight)
    assert w.item() == pytest.approx(expected.item(), rel=1e-5) and not w.requires_grad
    assert adaptive_weight(100 * nll, 1e-9 * y.sum(), layer.weight, max_weight=3.0).item() == 3.0  # clamped


def test_generator_gan_loss_adds_feature_and_weighted_adversarial_terms():
    torch.manual_seed(0)
    disc = Discriminator(DiscriminatorConfig(channels=(8, 8, 16), groups=4, feature_layer=2)).requires_grad_(False)
    last = nn.Conv2d(3, 3, 1)
    x = torch.rand(2, 3, 64, 64)
    x_hat = torch.sigmoid(last(torch.rand(2, 3, 64, 64)))
    recon = ((x_hat - x) ** 2).mean()
    cfg = GANConfig(weight=0.5, feature_weight=2.0)
    loss, logs = generator_gan_loss(disc, x, x_hat, recon, last.weight, cfg)
    expected = 2.0 * logs["train/feature"] + 0.5 * logs["train/adaptive_weight"] * logs["train/g_adv"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert set(logs) == {"train/feature", "train/g_adv", "train/adaptive_weight"}
    loss_fixed, logs_fixed = generator_gan_loss(disc, x, x_hat, recon, last.weight, GANConfig(weight=0.5, adaptive=False))
    assert logs_fixed["train/adaptive_weight"].item() == 1.0


def test_pyramid_mse_averages_the_pixel_loss_over_halvings():
    from vqagan_lib.training.losses import pyramid_mse

    a, b = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)
    b[..., 0, 0] = 1.0  # one bright pixel: 1/64 at full size, then (1/4)^2 over 1/16 of the 4x4 pixels
    full, half = 1 / 64, (1 / 4) ** 2 / 16
    assert pyramid_mse(a, b, 1) == pytest.approx(full)
    assert pyramid_mse(a, b, 2) == pytest.approx((full + half) / 2)
    near, far = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)
    near[..., 2, 2], far[..., 7, 7] = 1.0, 1.0
    # Neither overlaps the target, so the full-size loss cannot tell them apart; the coarse copies can.
    assert pyramid_mse(near, b, 1) == pyramid_mse(far, b, 1)
    assert pyramid_mse(near, b, 3) < pyramid_mse(far, b, 3)
