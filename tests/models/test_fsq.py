import math

import numpy as np
import pytest
import torch

from vqagan_lib.coding import arithmetic
from vqagan_lib.coding.images import to_pixels
from vqagan_lib.errors import VQAGanError
from vqagan_lib.models.categorical_prior import CategoricalPrior
from vqagan_lib.models.codec import CodecConfig, build_model
from vqagan_lib.models.entropy_model import TOTAL
from vqagan_lib.models.fsq import FSQ


@pytest.mark.parametrize("levels", [(8, 6, 5), (5, 5), (3, 4, 7), (2, 3, 2)])
def test_fsq_has_exactly_the_levels_asked_for(levels):
    fsq = FSQ(levels)
    code = fsq(torch.randn(20000, len(levels)) * 3)  # (N, d) in [-1, 1]
    for i, level in enumerate(levels):
        assert len(torch.unique(code[:, i])) == level  # wide inputs reach every level, and no more
    assert code.abs().max() <= 1.0


def test_index_round_trip_covers_every_code_once():
    fsq = FSQ((8, 6, 5))
    every = fsq.from_index(torch.arange(fsq.size))  # (240, 3)
    assert torch.equal(fsq.to_index(every), torch.arange(fsq.size))
    assert len(torch.unique(every, dim=0)) == fsq.size == 240
    z = torch.randn(100, 3) * 2
    assert torch.equal(fsq.from_index(fsq.to_index(fsq(z))), fsq(z))


def test_straight_through_gradient_is_that_of_the_bounding():
    fsq = FSQ((8, 5))
    z = torch.randn(16, 2, requires_grad=True)
    fsq(z).sum().backward()
    w = z.detach().clone().requires_grad_()
    (fsq.bound(w) / torch.tensor([4.0, 2.0])).sum().backward()  # the same map without the rounding
    assert torch.allclose(z.grad, w.grad) and (z.grad > 0).all()  # rounding passes the gradient through unchanged


def test_two_levels_split_at_zero_and_one_level_is_refused():
    fsq = FSQ((2,))
    z = torch.tensor([[-3.0], [-1e-3], [1e-3], [3.0]])
    assert fsq.to_digits(fsq(z)).flatten().tolist() == [0, 0, 1, 1]  # z = 0 is the one bin edge
    with pytest.raises(ValueError, match=">= 2"):
        FSQ((1, 5))


def test_the_shift_leaves_three_or_more_levels_as_they_were():
    """The half-bin shift of the even levels is atanh(0.5 / half), as every shipped code was trained with."""
    for level in range(3, 70):
        fsq, z = FSQ((level,)), torch.linspace(-4, 4, 801)[:, None]
        half, offset = (level - 1) / 2, 0.5 * (level % 2 == 0)
        assert torch.allclose(fsq.bound(z), torch.tanh(z + math.atanh(offset / half)) * half - offset)


def test_prior_tables_sum_to_the_coder_total_and_follow_the_counts():
    prior = CategoricalPrior((240, 5))
    indices = torch.tensor([[3, 0]] * 90 + [[7, 1]] * 10)
    prior.fit(indices)
    freqs = prior.check_tables()
    assert (freqs.sum(axis=1) == TOTAL).all()
    assert (freqs[0, :240] >= 1).all() and (freqs[0, 240:] == 0).all()  # every code codable; padding never a symbol
    assert freqs[0, 3] > 8 * freqs[0, 7] > 8 * freqs[0, 100]
    bits = prior.table_bits(torch.tensor([[3, 0], [7, 1]]))
    assert bits[0] < bits[1]  # the common code is the cheap one
    assert math.isclose(float(bits[0]), -math.log2(freqs[0, 3] / TOTAL) - math.log2(freqs[1, 0] / TOTAL), rel_tol=1e-6)


def test_unfitted_prior_refuses_to_code():
    with pytest.raises(Exception, match="no integer tables"):
        CategoricalPrior((10,)).check_tables("m")


