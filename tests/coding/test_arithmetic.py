import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vqagan_lib.coding.arithmetic import PRECISION, decode, encode
from vqagan_lib.errors import VQAGanError

TOTAL = 1 << PRECISION


def random_tables(rng, n, k=31, concentration=0.3):
    p = rng.dirichlet(np.ones(k) * concentration, size=n)  # (n, k)
    f = np.floor(p * (TOTAL - k)).astype(np.int64) + 1
    f[np.arange(n), f.argmax(1)] += TOTAL - f.sum(1)
    return f


def sample(rng, freqs):
    u = rng.random((len(freqs), 1)) * TOTAL
    return (u >= np.cumsum(freqs, axis=1)).sum(axis=1)  # (n,)


def information_bits(symbols, freqs):
    return float(-np.log2(freqs[np.arange(len(symbols)), symbols] / TOTAL).sum())


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1), k=st.integers(2, 40))
def test_round_trip_and_near_optimal_length(n, seed, k):
    rng = np.random.default_rng(seed)
    freqs = random_tables(rng, n, k)
    symbols = sample(rng, freqs)
    data = encode(symbols, freqs)
    assert np.array_equal(decode(data, freqs), symbols)
    # The shortest number in an interval of width w needs at most ceil(-log2 w) + 1 bits.
    assert len(data) <= math.ceil((math.ceil(information_bits(symbols, freqs)) + 1) / 8)


def test_one_image_at_8_bits_is_one_or_two_bytes():
    freqs = np.full((2, 16), TOTAL // 16)  # two 4-bit dims: 8 bits of information
    for symbols in ([0, 0], [3, 9], [15, 15], [7, 8]):
        data = encode(symbols, freqs)
        assert 0 <= len(data) <= 2 and list(decode(data, freqs)) == symbols
    assert encode([0, 0], freqs) == b""  # the interval [0, 2^-8) holds 0: nothing to send


def test_rejects_junk_long_and_zero_frequency_payloads():
    freqs = np.array([[TOTAL // 2, TOTAL // 2, 0]] * 3)
    data = encode([1, 0, 1], freqs)
    with pytest.raises(VQAGanError):
        decode(data + b"\x00", freqs)  # trailing junk is not the canonical encoding
    with pytest.raises(VQAGanError):
        decode(b"\x01" * 7, freqs)  # longer than any encoding of 3 symbols
    with pytest.raises(VQAGanError):
        encode([2, 0, 0], freqs)  # zero-frequency symbol cannot be coded
    with pytest.raises(VQAGanError):
        encode([0], np.array([[5, 6]]))  # tables must sum to 2^16


def test_16000_symbols_code_quickly():
    rng = np.random.default_rng(0)
    freqs = random_tables(rng, 16000)
    symbols = sample(rng, freqs)
    start = time.perf_counter()
    data = encode(symbols, freqs)
    assert np.array_equal(decode(data, freqs), symbols)
    assert time.perf_counter() - start < 8.0  # about 0.5 s on one idle core
    assert 8 * len(data) - information_bits(symbols, freqs) < 9


@settings(max_examples=30, deadline=None, derandomize=True)
@given(n=st.integers(1, 400), seed=st.integers(0, 2**32 - 1))
def test_shared_tables_code_exactly_as_one_table_per_symbol(n, seed):
    rng = np.random.default_rng(seed)
    tables = random_tables(rng, 4, 17)  # (T, K): a few tables, as a .vqg stream's coded dims
    rows = rng.integers(0, len(tables), n)  # which table codes each symbol
    symbols = sample(rng, tables[rows])
    data = encode(symbols, tables, rows=rows)
    assert data == encode(symbols, tables[rows])
    assert np.array_equal(decode(data, tables, rows=rows), symbols)
    with pytest.raises(VQAGanError):
        encode(symbols, tables, rows=rows[:-1])  # one table per symbol, or the call is refused
