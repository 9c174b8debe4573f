"""A categorical prior over discrete code indices, frozen into integer tables for the coder.

The discrete codec sends each image as a few symbols, one per code group (the answer code's
joint FSQ index, then one index per geometry dimension). Each group g gets a probability table
over its K_g indices; an index i costs -log2 p_g(i) bits, so the rate is the code's entropy
under the prior, not log2 of the codebook's size.

The prior is learned by maximum likelihood on the training images' codes: counts plus a pseudo
count, normalised. `fit()` turns it into INTEGER frequencies summing to 2**16 per group (every
index >= 1, so any code stays codable), stored as a buffer and saved with the checkpoint: the
arithmetic coder reads only those integers, so encoder and decoder agree bit for bit on every
machine. Rows are zero-padded to the largest group's size; padding is never a symbol.

Introduced in notebooks/05_combined_training.ipynb.
"""
import math

import numpy as np
import torch
from torch import nn

from vqagan_lib.errors import VQAGanError
from vqagan_lib.models.entropy_model import TOTAL, frequencies_from_pmf


class CategoricalPrior(nn.Module):
    """Per-group categorical tables over code indices; `fit` learns them from training codes."""

    def __init__(self, group_sizes: tuple[int, ...], pseudo_count: float = 0.5):
        super().__init__()
        if any(k < 1 or k > TOTAL // 2 for k in group_sizes):
            raise ValueError(f"each code group needs 1..{TOTAL // 2} indices, got {group_sizes}")
        self.group_sizes = tuple(int(k) for k in group_sizes)
        self.pseudo_count = pseudo_count  # unseen codes keep some mass: a test image may land on one
        self.register_buffer("freqs", torch.zeros(len(group_sizes), max(group_sizes), dtype=torch.int32))
        self.stale = False  # the codec API's flag; a fitted prior is never stale

    @property
    def frozen(self) -> bool:
        return bool((self.freqs.sum(dim=1) == TOTAL).all())

    @torch.no_grad()
    def fit(self, indices: torch.Tensor) -> None:
        """Indices (N, G) of the training images' codes -> integer tables (maximum likelihood)."""
        rows = []
        for g, k in enumerate(self.group_sizes):
            counts = torch.bincount(indices[:, g].long().cpu(), minlength=k)[:k].double() + self.pseudo_count
            row = np.zeros(self.freqs.shape[1], dtype=np.int64)
            row[:k] = frequencies_from_pmf((counts / counts.sum()).numpy(), deterministic_mass=0.0) if k > 1 else TOTAL
            rows.append(row)
        self.freqs.copy_(torch.from_numpy(np.stack(rows)).to(torch.int32))

    def check_tables(self, what: str = "model") -> np.ndarray:
        """The integer tables as int64 numpy (G, K); raises if not fitted or malformed."""
        freqs = self.freqs.cpu().numpy().astype(np.int64)
        if not self.frozen or (freqs < 0).any():
            raise VQAGanError(f"{what}: the code prior has no integer tables (fit it on training codes before saving)")
        return freqs

    def table_bits(self, indices: torch.Tensor) -> torch.Tensor:
        """Exact -log2(freq / TOTAL) of indices (B, G), summed over groups -> (B,)."""
        freqs = torch.gather(self.freqs.long().expand(len(indices), -1, -1), 2, indices.long().unsqueeze(2)).squeeze(2)
        return (math.log2(TOTAL) - torch.log2(freqs.double().clamp_min(1))).sum(dim=1).float()

    def entropy_bits(self) -> float:
        """Expected bits per image under the tables themselves (the rate a typical image costs)."""
        p = self.freqs.double() / TOTAL
        return float(-(p * torch.log2(p.clamp_min(1e-300))).sum())
