import math

import numpy as np
import pytest
import torch
from codec_helpers import random_images, tiny_codec

from vqagan_lib.coding import bitstream
from vqagan_lib.models.entropy_model import TOTAL, FactorizedPrior, frequencies_from_pmf
from vqagan_lib.errors import VQAGanError


@pytest.fixture(scope="module")
def codec():
    return tiny_codec()


def test_frequencies_are_integers_summing_to_total_with_every_symbol_codable():
    pmf = np.array([0.5, 0.3, 0.2 - 1e-9, 1e-9])
    f = frequencies_from_pmf(pmf, deterministic_mass=2 ** -10)
    assert f.sum() == TOTAL and f.min() >= 1 and f.dtype == np.int64
    assert abs(f[0] / TOTAL - 0.5) < 1e-3
    pinned = frequencies_from_pmf(np.array([1e-5, 1 - 2e-5, 1e-5]), deterministic_mass=2 ** -10)
    assert list(pinned) == [0, TOTAL, 0]  # mass on one symbol: a 0-bit dimension


def test_likelihood_is_a_differentiable_probability_and_pmf_sums_to_one():
    prior = FactorizedPrior(dims=4)
    y = (torch.randn(8, 4) * 3).requires_grad_()
    p = prior.likelihood(y)
    assert p.shape == (8, 4) and bool(((p > 0) & (p <= 1)).all())
    p.log().sum().backward()
    assert y.grad is not None and bool(y.grad.abs().sum() > 0)
    torch.testing.assert_close(prior.pmf().sum(dim=1), torch.ones(4, dtype=torch.float64))
    grid = torch.linspace(-20, 20, 101).expand(4, -1)  # (D, N)
    assert bool((prior.logits_cdf(grid).diff(dim=1) > 0).all())  # monotone CDF


def test_coding_reads_only_the_integer_tables(codec):
    x = random_images(40, seed=3)
    data = bitstream.encode_images(codec, x)
    rate = codec(x).rate_bits.clone()
    pmf_before = codec.entropy_model.pmf()
    state = {k: v.clone() for k, v in codec.state_dict().items()}
    try:
        with torch.no_grad():  # move the float CDF networks a lot after freezing
            for p in codec.entropy_model.parameters():
                p.add_(torch.randn_like(p))
        assert (codec.entropy_model.pmf() - pmf_before).abs().max() > 0.01
        assert bitstream.encode_images(codec, x) == data
        images, _, _ = bitstream.decode_images(codec, data)
        torch.testing.assert_close(images, codec(x).x_hat, rtol=0, atol=0)
        torch.testing.assert_close(codec(x).rate_bits, rate, rtol=0, atol=0)
    finally:
        codec.load_state_dict(state)


def test_eval_rate_is_exact_table_bits(codec):
    x = random_images(16, seed=4)
    out = codec(x)
    symbols = codec.compress(x)
    freqs = codec.entropy_model.freqs.long()
    expected = sum(math.log2(TOTAL / freqs[d, s]) for row in symbols for d, s in enumerate(row.tolist()))
    assert out.rate_bits.sum().item() == pytest.approx(expected, rel=1e-5)


def test_out_of_support_latents_are_clamped_and_deterministic_dims_pinned():
    prior = FactorizedPrior(dims=3, support_radius=4)
    prior.freeze_tables()
    symbols = prior.quantize(torch.tensor([[-100.0, 0.4, 100.0]]))
    assert symbols.tolist() == [[0, 4, 8]]  # clamped to the end symbols
    with torch.no_grad():
        prior.freqs[1].zero_()
        prior.freqs[1, 6] = TOTAL  # dim 1 deterministic at symbol 6 (value +2)
    assert prior.quantize(torch.tensor([[0.0, -3.0, 0.0]]))[0, 1].item() == 6
    assert list(prior.coded_dims()) == [0, 2]


def test_training_step_makes_tables_stale_until_refrozen():
    codec = tiny_codec(fit_steps=1)
    codec.train()
    codec(random_images(2))
    with pytest.raises(VQAGanError, match="stale"):
        codec.compress(random_images(2))
    codec.freeze_tables()
    assert codec.compress(random_images(2)).shape == (2, codec.cfg.latent_dim)
