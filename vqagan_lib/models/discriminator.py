"""The discriminator of a VAE-GAN: real-vs-decoded logits, and the features that measure likeness.

Larsen et al. 2015 (arXiv 1512.09300), "Autoencoding beyond pixels using a learned
similarity metric": the decoder doubles as the GAN generator, and the discriminator's
l-th layer, Dis_l, replaces pixels as the space where a reconstruction is compared
with its original.

    x or x_hat (B,3,64,64) -> [conv5x5/2 -> GroupNorm -> LeakyReLU] x 4 -> flatten -> linear -> logit (B,)
                                              |
                                   features at layer l (B,C_l,H/2^l,W/2^l)  = Dis_l(x)

Why GroupNorm, not batch norm or spectral norm:
- Batch norm makes a sample's output depend on the rest of its batch. Real and decoded
  batches have different statistics, so D can tell them apart by batch rather than by
  image, and its running statistics are state that changes on every forward (also in
  the generator's step) and that DDP must keep in sync across processes.
- Spectral norm keeps power-iteration vectors that are updated on every training-mode
  forward, the generator's included; the generator step would then change D's state.
- GroupNorm normalises each image on its own: no running state, the same numbers
  whatever the batch, per-rank or concatenated real+fake batches give identical results.
Introduced in notebooks/03_vae_gan.ipynb.
"""
from dataclasses import dataclass

from torch import nn

from vqagan_lib.errors import VQAGanError
from vqagan_lib.models.contract import CodecConfig


@dataclass
class DiscriminatorConfig:
    # Larsen's 4-conv stack at a quarter of its width: 64x64 single shapes need little capacity, and D's
    # passes dominate a GAN step on CPU (the full width costs 4x the compute and makes every step many times slower).
    channels: tuple[int, ...] = (16, 32, 64, 64)
    kernel_size: int = 5  # Larsen's 5x5 kernels: a wide view per layer for a shallow stack
    feature_layer: int = 3  # Dis_l taps after block 3 (8x8 map): coarse enough to forgive pixel shifts
    groups: int = 8  # GroupNorm groups; each must divide every channel count
    negative_slope: float = 0.2  # LeakyReLU: D's gradients to the generator never die on negative inputs


class Block(nn.Module):
    """conv5x5 stride 2 -> GroupNorm -> LeakyReLU: halves the resolution."""

    def __init__(self, c_in: int, c_out: int, cfg: DiscriminatorConfig, norm: bool):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, cfg.kernel_size, stride=2, padding=cfg.kernel_size // 2)
        # The first block sees raw pixels: no normalisation there (as in DCGAN), so the mean
        # colour of an image, which carries easy-VQA's colour answer, is not normalised away.
        self.norm = nn.GroupNorm(cfg.groups, c_out) if norm else nn.Identity()
        self.act = nn.LeakyReLU(cfg.negative_slope)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))  # (B, c_out, H/2, W/2)


class Discriminator(nn.Module):
    """forward(x) -> (logits (B,), Dis_l features (B,C,h,w)); x in [0,1]."""

    def __init__(self, cfg: DiscriminatorConfig | None = None, image_size: int | None = None):
        super().__init__()
        cfg = cfg if cfg is not None else DiscriminatorConfig()
        # D judges the generator's images, so their size is the model's (CodecConfig.image_size), never its own setting.
        image_size = image_size if image_size is not None else CodecConfig().image_size
        if not 1 <= cfg.feature_layer <= len(cfg.channels):
            raise VQAGanError(f"discriminator: feature_layer {cfg.feature_layer} must be in 1..{len(cfg.channels)}")
        if any(c % cfg.groups for c in cfg.channels):
            raise VQAGanError(f"discriminator: groups {cfg.groups} must divide every channel count {cfg.channels}")
        side = image_size // 2 ** len(cfg.channels)
        if side < 1:
            raise VQAGanError(f"discriminator: {len(cfg.channels)} stride-2 blocks are too many for {image_size}px images")
        self.cfg = cfg
        c_ins = (3,) + tuple(cfg.channels[:-1])
        self.blocks = nn.ModuleList(Block(a, b, cfg, norm=k > 0) for k, (a, b) in enumerate(zip(c_ins, cfg.channels)))
        self.head = nn.Linear(cfg.channels[-1] * side * side, 1)

    def forward(self, x):
        h = x * 2 - 1  # (B,3,H,W) in [-1,1]: centred inputs train faster
        features = None
        for k, block in enumerate(self.blocks, start=1):
            h = block(h)  # (B, C_k, H/2^k, W/2^k)
            if k == self.cfg.feature_layer:
                features = h
        logits = self.head(h.flatten(1)).squeeze(1)  # (B,)
        return logits, features