def test_code_indices_are_coded_exactly_at_their_table_cost():
    prior = CategoricalPrior((240,))
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 50, 240)
    prior.fit(torch.from_numpy(np.repeat(np.arange(240), counts))[:, None])
    freqs = prior.check_tables()
    symbols = rng.choice(240, size=500, p=counts / counts.sum())
    tables = np.tile(freqs[0], (500, 1))
    blob = arithmetic.encode(symbols, tables)
    assert np.array_equal(arithmetic.decode(blob, tables), symbols)
    info = float(prior.table_bits(torch.from_numpy(symbols)[:, None]).sum())
    assert info <= 8 * len(blob) <= info + 16  # the information content plus at most the final bytes


def test_discrete_codec_round_trip_and_table_decoding():
    torch.manual_seed(0)
    codec = build_model(CodecConfig(model="fsq", answer_levels=(5, 5), geometry_levels=(3, 4), channels=8, encoder_channels=8))
    x = torch.rand(6, 3, 64, 64)
    codec.eval()
    code = codec.code(x)
    symbols = codec.symbols_of(code)  # (6, 3): answer index, then one digit per geometry dim
    assert symbols.shape == (6, 3) and torch.equal(codec.code_of(symbols), code)
    codec.entropy_model.fit(codec.all_symbols())
    assert torch.equal(codec.compress(x), symbols)
    by_table = codec.decompress(symbols)
    assert codec.code_space == 25 * 12 and codec.render_table().shape[0] == codec.code_space
    assert torch.allclose(by_table, codec.decoder(code), atol=1e-6)  # the table is the decoder, cached
    # The 8-bit table is the network decoder, rounded, on every entry: no code decodes differently.
    every = codec.all_symbols()
    assert torch.equal(codec.decompress_pixels(every), to_pixels(codec.decoder(codec.code_of(every))))
    codec.train()
    assert codec._table is None and codec._pixel_table is None  # training invalidates the cached renderings


def test_layered_decoder_draws_in_8_bits_what_it_draws_in_floats():
    from vqagan_lib.models.layered_decoder import LayeredDecoder

    torch.manual_seed(0)
    decoder = LayeredDecoder(64, 16, 3, 4).eval()
    code = torch.rand(300, 7) * 2 - 1
    code[:, :3] = torch.round(code[:, :3] * 2) / 2  # few distinct answer codes, as a real batch has
    with torch.no_grad():
        assert torch.equal(decoder.draw(code), to_pixels(decoder(code)))
    with pytest.raises(RuntimeError):
        decoder.train().draw(code)  # training mode draws soft masks: there is no 8-bit picture of that


def test_layered_decoder_draws_one_flat_sprite_with_hard_edges_where_the_digits_say():
    from vqagan_lib.models.layered_decoder import LayeredDecoder

    torch.manual_seed(0)
    decoder = LayeredDecoder(64, 16, 3, 4)
    code = torch.zeros(2, 7)
    code[1, 3] = 0.5  # the first geometry digit is x: only the second image's sprite moves right
    decoder.train()
    soft = decoder(code)
    assert soft.shape == (2, 3, 64, 64) and 0 <= soft.min() and soft.max() <= 1
    decoder.eval()
    with torch.no_grad():
        hard = decoder(code)
        mask, colour, box, background = decoder.render(code)
    assert box[1, 0] > box[0, 0] and torch.allclose(box[1, 1:], box[0, 1:])
    # Decoding draws each pixel as exactly the background or the sprite's one colour: no soft edge.
    is_fill = (hard - colour[:, :, None, None]).abs().amax(1) < 1e-6
    is_background = (hard - background[:, :, None, None]).abs().amax(1) < 1e-6
    assert bool((is_fill | is_background).all())
    codec = build_model(CodecConfig(model="fsq", answer_levels=(5, 5), geometry_levels=(5, 5), decoder="layered",
                                    channels=8, encoder_channels=8))
    assert isinstance(codec.decoder, LayeredDecoder)
    with pytest.raises(VQAGanError, match="at most 7 geometry digits"):
        build_model(CodecConfig(model="fsq", geometry_levels=(3,) * 8, decoder="layered"))

