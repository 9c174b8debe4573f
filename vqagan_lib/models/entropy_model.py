"""The factorized prior of Balle et al. 2017: a learned probability model for each latent dimension.

Each of the D latent dimensions gets its own cumulative distribution function c_d(y), a tiny
monotone network (softplus'd weight matrices keep every layer increasing; a sigmoid maps the
output to [0, 1]). Quantising y to an integer keeps the probability of that integer's bin:

    p(k) = c(k + 0.5) - c(k - 0.5)

Training cannot round (no gradient), so it uses the noise relaxation: y + u, u ~ U(-0.5, 0.5),
whose likelihood c(y+0.5) - c(y-0.5) is differentiable in y and in the CDF parameters, and
-log2 of it estimates the bits the coder will spend.

For coding, `freeze_tables()` turns the learned pmf into INTEGER frequencies over the support
[-R, R] (summing to 2**16, each symbol >= 1 so any latent can be coded). From then on the coder
reads only those int32 buffers, which are saved with the checkpoint: a float CDF evaluated on
another machine (or after a tiny weight change) could round differently and the decoder would
then read a different symbol. Two consequences, both deliberate:
- latents outside [-R, R] are clamped to the end symbols, which carry the tail mass;
- a dimension whose leftover mass off its most likely symbol is below `deterministic_mass`
  is deterministic: it is always decoded as that symbol and costs 0 bits (the coder skips it).

Introduced in notebooks/02_codec.ipynb.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vqagan_lib.coding import arithmetic
from vqagan_lib.errors import VQAGanError

TOTAL = 1 << arithmetic.PRECISION  # every frequency table sums to this


def frequencies_from_pmf(pmf: np.ndarray, deterministic_mass: float) -> np.ndarray:
    """One dimension's pmf (K,) -> integer frequencies (K,) summing to TOTAL.

    Every symbol gets >= 1 (so it stays codable), the rest is shared in proportion to the pmf,
    with the remainder going to the largest fractional parts. If all but `deterministic_mass`
    sits on one symbol, that symbol gets everything: a deterministic, 0-bit dimension.
    """
    pmf = np.clip(np.asarray(pmf, dtype=np.float64), 0.0, None)
    pmf = pmf / pmf.sum()
    k = len(pmf)
    if 1.0 - pmf.max() < deterministic_mass:
        freqs = np.zeros(k, dtype=np.int64)
        freqs[pmf.argmax()] = TOTAL
        return freqs
    share = pmf * (TOTAL - k)
    freqs = np.floor(share).astype(np.int64) + 1
    left = TOTAL - int(freqs.sum())  # 0 <= left < k
    freqs[np.argsort(-(share - np.floor(share)), kind="stable")[:left]] += 1
    return freqs


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still flows when it would raise x (CompressAI's LowerBound).

    A plain clamp has zero gradient below the bound, so a latent far out in the tails would get
    no pull back towards the prior's mass: exactly when it is needed most.
    """

    @staticmethod
    def forward(ctx, x, bound: float):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x >= ctx.bound) | (grad < 0)).to(grad.dtype), None


