import hashlib

import numpy as np
import pytest
import torch
from codec_helpers import random_images, tiny_codec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vqagan_lib.coding import bitstream
from vqagan_lib.coding.bitstream import (BitstreamError, DecodeBudget, check_budget, keyed_check, model_key, pack,
                                         parse, unpack_symbols, write_varint)
from vqagan_lib.errors import VQAGanError
from vqagan_lib.models.entropy_model import TOTAL

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
KEY = hashlib.blake2s(b"a test model").digest()


@pytest.fixture(scope="module")
def codec():
    return tiny_codec()


@pytest.fixture(scope="module")
def stream(codec):
    x = random_images(5, seed=11)
    return bitstream.encode_images(codec, x, sizes=[(64, 64), (50, 70), (64, 64), (1, 1), (300, 20)],
                                   names=["a.png", "b.jpg", "c.png", "d.png", "é.png"])


def resealed(body: bytes, key: bytes, check_size: int = 4) -> bytes:
    """A body with a valid keyed check: what an attacker who knows the model's key could write."""
    return body + keyed_check(key, body, check_size)


def test_one_image_at_8_bits_fits_in_8_bytes_with_5_bytes_of_header_and_check():
    freqs = np.full((2, 16), TOTAL // 16)  # two coded 4-bit dims: 8 bits per image
    for symbols in ([[0, 0]], [[5, 11]], [[15, 15]]):
        data = pack(np.array(symbols), freqs, KEY)
        vqg = parse(data)
        assert len(data) - len(vqg.payload) == 5  # magic, version|flags, 3-byte check: the one-image overhead
        assert len(data) <= 8 and vqg.header_bytes == 2 and len(vqg.check) == 3 and vqg.count == 1
        assert vqg.matches(KEY) and not vqg.matches(bytes(32))
        assert unpack_symbols(vqg, freqs).tolist() == symbols


def test_a_1000_image_stream_costs_8_bytes_of_header_and_check():
    freqs = np.full((16, 16), TOTAL // 16)  # 16 coded 4-bit dims
    symbols = np.random.default_rng(0).integers(0, 16, (1000, 16))
    vqg = parse(pack(symbols, freqs, KEY))
    assert vqg.header_bytes + len(vqg.check) == 8  # magic, version|flags, 2-byte count, 4-byte check
    chunk_lengths = len(vqg.payload) - 1000 * 16 * 4 // 8  # 16,000 symbols: 3 length varints of 2 bytes
    assert chunk_lengths == 6
    assert unpack_symbols(vqg, freqs).tolist() == symbols.tolist()


def test_deterministic_dims_cost_nothing():
    freqs = np.zeros((3, 4), dtype=np.int64)
    freqs[:, 2] = TOTAL  # every dim deterministic
    data = pack(np.full((7, 3), 2), freqs, KEY)
    assert len(data) == 7  # magic, version+flags, count, 4-byte check: no payload
    assert unpack_symbols(parse(data), freqs).tolist() == [[2, 2, 2]] * 7


def test_sizes_and_names_round_trip(codec, stream):
    vqg = parse(stream, "s.vqg")
    assert vqg.sizes == [(64, 64), (50, 70), (64, 64), (1, 1), (300, 20)]
    assert vqg.names == ["a.png", "b.jpg", "c.png", "d.png", "é.png"]
    images, sizes, names = bitstream.decode_images(codec, stream)
    assert images.shape == (5, 3, 64, 64) and sizes == vqg.sizes and names == vqg.names


def test_clear_errors_for_wrong_magic_version_model_and_junk(codec, stream):
    key = model_key(codec)
    with pytest.raises(BitstreamError, match="x.vqg: .*magic"):
        parse(b"\x89PNG\r\n\x1a\n" + stream, "x.vqg")
    with pytest.raises(BitstreamError, match="version 3"):
        parse(stream[:1] + bytes([0x30 | stream[1] & 15]) + stream[2:], "x.vqg")
    with pytest.raises(BitstreamError, match="version 1 .*compress the images again"):
        parse(bytes.fromhex("9b10beef01"), "x.vqg")  # a version-1 file: fingerprint, count, CRC
    with pytest.raises(BitstreamError, match="x.vqg: does not check out .*another model.*altered"):
        bitstream.decode_images(codec, stream[:-1] + bytes([stream[-1] ^ 1]), "x.vqg")
    with pytest.raises(BitstreamError, match="x.vqg: does not check out"):
        bitstream.decode_images(tiny_codec(seed=1), stream, "x.vqg")
    with pytest.raises(BitstreamError, match="x.vqg"):  # junk after the payload, check made to match
        bitstream.decode_images(codec, resealed(stream[:-4] + b"\x00", key), "x.vqg")
    with pytest.raises(BitstreamError, match="zero images"):
        parse(resealed(stream[:2] + b"\x00", key), "x.vqg")
    with pytest.raises(BitstreamError, match="not minimal"):
        parse(resealed(stream[:2] + b"\x85\x00", key), "x.vqg")
    with pytest.raises(BitstreamError, match="one image without the one-image flag"):
        parse(resealed(stream[:2] + b"\x01", key), "x.vqg")


def test_every_truncation_is_rejected(codec, stream):
    for n in range(len(stream)):
        with pytest.raises(BitstreamError, match="t.vqg"):
            bitstream.decode_images(codec, stream[:n], "t.vqg")


def test_the_keyed_check_covers_the_model_layout_and_tables(codec):
    other = tiny_codec()  # same seed: same weights and tables, same key
    assert model_key(other) == model_key(codec)
    other.entropy_model.freqs[0, other.entropy_model.freqs[0].argmax()] -= 1
    other.entropy_model.freqs[0, other.entropy_model.freqs[0].argmin()] += 1  # one count moved: another model
    assert model_key(other) != model_key(codec)


def test_the_cached_key_follows_every_change_to_the_model():
    model = tiny_codec()
    first = model_key(model)
    assert model_key(model) == first  # cached: the same model, unchanged
    with torch.no_grad():
        next(model.decoder.parameters()).add_(0.5)  # an optimiser step, in place
    moved = model_key(model)
    assert moved != first
    model.load_state_dict(tiny_codec().state_dict())  # back to the original weights, copied in place
    assert model_key(model) == first
    model.decoder = tiny_codec(seed=5).decoder  # a part replaced outright
    assert model_key(model) != first


def test_decode_budget_is_checked_from_the_header(codec):
    freqs = np.full((2, 16), TOTAL // 16)
    many = parse(pack(np.zeros((30, 2), dtype=np.int64), freqs, KEY), "many.vqg")
    with pytest.raises(BitstreamError, match="many.vqg: holds 30 images, more than the decode budget of 20"):
        check_budget(many, "many.vqg", DecodeBudget(max_images=20))
    check_budget(many, "many.vqg", DecodeBudget(max_images=30, max_pixels=30 * 64 * 64), image_size=64)
    with pytest.raises(BitstreamError, match="decodes to 122,880 pixels, more than the decode budget of 100,000"):
        check_budget(many, "many.vqg", DecodeBudget(max_pixels=100_000), image_size=64)
    big = parse(pack(np.zeros((10, 2), dtype=np.int64), freqs, KEY, sizes=[(7071, 7071)] * 10), "big.vqg")
    with pytest.raises(BitstreamError, match="big.vqg: decodes to 499,990,410 pixels.*--max-pixels"):
        check_budget(big, "big.vqg")  # the 47-byte bomb of issue 15: refused before any model is loaded
    check_budget(big, "big.vqg", DecodeBudget(max_pixels=500_000_000))
    huge = parse(pack(np.zeros((100_000, 2), dtype=np.int64), freqs, KEY), "huge.vqg")
    with pytest.raises(BitstreamError, match="huge.vqg: holds 100,000 images.*--max-images"):
        check_budget(huge, "huge.vqg")  # the 100,000-image file of issue 15


def test_a_decoding_bomb_is_refused_before_the_decoder_runs(codec, monkeypatch):
    bomb = pack(np.zeros((2, 6), dtype=np.int64), codec.entropy_model.check_tables(), model_key(codec),
                sizes=[(7071, 7071)] * 2)
    monkeypatch.setattr(codec, "decompress", lambda symbols: pytest.fail("decoder ran"))
    with pytest.raises(BitstreamError, match="b.vqg: decodes to 99,998,082 pixels"):
        bitstream.decode_images(codec, bomb, "b.vqg")


def test_decoding_runs_the_network_a_batch_at_a_time(codec, monkeypatch):
    x = random_images(7, seed=3)
    data = bitstream.encode_images(codec, x)
    calls = []
    decompress = codec.decompress
    monkeypatch.setattr(codec, "decompress", lambda symbols: calls.append(len(symbols)) or decompress(symbols))
    vqg, symbols = bitstream.read_symbols(codec, data)
    images = torch.cat(list(bitstream.decode_batches(codec, symbols, batch=3)))
    assert calls == [3, 3, 1]  # never the whole file at once
    torch.testing.assert_close(images, decompress(torch.from_numpy(symbols)))  # batching changes float rounding only


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
@given(mutations=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
       cut=st.integers(0, 8))
def test_mutated_files_are_refused_or_re_encode_to_the_same_bytes(codec, stream, mutations, cut):
    """Header and payload mutations (with the check resealed, as only the model's owner could): the
    reader refuses them with the clear error, or what it reads packs back to exactly those bytes,
    so no two files decode to the same images and nothing is silently skipped."""
    key = model_key(codec)
    body = bytearray(stream[:-4])
    for position, value in mutations:
        body[position % len(body)] = value
    data = resealed(bytes(body[:len(body) - cut]), key)
    try:
        vqg, symbols = bitstream.read_symbols(codec, data, "m.vqg", DecodeBudget(max_images=100, max_pixels=10**7))
    except BitstreamError as e:
        assert str(e).startswith("m.vqg: ")
        return
    freqs = codec.entropy_model.check_tables()
    assert pack(symbols, freqs, key, vqg.sizes, vqg.names) == data


def test_varints_and_pack_limits():
    assert write_varint(0) == b"\x00" and write_varint(300) == b"\xac\x02"
    freqs = np.full((1, 2), TOTAL // 2)
    with pytest.raises(VQAGanError):
        pack(np.zeros((0, 1), dtype=np.int64), freqs, KEY)
    with pytest.raises(VQAGanError):
        pack(np.zeros((1, 1), dtype=np.int64), freqs, KEY, names=["../evil"])
    with pytest.raises(VQAGanError, match="not UTF-8"):
        pack(np.zeros((1, 1), dtype=np.int64), freqs, KEY, names=["caf\udce9.png"])
    with pytest.raises(BitstreamError, match="more than the 67,108,864-byte limit"):
        parse(bytes(bitstream.MAX_FILE_BYTES + 1), "huge.vqg")
