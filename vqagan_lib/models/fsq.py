"""Finite scalar quantisation (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple").

Each of d dimensions is squashed into a fixed range and rounded to one of L_i levels:

    z (B, d) -> bound: tanh, scaled to +-(L_i - 1)/2 -> round (straight-through) -> / (L_i // 2) -> (B, d) in [-1, 1]

The grid is fixed, so unlike a VQ codebook there is nothing to collapse or to restart: every one
of the prod(L_i) cells is a code, and a code's index is its mixed-radix number

    index = sum_i digit_i * prod_{j < i} L_j,    digit_i in [0, L_i)

which the categorical prior and the arithmetic coder see as one symbol. Even L_i are handled by a
half-bin offset, so that rounding yields exactly L_i values.

Introduced in notebooks/05_combined_training.ipynb.
"""
import math

import torch
from torch import nn


def level_shift(level: int) -> float:
    """What bound() adds to z before its tanh, so that z = 0 sits on level 0 (odd L) or half a bin below it (even L).

    Two levels have one bin edge and no level 0: z = 0 is that edge, with no shift."""
    half, offset = (level - 1) / 2, 0.5 * (level % 2 == 0)
    return math.atanh(offset / half) if offset < half else 0.0


class FSQ(nn.Module):
    """forward(z (B, d)) -> quantised code (B, d) in [-1, 1] with a straight-through gradient."""

    def __init__(self, levels: tuple[int, ...]):
        super().__init__()
        if not levels or any(level < 2 for level in levels):
            raise ValueError(f"FSQ levels must be a non-empty list of integers >= 2, got {levels}")
        self.levels = tuple(int(level) for level in levels)
        self.register_buffer("_levels", torch.tensor(self.levels, dtype=torch.float32), persistent=False)
        # A code sent digit by digit (a scene's) may have more cells than an int64 index can number: it has no index.
        basis = [math.prod(self.levels[:i]) for i in range(len(self.levels))] if self.size < 1 << 62 else [0] * len(self.levels)
        self.register_buffer("_basis", torch.tensor(basis, dtype=torch.long), persistent=False)
        self.register_buffer("_shift", torch.tensor([level_shift(level) for level in self.levels]), persistent=False)
        self.register_buffer("_half", (self._levels - 1) / 2, persistent=False)  # the bound's reach either side
        self.register_buffer("_offset", (self._levels % 2 == 0).float() * 0.5, persistent=False)  # even L: half a bin

    @property
    def size(self) -> int:
        """Number of codes: prod(levels)."""
        return math.prod(self.levels)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """(B, d) -> values in (-(L-1)/2, (L-1)/2), shifted by half a bin where L is even."""
        return torch.tanh(z + self._shift) * self._half - self._offset

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        bounded = self.bound(z)
        rounded = bounded + (torch.round(bounded) - bounded).detach()  # straight-through: d/dz as if no rounding
        return rounded / (self._levels // 2)  # (B, d) in [-1, 1]

    def middles(self, code: torch.Tensor) -> torch.Tensor:
        """Quantised code (B, d) -> where each digit's bin lies in the bound, its middle, scaled to [-1, 1].

        A number u in (-1, 1) that enters as atanh(u) less the shift (models/slots.py does so) lands on the
        digit whose bin holds it: the middle is the place a decoder should read the digit as. Inside the
        range that is the level itself; the outermost bins are cut at the bound's ends, so theirs is nearer
        the centre (with two levels, both bins are such halves: -1/2 and +1/2). Straight-through, like the code.
        """
        half, offset = self._half, self._offset
        level = code * (self._levels // 2)  # the integer level, with the code's gradient
        low, high = torch.maximum(level - 0.5, -half - offset), torch.minimum(level + 0.5, half - offset)
        return ((low + high) / 2 + offset) / half

    def to_index(self, code: torch.Tensor) -> torch.Tensor:
        """Quantised code (B, d) -> index (B,) in [0, size)."""
        if self.size >= 1 << 62:
            raise ValueError(f"FSQ levels {self.levels}: {self.size:.3g} codes have no int64 index (send the digits)")
        return (self.to_digits(code) * self._basis).sum(dim=-1)

    def from_index(self, index: torch.Tensor) -> torch.Tensor:
        """Index (B,) -> quantised code (B, d), the inverse of to_index."""
        return self.from_digits((index.long()[:, None] // self._basis) % self._levels.long())

    def to_digits(self, code: torch.Tensor) -> torch.Tensor:
        """Quantised code (B, d) -> each dimension's digit (B, d), long, in [0, L_i)."""
        return torch.round(code * (self._levels // 2) + self._levels // 2).long()

    def from_digits(self, digits: torch.Tensor) -> torch.Tensor:
        """Digits (B, d) -> quantised code (B, d), the inverse of to_digits."""
        return (digits - self._levels.long() // 2).float() / (self._levels // 2)