class FactorizedPrior(nn.Module):
    """One learned CDF per latent dimension, and the integer tables frozen from it."""

    def __init__(self, dims: int, support_radius: int = 15, filters=(3, 3, 3), init_scale: float = 2.0,
                 deterministic_mass: float = 2 ** -10):
        super().__init__()
        self.dims, self.radius, self.deterministic_mass = dims, support_radius, deterministic_mass
        widths = (1, *filters, 1)
        scale = init_scale ** (1 / (len(widths) - 1))  # the initial CDF spreads over about [-init_scale, init_scale]
        self.matrices, self.biases, self.factors = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
        for i in range(len(widths) - 1):
            init = math.log(math.expm1(1 / scale / widths[i + 1]))  # softplus(init) = 1 / scale / width
            self.matrices.append(nn.Parameter(torch.full((dims, widths[i + 1], widths[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(dims, widths[i + 1], 1) - 0.5))
            if i < len(widths) - 2:  # tanh "factors" let each layer bend, still monotone
                self.factors.append(nn.Parameter(torch.zeros(dims, widths[i + 1], 1)))
        # freqs[d, k]: integer count of symbol k (value k - R) for dimension d; all zero = not frozen.
        self.register_buffer("freqs", torch.zeros(dims, 2 * support_radius + 1, dtype=torch.int32))
        self.stale = False  # set by a training step: the float CDF has moved since freeze_tables()

    @property
    def num_symbols(self) -> int:
        return 2 * self.radius + 1

    def logits_cdf(self, y: torch.Tensor) -> torch.Tensor:
        """Logit of c_d(y) for y (D, N) -> (D, N); monotone increasing in y for every d."""
        x = y.unsqueeze(1)  # (D, 1, N)
        for i, matrix in enumerate(self.matrices):
            x = torch.matmul(F.softplus(matrix), x) + self.biases[i]  # (D, width, N)
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x.squeeze(1)  # (D, N)

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """P(bin of width 1 around y) for y (B, D) -> (B, D), differentiable in y."""
        lower = self.logits_cdf(y.t() - 0.5)  # (D, B)
        upper = self.logits_cdf(y.t() + 0.5)  # (D, B)
        # sigmoid(u) - sigmoid(l) loses precision in the upper tail; flipping signs there keeps it exact.
        sign = -torch.sign(lower + upper).detach()
        p = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))  # (D, B)
        return _LowerBound.apply(p.t(), 1e-9)  # (B, D); the floor keeps -log2 finite

    def noisy_bits(self, y: torch.Tensor) -> torch.Tensor:
        """Training rate: -log2 likelihood of y + U(-0.5, 0.5), summed over dims -> (B,)."""
        self.stale = True
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)  # (B, D)
        return -torch.log2(self.likelihood(y_noisy)).sum(dim=1)

    # ---- the integer tables -------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        return bool(self.freqs.any())

    @torch.no_grad()
    def pmf(self) -> torch.Tensor:
        """Float64 pmf (D, K) on the support, the clamped tails folded into the end symbols."""
        edges = torch.arange(-self.radius - 0.5, self.radius + 1.0, 1.0, dtype=torch.float64)  # (K+1,)
        edges = edges.expand(self.dims, -1)  # (D, K+1)
        x = edges.unsqueeze(1)  # (D, 1, K+1): the same network in float64
        for i, matrix in enumerate(self.matrices):
            x = torch.matmul(F.softplus(matrix.double()), x) + self.biases[i].double()
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i].double()) * torch.tanh(x)
        cdf = torch.sigmoid(x.squeeze(1))  # (D, K+1)
        cdf[:, 0], cdf[:, -1] = 0.0, 1.0  # everything below -R+0.5 / above goes to the end symbols
        return cdf[:, 1:] - cdf[:, :-1]  # (D, K)

    @torch.no_grad()
    def freeze_tables(self) -> None:
        """Evaluate the pmf once and store it as int32 frequencies (the only thing coding reads)."""
        pmf = self.pmf().cpu().numpy()  # (D, K)
        freqs = np.stack([frequencies_from_pmf(p, self.deterministic_mass) for p in pmf])  # (D, K)
        self.freqs.copy_(torch.from_numpy(freqs).to(torch.int32))
        self.stale = False

    def check_tables(self, what: str = "model") -> np.ndarray:
        """The frozen tables as int64 numpy (D, K); raises if absent, stale or malformed."""
        if not self.frozen:
            raise VQAGanError(f"{what}: entropy tables are not frozen (call freeze_tables() after training)")
        if self.stale:
            raise VQAGanError(f"{what}: entropy tables are stale (trained since freeze_tables(); call it again)")
        freqs = self.freqs.cpu().numpy().astype(np.int64)
        if (freqs < 0).any() or (freqs.sum(axis=1) != TOTAL).any():
            raise VQAGanError(f"{what}: entropy tables are corrupt (each row must sum to {TOTAL})")
        return freqs

    def coded_dims(self) -> np.ndarray:
        """Indices of the dims that cost bits (more than one symbol with a count)."""
        return np.flatnonzero((self.freqs > 0).sum(dim=1).cpu().numpy() > 1)

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """Symbols (B, D) int64 in [0, K): round, clamp to the support, pin deterministic dims."""
        symbols = torch.round(y).clamp(-self.radius, self.radius).long() + self.radius  # (B, D)
        if self.frozen and not self.stale:
            pinned = (self.freqs > 0).sum(dim=1) == 1  # (D,)
            mode = self.freqs.argmax(dim=1)  # (D,)
            symbols = torch.where(pinned, mode, symbols)
        return symbols

    def straight_through(self, y: torch.Tensor) -> torch.Tensor:
        """Training's decoder input: the integers `quantize` would send, with gradient d/dy = 1
        inside the support and 0 beyond it (clamping is real there; passing gradient through it
        lets latents run away to +-infinity while the decoder sees +-R)."""
        y_in = y.clamp(-self.radius, self.radius)  # (B, D)
        return y_in + (torch.round(y_in) - y_in).detach()

    def dequantize(self, symbols: torch.Tensor) -> torch.Tensor:
        return (symbols - self.radius).float()  # (B, D) integer-valued latent

    def table_bits(self, symbols: torch.Tensor) -> torch.Tensor:
        """Exact -log2(freq / TOTAL) from the integer tables, summed over dims -> (B,)."""
        freqs = torch.gather(self.freqs.long().expand(len(symbols), -1, -1), 2, symbols.unsqueeze(2)).squeeze(2)
        return (math.log2(TOTAL) - torch.log2(freqs.double())).sum(dim=1).float()  # (B,)

    def float_bits(self, symbols: torch.Tensor) -> torch.Tensor:
        """-log2 of the float pmf at the symbols (before tables exist, or while they are stale) -> (B,)."""
        pmf = self.pmf().to(symbols.device)  # (D, K)
        p = torch.gather(pmf.expand(len(symbols), -1, -1), 2, symbols.unsqueeze(2)).squeeze(2)  # (B, D)
        return -torch.log2(p.clamp_min(1e-12)).sum(dim=1).float()
