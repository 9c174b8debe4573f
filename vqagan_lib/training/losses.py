"""GAN losses of the VAE-GAN: Dis_l feature matching, the hinge adversarial loss, and their balance.

Three pieces, each returning `(loss, logs)` with detached scalar logs keyed "train/...":

1. Feature-wise reconstruction (Larsen et al. 2015, eq. 6): ||Dis_l(x) - Dis_l(x_hat)||^2.
   A Gaussian likelihood in the discriminator's layer-l space instead of pixel space: a
   shape drawn one pixel off costs little, a blurred edge costs a lot, because D's
   features respond to edges and textures, not to exact positions.
2. Adversarial loss: hinge (Lim & Ye 2017; as in SAGAN, BigGAN, taming-transformers).
       D: mean(relu(1 - D(x))) + mean(relu(1 + D(x_hat)))      G: -mean(D(x_hat))
   Why hinge rather than non-saturating BCE: on easy-VQA, D wins quickly (flat shapes on
   a flat background). With BCE it keeps pushing confident logits towards infinity; the
   hinge stops rewarding D once a sample is beyond the margin, so D's logits stay in a
   range where the generator's gradient -dD/dx_hat is informative. The generator side,
   -D(x_hat), never saturates however badly it is losing.
3. Balancing: the adaptive weight of taming-transformers (Esser et al. 2021, eq. 7),
       lambda = ||grad_L nll|| / (||grad_L g_adv|| + 1e-4),  clamped to [0, max]
   with both gradients taken at L, the decoder's last layer. It rescales the adversarial
   gradient to the size of the reconstruction gradient *where they meet*, so the GAN
   weight means "how loud relative to reconstruction" whatever the units of either loss,
   and it self-corrects: when D grows confident and g_adv's gradient explodes, lambda
   shrinks. (Larsen's own alternative, the equilibrium rule, stops updating whichever
   network is winning by a fixed margin; it needs margins tuned per dataset.)
Introduced in notebooks/03_vae_gan.ipynb.
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from vqagan_lib.models.discriminator import DiscriminatorConfig


@dataclass
class GANConfig:
    weight: float = 0.0  # 0.0 = GAN off (plain rate-distortion codec); 0.1-1 relative to reconstruction when adaptive
    disc_start: int = 200  # warm-up steps: the codec first learns to reconstruct, then D and the GAN terms switch on
    feature_weight: float = 1.0  # Larsen's Dis_l feature loss, added to the distortion once D trains
    adaptive: bool = True  # scale the adversarial gradient to the reconstruction gradient at the decoder's last layer
    adaptive_max: float = 1e4  # clamp on the adaptive weight (taming's value): guards against a vanishing g_adv gradient
    lr: float = 2e-4  # discriminator Adam learning rate (DCGAN / taming)
    betas: tuple[float, float] = (0.5, 0.9)  # beta1 = 0.5: a momentum that forgets fast, as the opponent keeps moving
    disc: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)  # Larsen's 5x5 stride-2 stack


def feature_loss(features_real: torch.Tensor, features_fake: torch.Tensor) -> torch.Tensor:
    """Larsen's Dis_l reconstruction loss: mean squared distance of layer-l features.

    The real features are targets (detached); the mean (not Larsen's sum) keeps the value
    on a scale that does not depend on the layer's size.
    """
    return F.mse_loss(features_fake, features_real.detach())


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Discriminator hinge loss: push real logits above +1 and decoded ones below -1."""
    loss_real = F.relu(1.0 - logits_real).mean()
    loss_fake = F.relu(1.0 + logits_fake).mean()
    loss = loss_real + loss_fake
    logs = {
        "train/d_loss": loss.detach(),
        "train/d_real": logits_real.detach().mean(),  # mean logit on originals
        "train/d_fake": logits_fake.detach().mean(),  # mean logit on reconstructions
        "train/d_acc": 0.5 * ((logits_real > 0).float().mean() + (logits_fake < 0).float().mean()).detach(),
    }
    return loss, logs


def hinge_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Generator side of the hinge GAN: raise D's logit on decoded images (never saturates)."""
    return -logits_fake.mean()


def adaptive_weight(nll: torch.Tensor, g_adv: torch.Tensor, last_layer: nn.Parameter, max_weight: float = 1e4) -> torch.Tensor:
    """||grad nll|| / ||grad g_adv|| at `last_layer` (the decoder's output weight), clamped, detached."""
    nll_grad = torch.autograd.grad(nll, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_adv, last_layer, retain_graph=True)[0]
    weight = nll_grad.norm() / (g_grad.norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()


def generator_gan_loss(disc: nn.Module, x: torch.Tensor, x_hat: torch.Tensor, recon: torch.Tensor,
                       last_layer: nn.Parameter | None, cfg: GANConfig) -> tuple[torch.Tensor, dict]:
    """GAN terms of the generator (decoder) loss: feature_weight * Dis_l loss + lambda * weight * g_adv.

    `recon` is the reconstruction loss already in the total (the weighted distortion); the
    Dis_l term joins it in the numerator of the adaptive weight. D must be frozen by the caller.
    """
    with torch.no_grad():
        _, feat_real = disc(x)  # (B,C,h,w) targets only: no graph, so backward passes cover the fake half alone
    logits_fake, feat_fake = disc(x_hat)  # (B,), (B,C,h,w)
    feat = feature_loss(feat_real, feat_fake)
    g_adv = hinge_g_loss(logits_fake)
    nll = recon + cfg.feature_weight * feat
    if cfg.adaptive and last_layer is not None and torch.is_grad_enabled() and cfg.weight > 0:
        lam = adaptive_weight(nll, g_adv, last_layer, cfg.adaptive_max)
    else:
        lam = torch.ones((), device=x.device)
    loss = cfg.feature_weight * feat + cfg.weight * lam * g_adv
    logs = {"train/feature": feat.detach(), "train/g_adv": g_adv.detach(), "train/adaptive_weight": lam.detach()}
    return loss, logs


def pyramid_mse(x_hat: torch.Tensor, x: torch.Tensor, scales: int) -> torch.Tensor:
    """Mean of the pixel MSE at `scales` resolutions: the images, then their 2x2 averages, and so on."""
    total = F.mse_loss(x_hat, x)
    for _ in range(scales - 1):
        x_hat, x = F.avg_pool2d(x_hat, 2), F.avg_pool2d(x, 2)
        total = total + F.mse_loss(x_hat, x)
    return total / scales
