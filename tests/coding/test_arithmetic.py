import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vqagan_lib.coding import arithmetic
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


def python_decode(data, freqs, precision=PRECISION, rows=None):
    """The exact decoder on Python integers alone, with the C decoder switched off."""
    saved, arithmetic._fast_decode = arithmetic._fast_decode, None
    try:
        return decode(data, freqs, precision=precision, rows=rows)
    finally:
        arithmetic._fast_decode = saved


def outcome(fn, *args, **kwargs):
    try:
        return "decoded", fn(*args, **kwargs).tolist()
    except VQAGanError as e:
        return "refused", str(e)


@pytest.mark.skipif(arithmetic._fast_decode is None, reason="the C decoder is not built here")
def test_c_decoder_decodes_and_refuses_exactly_as_the_python_one():
    """Random runs at every precision it takes, with zero-frequency symbols, runs of first symbols (whose
    encoding is their interval's low end) and altered payloads: the same symbols or the same refusal."""
    rng = np.random.default_rng(7)
    proven = runs = 0
    for _ in range(400):
        precision = int(rng.integers(1, 25))
        total, n, k = 1 << precision, int(rng.integers(1, 300)), int(rng.integers(1, 33))
        p = rng.dirichlet(np.ones(k) * rng.choice([0.05, 0.5, 5.0]), size=n)
        freqs = np.floor(p * total).astype(np.int64)
        freqs[np.arange(n), freqs.argmax(1)] += total - freqs.sum(1)
        symbols = (rng.random((n, 1)) * total >= np.cumsum(freqs, axis=1)).sum(axis=1)
        if rng.random() < 0.2:
            symbols[:] = 0
        symbols = np.where(freqs[np.arange(n), np.minimum(symbols, k - 1)] > 0, np.minimum(symbols, k - 1), freqs.argmax(1))
        data = encode(symbols, freqs, precision=precision)
        fast = arithmetic._decode_fast(data, freqs, None, n, precision, 8 * len(data) - precision * n)
        runs, proven = runs + 1, proven + (fast is not None)
        assert fast is None or np.array_equal(fast, symbols)
        flipped = bytes([data[0] ^ 1 << int(rng.integers(8))]) + data[1:] if data else b"\x01"
        noise = bytes(rng.integers(0, 256, max(len(data), 1), dtype=np.uint8))
        for payload in (data, data + b"\x00", data + b"\x80", data[:-1], flipped, noise):
            assert outcome(decode, payload, freqs, precision=precision) == \
                outcome(python_decode, payload, freqs, precision=precision)
    assert proven >= 0.95 * runs  # the C decoder proves its answer almost always; else it would buy nothing


@pytest.mark.skipif(arithmetic._fast_decode is None, reason="the C decoder is not built here")
def test_c_decoder_proves_a_whole_chunk_of_scene_symbols():
    rng = np.random.default_rng(3)
    tables = random_tables(rng, 18, 10)  # a scene codec's coded dims, 4096 symbols: one .vqg chunk
    rows = np.arange(4096) % len(tables)
    symbols = sample(rng, tables[rows])
    data = encode(symbols, tables, rows=rows)
    fast = arithmetic._decode_fast(data, tables, rows, len(rows), PRECISION, 8 * len(data) - PRECISION * len(rows))
    assert fast is not None and np.array_equal(fast, symbols)
    # a long payload is decided in blocks on a window of its top bits: altered anywhere, still as the Python decoder
    middle = len(data) // 2
    for payload in (data[:middle] + bytes([data[middle] ^ 4]) + data[middle + 1:], data[:-1] + bytes([data[-1] ^ 1]),
                    bytes([data[0] ^ 128]) + data[1:], data + b"\x01"):
        assert outcome(decode, payload, tables, rows=rows) == outcome(python_decode, payload, tables, rows=rows)


def test_codes_whose_last_byte_runs_past_the_last_symbol():
    """precision * n not a multiple of 8: the shortest code may still need a last byte of which only some bits count."""
    rng = np.random.default_rng(5)
    for precision, n in ((3, 5), (5, 3), (7, 9), (1, 3)):
        total = 1 << precision
        freqs = np.full((n, 2), total // 2)
        for _ in range(20):
            symbols = rng.integers(0, 2, n)
            data = encode(symbols, freqs, precision=precision)
            assert np.array_equal(decode(data, freqs, precision=precision), symbols)
            assert np.array_equal(python_decode(data, freqs, precision=precision), symbols)
