"""An exact arithmetic coder on Python integers: the shortest byte string for a run of symbols.

Arithmetic coding maps a sequence of symbols to a sub-interval of [0, 1): each symbol s
narrows the current interval to the slice [cum[s], cum[s] + freq[s]) / total of it. After n
symbols, with every table summing to total = 2**precision, the interval is exactly

    [L, L + W) / 2**(precision * n),   W = freq[s_0] * freq[s_1] * ... * freq[s_{n-1}]

and any number inside it identifies the whole sequence (the decoder knows n). We send the
number inside it with the fewest binary digits (later digits are implied zeros), padded with
zero bits to whole bytes: about -log2(W / 2**(precision*n)) + 1 bits, i.e. the information
content plus at most one byte. Python's integers are exact and unbounded, so there is no
renormalisation, no carry handling and no float anywhere.

Why not constriction (or any rANS / range coder library)? They renormalise through whole
32-bit words and flush the final state as whole words, so even a 1-bit message costs >= 4
bytes (see notebook 02 for the measured numbers). At ~8 bits per image that is 4x the payload
and alone breaks the 8-byte single-image file target; exactness costs us big-integer time
instead, which is fine at our sizes (notebook 02 measures it).

Cost: each symbol costs one big-integer multiply-add on a number of n*precision bits, i.e.
O(n^2) overall. The encoder avoids this by combining halves (a product tree: O(n^1.6) with
Karatsuba); the decoder is sequential but its per-symbol division has a 16-bit quotient,
which is cheap. 16,000 symbols (1000 images x 16 dims) encode + decode in well under a second.

Introduced in notebooks/02_codec.ipynb.
"""
import numpy as np

from vqagan_lib.errors import VQAGanError

PRECISION = 16  # log2 of every table's total; 16 bits resolves probabilities down to 1.5e-5


def _interval(symbols: np.ndarray, start: np.ndarray, freq: np.ndarray, lo: int, hi: int, shift: int):
    """Exact (L, W) for symbols[lo:hi]: the interval [L, L+W) in units of 2**-(shift*(hi-lo)).

    Concatenation rule: (L_a, W_a) then (L_b, W_b) over n_b symbols gives
    (L_a * 2**(shift*n_b) + W_a * L_b, W_a * W_b); splitting in halves keeps the multiplies balanced.
    """
    if hi - lo <= 64:  # small runs: the plain sequential update is fastest
        low, width = 0, 1
        for i in range(lo, hi):
            s = symbols[i]
            low = (low << shift) + width * int(start[i, s])
            width *= int(freq[i, s])
        return low, width
    mid = (lo + hi) // 2
    low_a, width_a = _interval(symbols, start, freq, lo, mid, shift)
    low_b, width_b = _interval(symbols, start, freq, mid, hi, shift)
    return (low_a << (shift * (hi - mid))) + width_a * low_b, width_a * width_b


def encode(symbols, freqs, precision: int = PRECISION) -> bytes:
    """Arithmetic-code `symbols` (n,) where symbol i is drawn from the integer table freqs[i] (n, K).

    Every row of `freqs` must sum to 2**precision and give the coded symbol a count >= 1.
    Returns the shortest string of whole bytes whose value lies in the exact interval.
    """
    symbols = np.asarray(symbols, dtype=np.int64).reshape(-1)  # (n,)
    n = len(symbols)
    if n == 0:
        return b""
    freqs = np.asarray(freqs, dtype=np.int64).reshape(n, -1)  # (n, K)
    if symbols.min() < 0 or symbols.max() >= freqs.shape[1]:
        raise VQAGanError("arithmetic coder: a symbol lies outside its table")
    if not np.all(freqs.sum(axis=1) == 1 << precision):
        raise VQAGanError(f"arithmetic coder: every table must sum to 2**{precision}")
    if np.any(freqs[np.arange(n), symbols] <= 0):
        raise VQAGanError("arithmetic coder: a symbol has zero frequency in its table")
    start = np.cumsum(freqs, axis=1) - freqs  # (n, K): where each symbol's slice begins
    low, width = _interval(symbols, start, freqs, 0, n, precision)
    high = low + width - 1  # the last integer inside the interval
    total_bits = precision * n
    # The number in [low, high] with the most trailing zeros: either low itself, or the common
    # prefix of low and high followed by a 1 at the first bit where they differ.
    top = (low ^ high).bit_length() - 1  # -1 when low == high
    zeros_low = (low & -low).bit_length() - 1 if low else total_bits
    if zeros_low > top:
        value, zeros = low, zeros_low
    else:
        value, zeros = (high >> top) << top, top
    n_bits = total_bits - zeros  # significant bits of the code, 0 when value == 0
    n_bytes = (n_bits + 7) // 8
    return (value >> (total_bits - 8 * n_bytes)).to_bytes(n_bytes, "big") if n_bytes else b""


