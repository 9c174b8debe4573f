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

Cost: coded one symbol after another, each symbol would cost a big-integer multiply-add on a number
of n*precision bits, O(n^2) in all. Both directions split the run in halves instead (a product tree:
O(n^1.6) with Karatsuba): the encoder combines the halves' intervals; the decoder reads the first half
from the value's top bits, divides that half's interval out, reads the second, and returns the interval
of what it read, which gives back the one canonical encoding to check the payload against (no second
encoding pass). Runs of at most LEAF symbols are coded sequentially on numbers of at most
LEAF*precision bits, from tables held as Python lists: a numpy scalar costs more than the arithmetic.
A .vqg stream repeats each coded dim's table once per image, so the coder takes the few distinct tables
and which one each symbol uses (`rows`). The benchmark's speed section measures what this costs.

Decoding has a second implementation, in C (`_fast_decode.c`, built by the install where a C compiler is
found: pyproject.toml's ext-modules): the same decoder on fixed-point numbers a little wider than the payload, with error bounds that
prove each symbol and the payload's canonical form, so it returns exactly what the code here returns. Where
a proof fails (rare) or the extension is not built, the integers here decode, so the C file changes how
fast a stream decodes, never what it decodes to or which payloads are refused (tests/coding/test_arithmetic.py).

Introduced in notebooks/02_codec.ipynb.
"""
import bisect

import numpy as np

from vqagan_lib.errors import VQAGanError

try:  # the same decoder in C, built with the package where a C compiler is found (pyproject.toml)
    from vqagan_lib.coding import _fast_decode
except ImportError:
    _fast_decode = None

PRECISION = 16  # log2 of every table's total; 16 bits resolves probabilities down to 1.5e-5
LEAF = 64  # runs this short are coded one symbol at a time; longer ones are split in halves


class _Tables:
    """The tables of n symbols as Python lists, so the per-symbol loops touch no numpy scalars.

    `freqs` is (n, K), one table per symbol, or with `rows` (n,) a few shared tables (T, K) and which
    one each symbol uses: a .vqg stream repeats each coded dim's table once per image, and turning
    T tables into lists is T times cheaper than n.
    """

    def __init__(self, freqs, rows, n: int, precision: int):
        freqs = np.asarray(freqs, dtype=np.int64)
        if rows is None:
            freqs, rows = freqs.reshape(n, -1), np.arange(n)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if freqs.ndim != 2 or len(rows) != n or (n and not 0 <= rows.min() <= rows.max() < len(freqs)):
            raise VQAGanError("arithmetic coder: one table per symbol is needed")
        if not np.all(freqs.sum(axis=1) == 1 << precision):
            raise VQAGanError(f"arithmetic coder: every table must sum to 2**{precision}")
        self.array, self.rows, self.size = freqs, rows, freqs.shape[1]
        ends = np.cumsum(freqs, axis=1)  # (T, K): ends[t, s] = end of symbol s's slice
        by_table = freqs.tolist(), (ends - freqs).tolist(), ends.tolist()
        self.freq, self.start, self.end = ([table[r] for r in rows.tolist()] for table in by_table)  # n lists each


def _interval(symbols: list, tables: _Tables, lo: int, hi: int, shift: int):
    """Exact (L, W) for symbols[lo:hi]: the interval [L, L+W) in units of 2**-(shift*(hi-lo)).

    Concatenation rule: (L_a, W_a) then (L_b, W_b) over n_b symbols gives
    (L_a * 2**(shift*n_b) + W_a * L_b, W_a * W_b); splitting in halves keeps the multiplies balanced.
    """
    if hi - lo <= LEAF:  # small runs: the plain sequential update is fastest
        low, width, start, freq = 0, 1, tables.start, tables.freq
        for i in range(lo, hi):
            s = symbols[i]
            low = (low << shift) + width * start[i][s]
            width *= freq[i][s]
        return low, width
    mid = (lo + hi) // 2
    low_a, width_a = _interval(symbols, tables, lo, mid, shift)
    low_b, width_b = _interval(symbols, tables, mid, hi, shift)
    return (low_a << (shift * (hi - mid))) + width_a * low_b, width_a * width_b


def _shortest(low: int, width: int, total_bits: int) -> bytes:
    """The shortest string of whole bytes whose value (as a fraction of 2**total_bits) lies in [low, low+width)."""
    high = low + width - 1  # the last integer inside the interval
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
    shift = total_bits - 8 * n_bytes  # negative when the code's last byte runs past the last symbol's bits
    return (value >> shift if shift >= 0 else value << -shift).to_bytes(n_bytes, "big") if n_bytes else b""


def encode(symbols, freqs, precision: int = PRECISION, rows=None) -> bytes:
    """Arithmetic-code `symbols` (n,) where symbol i is drawn from the integer table freqs[i] (n, K)
    (or, given `rows` (n,), from the shared table freqs[rows[i]]).

    Every table must sum to 2**precision and give the coded symbol a count >= 1.
    Returns the shortest string of whole bytes whose value lies in the exact interval.
    """
    symbols = np.asarray(symbols, dtype=np.int64).reshape(-1)  # (n,)
    n = len(symbols)
    if n == 0:
        return b""
    tables = _Tables(freqs, rows, n, precision)
    if symbols.min() < 0 or symbols.max() >= tables.size:
        raise VQAGanError("arithmetic coder: a symbol lies outside its table")
    if np.any(tables.array[tables.rows, symbols] <= 0):
        raise VQAGanError("arithmetic coder: a symbol has zero frequency in its table")
    low, width = _interval(symbols.tolist(), tables, 0, n, precision)
    return _shortest(low, width, precision * n)


def _decode_into(value: int, tables: _Tables, lo: int, hi: int, shift: int, out: list):
    """Decode symbols lo..hi-1 into `out` from a value in their interval (units 2**-(shift*(hi-lo)));
    returns their exact interval (L, W), as `_interval` would compute it from what was decoded.

    Divide and conquer, the mirror of `_interval`: the top bits of the value, value >> (shift*n_b),
    lie in the first half's interval; then (value - L_a << shift*n_b) // W_a lies in the second's.
    """
    if hi - lo <= LEAF:  # short runs: peel one symbol at a time
        start, freq, end, size = tables.start, tables.freq, tables.end, tables.size
        unit = 1 << (shift * (hi - lo - 1))  # = width so far * 2**(shift * symbols still to come)
        rest = value  # value minus the low end so far; stays in [0, unit * 2**shift)
        for i in range(lo, hi):
            s = bisect.bisect_right(end[i], rest // unit)  # where the value falls in this symbol's table
            if s >= size or freq[i][s] <= 0:
                raise VQAGanError("arithmetic coder: payload decodes outside the table")
            out[i] = s
            rest -= start[i][s] * unit
            unit *= freq[i][s]
            if i < hi - 1:
                unit >>= shift
        return value - rest, unit  # the low end is what the value was above it; the width, the last unit
    mid = (lo + hi) // 2
    low_a, width_a = _decode_into(value >> (shift * (hi - mid)), tables, lo, mid, shift, out)
    low_b, width_b = _decode_into((value - (low_a << (shift * (hi - mid)))) // width_a, tables, mid, hi, shift, out)
    return (low_a << (shift * (hi - mid))) + width_a * low_b, width_a * width_b


def decode(data: bytes, freqs, precision: int = PRECISION, rows=None) -> np.ndarray:
    """Inverse of `encode`: the n symbols (n = len(freqs), or len(rows) with shared tables) whose
    interval holds `data`.

    Raises VQAGanError if `data` is not exactly what `encode` would write for the decoded
    symbols (too long, trailing junk, or lands on a symbol of zero frequency), so corrupted
    payloads are rejected rather than decoded into plausible-looking garbage.
    """
    n = len(freqs) if rows is None else len(rows)
    total_bits = precision * n
    if 8 * len(data) > total_bits + 7 or (n == 0 and data):
        raise VQAGanError("arithmetic coder: payload longer than any encoding of this many symbols")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    extra = 8 * len(data) - total_bits
    fast = _decode_fast(data, freqs, rows, n, precision, extra)
    if fast is not None:
        return fast
    tables = _Tables(freqs, rows, n, precision)
    value = int.from_bytes(data, "big")
    if extra > 0:
        if value & ((1 << extra) - 1):
            raise VQAGanError("arithmetic coder: payload has bits beyond the last symbol")
        value >>= extra
    else:
        value <<= -extra
    symbols = [0] * n
    low, width = _decode_into(value, tables, 0, n, precision, symbols)
    # The decoded symbols' interval gives back the one canonical encoding: anything else was altered.
    if _shortest(low, width, total_bits) != data:
        raise VQAGanError("arithmetic coder: payload is not the canonical encoding of its symbols")
    return np.array(symbols, dtype=np.int64)


def _decode_fast(data: bytes, freqs, rows, n: int, precision: int, extra: int) -> np.ndarray | None:
    """The symbols by the C decoder (`_fast_decode.c`), or None where it is not built or cannot prove its
    answer; then `decode` decodes on Python integers, to the same symbols or the same error."""
    if _fast_decode is None or not 1 <= precision <= 24:
        return None
    freqs = np.ascontiguousarray(freqs, dtype=np.int64)
    if rows is None:
        freqs, rows = freqs.reshape(n, -1), np.arange(n)
    rows = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1)
    if freqs.ndim != 2 or len(rows) != n or not np.all(freqs.sum(axis=1) == 1 << precision) \
            or (extra > 0 and int.from_bytes(data, "big") & ((1 << extra) - 1)):
        return None  # the exact decoder names what is wrong
    starts = np.ascontiguousarray(np.cumsum(freqs, axis=1) - freqs)
    out = np.empty(n, dtype=np.int64)
    try:
        proven = _fast_decode.decode(data, starts, freqs, rows, out, freqs.shape[1], precision)
    except ValueError:  # rows naming no table
        return None
    return out if proven else None
