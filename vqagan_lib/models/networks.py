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


def _norm(channels: int) -> nn.Module:
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
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), _norm(c_out), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * 16, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x * 2 - 1)  # (B, C, 4, 4); centred input trains faster
        return self.head(h.flatten(1))  # (B, out_dim)


class Decoder(nn.Module):
    """Latent (B, D) -> image (B,3,S,S) in [0,1]. Also the GAN generator G(z)."""

    def __init__(self, image_size: int, channels: int, latent_dim: int):
        super().__init__()
        widths = _widths(image_size, channels)[::-1]  # low to high resolution
        self.top = widths[0]
        self.head = nn.Sequential(nn.Linear(latent_dim, widths[0] * 16), nn.LeakyReLU(0.2))
        layers = []
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), _norm(c_out), nn.LeakyReLU(0.2)]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 4, stride=2, padding=1)]
        self.convs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.head(z).view(len(z), self.top, 4, 4)  # (B, C, 4, 4)
        return torch.sigmoid(self.convs(h))  # (B, 3, S, S)


class BroadcastDecoder(nn.Module):
    """Code (B, D) -> image (B,3,S,S): a spatial broadcast decoder (Watters et al. 2019, arXiv 1901.07017).

        z (B,D) -> tile over a (S/4 x S/4) grid + (x, y) coordinate channels -> 1x1 and 3x3 convs
                -> 2 stride-2 transposed convs -> sigmoid -> (B,3,S,S)

    Every grid cell sees the whole code and where it is, so "draw this shape, that size, there" is a
    small per-cell function of (cell - position) instead of something a linear layer must spread over
    4x4 feature maps: position and appearance stay separate, as a geometry code wants.
    """

    def __init__(self, image_size: int, channels: int, latent_dim: int):
        super().__init__()
        self.grid = image_size // 4
        ramp = torch.linspace(-1, 1, self.grid)
        self.register_buffer("coords", torch.stack(torch.meshgrid(ramp, ramp, indexing="ij")), persistent=False)  # (2,g,g)
        c = channels
        self.cells = nn.Sequential(
            nn.Conv2d(latent_dim + 2, c, 1), nn.LeakyReLU(0.2), nn.Conv2d(c, c, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, c, 3, padding=1), _norm(c), nn.LeakyReLU(0.2))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1), _norm(c // 2), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(c // 2, 3, 4, stride=2, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        tiled = z[:, :, None, None].expand(-1, -1, self.grid, self.grid)  # (B, D, g, g)
        h = torch.cat([tiled, self.coords.expand(len(z), -1, -1, -1)], dim=1)  # (B, D+2, g, g)
        return torch.sigmoid(self.up(self.cells(h)))  # (B, 3, S, S)
