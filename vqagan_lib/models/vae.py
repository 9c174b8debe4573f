"""A variational autoencoder (Kingma & Welling 2014) whose KL term is read as a rate in bits.

    x -> encoder -> (mu, log sigma^2) -> z = mu + sigma * eps -> decoder -> x_hat

The KL divergence KL(q(z|x) || N(0, I)) is the expected cost, in nats, of sending z with
"bits-back" coding, so KL / ln 2 is a rate in bits per image: the same `rate_bits` the codec
of notebook 02 reports, and the same training engine trades it against distortion. This
VAE cannot write a file, though: z is continuous. Notebook 02 quantises it.

Training samples z (the reparameterisation trick keeps it differentiable); eval decodes the
posterior mean, which is what makes VAE reconstructions look like averages: blurry.

Introduced in notebooks/01_vae.ipynb.
"""
import math

import torch
from torch import nn

from vqagan_lib.models.contract import CodecConfig, CodecOutput
from vqagan_lib.models.networks import Decoder, Encoder


class VAE(nn.Module):
    """Gaussian-posterior VAE over a global latent of cfg.latent_dim dims; same encoder/decoder as the codec."""

    def __init__(self, cfg: CodecConfig = None):
        super().__init__()
        self.cfg = cfg = cfg or CodecConfig(model="vae")
        self.encoder = Encoder(cfg.image_size, cfg.channels, 2 * cfg.latent_dim)  # mean and log-variance
        self.decoder = Decoder(cfg.image_size, cfg.channels, cfg.latent_dim)
        self.card: dict = {}

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (B, D) each
        return mu, logvar.clamp(-30.0, 20.0)  # keeps exp() finite early in training

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """The generator G(z): latent (B, D) -> images (B, 3, S, S)."""
        return self.decoder(latent)

    def forward(self, x: torch.Tensor) -> CodecOutput:
        mu, logvar = self.posterior(x)
        # KL(N(mu, sigma^2) || N(0, 1)) per dim, in nats, summed over dims -> bits.
        kl_nats = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)  # (B,)
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # reparameterisation
        else:
            z = mu  # the posterior mean: deterministic, and the blurriest choice
        return CodecOutput(self.decode(z), kl_nats / math.log(2), z)