def _decode_into(value: int, freqs, cum, lo: int, hi: int, shift: int, out: np.ndarray) -> None:
    """Decode symbols lo..hi-1 into `out` from a value in their interval (units 2**-(shift*(hi-lo))).

    Divide and conquer, the mirror of `_interval`: the top bits of the value, value >> (shift*n_b),
    lie in the first half's interval; then (value - L_a << shift*n_b) // W_a lies in the second's.
    """
    if hi - lo <= 64:  # short runs: peel one symbol at a time
        unit = 1 << (shift * (hi - lo - 1))  # = width so far * 2**(shift * symbols still to come)
        rest = value  # value minus the low end so far; stays in [0, unit * 2**shift)
        for i in range(lo, hi):
            t = rest // unit  # where the value falls in this symbol's table, in [0, 2**shift)
            s = int(np.searchsorted(cum[i], t, side="right"))
            if s >= freqs.shape[1] or freqs[i, s] <= 0:
                raise VQAGanError("arithmetic coder: payload decodes outside the table")
            out[i] = s
            rest -= int(cum[i, s] - freqs[i, s]) * unit
            unit = (unit * int(freqs[i, s])) >> shift if i < hi - 1 else unit
        return
    mid = (lo + hi) // 2
    _decode_into(value >> (shift * (hi - mid)), freqs, cum, lo, mid, shift, out)
    low_a, width_a = _interval(out, cum - freqs, freqs, lo, mid, shift)
    _decode_into((value - (low_a << (shift * (hi - mid)))) // width_a, freqs, cum, mid, hi, shift, out)


def decode(data: bytes, freqs, precision: int = PRECISION) -> np.ndarray:
    """Inverse of `encode`: the n symbols (n = len(freqs)) whose interval holds `data`.

    Raises VQAGanError if `data` is not exactly what `encode` would write for the decoded
    symbols (too long, trailing junk, or lands on a symbol of zero frequency), so corrupted
    payloads are rejected rather than decoded into plausible-looking garbage.
    """
    freqs = np.asarray(freqs, dtype=np.int64)  # (n, K)
    n = len(freqs)
    total_bits = precision * n
    if 8 * len(data) > total_bits + 7 or (n == 0 and data):
        raise VQAGanError("arithmetic coder: payload longer than any encoding of this many symbols")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(freqs, axis=1)  # (n, K): cum[i, s] = end of symbol s's slice
    value = int.from_bytes(data, "big")
    extra = 8 * len(data) - total_bits
    if extra > 0:
        if value & ((1 << extra) - 1):
            raise VQAGanError("arithmetic coder: payload has bits beyond the last symbol")
        value >>= extra
    else:
        value <<= -extra
    symbols = np.empty(n, dtype=np.int64)
    _decode_into(value, freqs, cum, 0, n, precision, symbols)
    if encode(symbols, freqs, precision) != data:
        raise VQAGanError("arithmetic coder: payload is not the canonical encoding of its symbols")
    return symbols
