"""Speed work must not change what a codec writes or draws: every shipped codec against its golden files.

The golden files (tests/coding/golden/, written by make_golden_streams.py before the speed work) hold each
codec's stream of its dataset's first test images and the pixels that stream decoded to.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from make_golden_streams import GOLDEN, shipped_codecs, strip, first_test_images
from vqagan_lib.coding.bitstream import decode_images, decode_pixels, encode_images
from vqagan_lib.coding.images import to_pixels
from vqagan_lib.models.codec import load_codec

CARDS = shipped_codecs()


def test_every_shipped_codec_has_golden_files():
    assert CARDS and all((GOLDEN / f"{c['name']}.vqg").exists() and (GOLDEN / f"{c['name']}.png").exists()
                         for c in CARDS)


@pytest.mark.parametrize("card", CARDS, ids=[c["name"] for c in CARDS])
def test_stream_bytes_and_pixels_are_unchanged(card):
    codec = load_codec(card["name"])
    golden = (GOLDEN / f"{card['name']}.vqg").read_bytes()
    assert encode_images(codec, first_test_images(card)) == golden
    decoded, _, _ = decode_images(codec, golden)
    want = np.asarray(Image.open(GOLDEN / f"{card['name']}.png")).astype(int)
    diff = np.abs(strip(decoded).astype(int) - want)
    assert diff.max() <= 1  # float rounding may move a pixel by one level of 255, never more
    pixels, _, _ = decode_pixels(codec, golden)  # the fast path: the same pixels exactly
    assert torch.equal(pixels, to_pixels(decoded))


@pytest.mark.parametrize("card", [c for c in CARDS if c["kind"] == "fsq"], ids=lambda c: c["name"])
def test_a_shipped_decode_table_is_the_decoder_network_on_every_entry(card):
    codec = load_codec(card["name"])
    if not codec.decodes_by_table:
        pytest.skip(f"{card['name']} has {codec.code_space:,} codes: decoded by the network, no table")
    every = codec.all_symbols()  # (code_space, G)
    with torch.no_grad():
        drawn = torch.cat([to_pixels(codec.decoder(codec.code_of(chunk))) for chunk in every.split(512)])
    assert torch.equal(codec.decompress_pixels(every), drawn)


@pytest.mark.parametrize("card", CARDS, ids=[c["name"] for c in CARDS])
def test_a_file_codes_to_the_same_bytes_and_pixels_in_batches_of_any_size(card, monkeypatch):
    from vqagan_lib.coding import bitstream

    codec = load_codec(card["name"])
    golden = (GOLDEN / f"{card['name']}.vqg").read_bytes()
    whole, _, _ = decode_pixels(codec, golden)
    # 8 images: batches of 3, 3 and 2, each encoded on its own and drawn into its rows of the output
    monkeypatch.setattr(bitstream, "ENCODE_BATCH", 3)
    monkeypatch.setattr(bitstream, "DECODE_BATCH", 3)
    assert encode_images(codec, first_test_images(card)) == golden
    batched = decode_pixels(codec, golden)[0]
    if getattr(codec.decoder, "draw", None) is not None:  # drawn straight to 8 bits: exactly the same
        assert torch.equal(batched, whole)
    else:  # a conv decoder's float sums depend on the batch: one level of 255 at most, as above
        assert (batched.int() - whole.int()).abs().max() <= 1
