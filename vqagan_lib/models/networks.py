"""The encoder and decoder shared by the VAE (notebook 01) and the codec (notebook 02).

A 64x64 easy-VQA image holds one shape, so the code is global, not a spatial grid:

    x (B,3,64,64) -> 4 stride-2 convs -> (B,C,4,4) -> flatten -> linear -> (B, out_dim)
    z (B,D) -> linear -> (B,C,4,4) -> 4 stride-2 transposed convs -> sigmoid -> (B,3,64,64)

Channel widths halve as resolution doubles (C at 4x4 and 8x8, C/2 at 16x16, C/4 at 32x32):
most of the decoder's work happens at high resolution, so thin high-resolution layers keep
it fast on CPU (it is also the GAN generator) and the checkpoint around 1 MB.

Introduced in notebooks/01_vae.ipynb.
"""
import math

import torch
from torch import nn


def _widths(image_size: int, channels: int) -> list[int]:
    """Channel width after each stride-2 conv of the encoder, from high to low resolution."""
    levels = int(math.log2(image_size)) - 2  # downsample to 4x4
    if levels < 1 or 4 << levels != image_size:
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    return [max(channels >> max(0, levels - 2 - i), 8) for i in range(levels)]


def group_norm(channels: int) -> nn.Module:
    """GroupNorm after every hidden conv. Without it the nets sat at the mean image (14 dB) for the
    first 300 steps on easy-VQA; with it they pass 18 dB. Per-image statistics (not batch norm) keep
    decoding deterministic: an image decodes the same alone or in a batch."""
    return nn.GroupNorm(min(8, channels // 4), channels)


class Encoder(nn.Module):
    """Image (B,3,S,S) in [0,1] -> vector (B, out_dim)."""

    def __init__(self, image_size: int, channels: int, out_dim: int):
        super().__init__()
        widths = _widths(image_size, channels)
        layers, c_in = [], 3
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), group_norm(c_out), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * 16, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_centred(centred(x))

    def from_centred(self, c: torch.Tensor) -> torch.Tensor:
        """The same, from `centred(x)`: encoders that read one image share that pass over its pixels."""
        h = self.convs(c)  # (B, C, 4, 4)
        return self.head(h.flatten(1))  # (B, out_dim)


def centred(x: torch.Tensor) -> torch.Tensor:
    """Pixels in [0,1] -> [-1,1], what an encoder's first conv reads: centred input trains faster."""
    return x * 2 - 1


class Decoder(nn.Module):
    """Latent (B, D) -> image (B,3,S,S) in [0,1]. Also the GAN generator G(z)."""

    def __init__(self, image_size: int, channels: int, latent_dim: int):
        super().__init__()
        widths = _widths(image_size, channels)[::-1]  # low to high resolution
        self.top = widths[0]
        self.head = nn.Sequential(nn.Linear(latent_dim, widths[0] * 16), nn.LeakyReLU(0.2))
        layers = []
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), group_norm(c_out), nn.LeakyReLU(0.2)]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 4, stride=2, padding=1)]
        self.convs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.head(z).view(len(z), self.top, 4, 4)  # (B, C, 4, 4)
        return torch.sigmoid(self.convs(h))  # (B, 3, S, S)