def test_a_many_digit_code_is_factorised_per_digit_and_coded_exactly():
    """A scene's code has many digits: one table per digit (a joint table over 5^12 codes could never be
    filled), each digit coded exactly under its own table through the .vqg container."""
    from vqagan_lib.coding.bitstream import pack, parse, unpack_symbols

    levels = (5, 5, 7, 3, 8, 5, 5, 6, 4, 5, 5, 3)
    rng = np.random.default_rng(1)
    skews = [rng.dirichlet(np.ones(k) * 0.5) for k in levels]  # each digit its own, uneven distribution
    train = np.stack([rng.choice(k, size=4000, p=p) for k, p in zip(levels, skews)], axis=1)  # (4000, 12)
    prior = CategoricalPrior(levels)
    prior.fit(torch.from_numpy(train))
    freqs = prior.check_tables()
    assert freqs.shape == (len(levels), max(levels)) and (freqs.sum(axis=1) == TOTAL).all()
    symbols = np.stack([rng.choice(k, size=300, p=p) for k, p in zip(levels, skews)], axis=1)  # (300, 12)
    blob = pack(symbols, freqs, key=b"k")
    assert np.array_equal(unpack_symbols(parse(blob), freqs), symbols)
    info = float(prior.table_bits(torch.from_numpy(symbols)).sum())  # the bits the tables charge
    payload_bits = 8 * len(parse(blob).payload)
    assert info <= payload_bits <= info + 8 * 8  # exact to within the coder's final bytes (one per chunk)
    assert payload_bits < 300 * sum(math.log2(k) for k in levels)  # the per-digit tables beat uniform digits


def test_a_codec_can_send_its_answer_code_digit_by_digit():
    """answer_coding "digits": one symbol per answer digit under its own table (a scene code's grid would not
    fit one table), decoded through the .vqg container to the very code the encoder made."""
    from vqagan_lib.coding.bitstream import pack, parse, unpack_symbols

    torch.manual_seed(0)
    levels = (3, 8, 8) * 4  # 12 digits: 192^4 joint codes, far beyond one table
    cfg = CodecConfig(model="fsq", answer_levels=levels, answer_coding="digits", geometry_levels=(5,), channels=8, encoder_channels=8)
    codec = build_model(cfg).eval()
    x = torch.rand(40, 3, 64, 64)
    code = codec.code(x)
    symbols = codec.symbols_of(code)
    assert symbols.shape == (40, len(levels) + 1) and torch.equal(codec.code_of(symbols), code)
    assert codec.group_sizes == levels + (5,) and not codec.decodes_by_table
    codec.entropy_model.fit(symbols)
    freqs = codec.entropy_model.check_tables()
    assert freqs.shape == (len(levels) + 1, 8)
    decoded = unpack_symbols(parse(pack(codec.compress(x).numpy(), freqs, key=b"k")), freqs)
    assert np.array_equal(decoded, symbols.numpy())
    assert torch.allclose(codec.decompress(torch.from_numpy(decoded)), codec.decoder(code), atol=1e-6)
    with pytest.raises(VQAGanError, match="answer_coding"):
        build_model(CodecConfig(model="fsq", answer_levels=levels, answer_coding="digits", answer_symbols=4))


@pytest.mark.parametrize("level", [2, 3, 8, 12, 64])
def test_a_digits_middle_is_the_mean_of_the_inputs_that_round_to_it(level):
    """An evenly spread u in (-1, 1), entering as atanh(u) less the shift, lands on each digit's bin evenly:
    the mean u of each digit is its middle."""
    from vqagan_lib.models.fsq import level_shift

    fsq = FSQ((level,))
    u = torch.linspace(-1, 1, 200_001, dtype=torch.float64)[1:-1, None]
    code = fsq((torch.atanh(u) - level_shift(level)).float())
    digits = fsq.to_digits(code).flatten()
    means = torch.stack([u.flatten()[digits == d].mean() for d in range(level)])
    assert torch.allclose(fsq.middles(fsq.from_digits(torch.arange(level)[:, None])).flatten().double(), means, atol=1e-3)
