import numpy as np
import pytest
import torch
from codec_helpers import random_images, tiny_codec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vqagan_lib.coding import bitstream
from vqagan_lib.coding.bitstream import BitstreamError, crc8, pack, parse, unpack_symbols, write_varint
from vqagan_lib.models.entropy_model import TOTAL
from vqagan_lib.errors import VQAGanError

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def codec():
    return tiny_codec()


@pytest.fixture(scope="module")
def stream(codec):
    x = random_images(5, seed=11)
    return bitstream.encode_images(codec, x, sizes=[(64, 64), (50, 70), (64, 64), (1, 1), (300, 20)],
                                   names=["a.png", "b.jpg", "c.png", "d.png", "é.png"])


def with_crc(body: bytes) -> bytes:
    return body + bytes([crc8(body)])


def test_one_image_at_8_bits_fits_in_8_bytes():
    freqs = np.full((2, 16), TOTAL // 16)  # two coded 4-bit dims: 8 bits per image
    for symbols in ([[0, 0]], [[5, 11]], [[15, 15]]):
        data = pack(np.array(symbols), freqs, fingerprint=0xBEEF)
        assert len(data) <= 8
        vqg = parse(data)
        assert vqg.header_bytes == 5 and vqg.fingerprint == 0xBEEF and vqg.count == 1
        assert unpack_symbols(vqg, freqs, 2).tolist() == symbols


def test_deterministic_dims_cost_nothing():
    freqs = np.zeros((3, 4), dtype=np.int64)
    freqs[:, 2] = TOTAL  # every dim deterministic
    data = pack(np.full((7, 3), 2), freqs, fingerprint=1)
    assert len(data) == 6  # magic, version+flags, fingerprint x2, count, CRC: no payload
    assert unpack_symbols(parse(data), freqs, 3).tolist() == [[2, 2, 2]] * 7


def test_sizes_and_names_round_trip(codec, stream):
    vqg = parse(stream, "s.vqg")
    assert vqg.sizes == [(64, 64), (50, 70), (64, 64), (1, 1), (300, 20)]
    assert vqg.names == ["a.png", "b.jpg", "c.png", "d.png", "é.png"]
    images, sizes, names = bitstream.decode_images(codec, stream)
    assert images.shape == (5, 3, 64, 64) and sizes == vqg.sizes and names == vqg.names


def test_clear_errors_for_wrong_magic_version_model_and_junk(codec, stream):
    with pytest.raises(BitstreamError, match="x.vqg: .*magic"):
        parse(b"\x89PNG\r\n\x1a\n" + stream, "x.vqg")
    with pytest.raises(BitstreamError, match="version 2"):
        parse(stream[:1] + bytes([0x20 | stream[1] & 15]) + stream[2:], "x.vqg")
    with pytest.raises(BitstreamError, match="checksum"):
        parse(stream[:-1] + bytes([stream[-1] ^ 1]), "x.vqg")
    with pytest.raises(BitstreamError, match="fingerprint"):
        bitstream.decode_images(tiny_codec(seed=1), stream, "x.vqg")
    with pytest.raises(BitstreamError, match="x.vqg"):  # junk after the payload, CRC made to match
        bitstream.decode_images(codec, with_crc(stream[:-1] + b"\x00"), "x.vqg")
    with pytest.raises(BitstreamError, match="zero images"):
        parse(with_crc(stream[:4] + b"\x00"), "x.vqg")
    with pytest.raises(BitstreamError, match="not minimal"):
        parse(with_crc(stream[:4] + b"\x85\x00"), "x.vqg")


def test_every_truncation_is_rejected(codec, stream):
    for n in range(len(stream)):
        with pytest.raises(BitstreamError, match="t.vqg"):
            bitstream.decode_images(codec, stream[:n], "t.vqg")


@FUZZ
@given(position=st.integers(0, 10_000), xor=st.integers(1, 255))
def test_any_changed_byte_is_rejected(codec, stream, position, xor):
    data = bytearray(stream)
    data[position % len(data)] ^= xor
    with pytest.raises(BitstreamError):
        bitstream.decode_images(codec, bytes(data), "f.vqg")


@FUZZ
@given(data=st.binary(max_size=64))
def test_random_bytes_give_only_the_clear_error(codec, data):
    with pytest.raises(BitstreamError, match="r.vqg"):
        bitstream.decode_images(codec, data, "r.vqg")


@FUZZ
@given(mutations=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_streams_with_valid_crc_never_crash(codec, stream, mutations):
    """Past the CRC (1 in 256 corruptions), the parser and decoder still give only the clear error or images."""
    body = bytearray(stream[:-1])
    for position, value in mutations:
        body[position % len(body)] = value
    try:
        images, sizes, names = bitstream.decode_images(codec, with_crc(bytes(body)), "m.vqg")
    except BitstreamError:
        return
    assert images.shape[1:] == (3, 64, 64) and bool(torch.isfinite(images).all())


def test_varints_and_pack_limits():
    assert write_varint(0) == b"\x00" and write_varint(300) == b"\xac\x02"
    freqs = np.full((1, 2), TOTAL // 2)
    with pytest.raises(VQAGanError):
        pack(np.zeros((0, 1), dtype=np.int64), freqs, 0)
    with pytest.raises(VQAGanError):
        pack(np.zeros((1, 1), dtype=np.int64), freqs, 0, names=["../evil"])
