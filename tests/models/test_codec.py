import pytest
import torch
from codec_helpers import random_images, tiny_codec

from vqagan_lib.coding import bitstream
from vqagan_lib.checkpoint import save_checkpoint
from vqagan_lib.models.codec import Codec, CodecConfig, CodecOutput, decode_unique, load_codec, save_codec
from vqagan_lib.errors import VQAGanError
from vqagan_lib.models.vae import VAE


@pytest.fixture(scope="module")
def codec():
    return tiny_codec()


def test_forward_shapes_and_eval_latents_are_integers(codec):
    x = random_images(4)
    out = codec(x)
    assert isinstance(out, CodecOutput)
    assert out.x_hat.shape == (4, 3, 64, 64) and out.rate_bits.shape == (4,) and out.latent.shape == (4, 6)
    assert torch.equal(out.latent, out.latent.round()) and bool((out.x_hat >= 0).all() and (out.x_hat <= 1).all())


def test_training_forward_is_straight_through_and_rate_is_differentiable():
    codec = tiny_codec(fit_steps=0).train()
    x = random_images(4)
    out = codec(x)
    y = codec.encode(x)
    torch.testing.assert_close(out.latent, torch.round(y).clamp(-15, 15))  # the decoder sees integers
    (out.x_hat.mean() + out.rate_bits.mean()).backward()
    assert codec.encoder.head.weight.grad.abs().sum() > 0  # gradient reached the encoder through rounding
    assert all(p.grad is not None for p in codec.entropy_model.parameters())


def test_round_trip_is_bit_exact_with_the_models_own_decode(codec):
    x = random_images(32, seed=7)
    data = bitstream.encode_images(codec, x)
    images, sizes, names = bitstream.decode_images(codec, data)
    latent = codec.entropy_model.dequantize(codec.compress(x))  # (32, D)
    assert torch.equal(images, codec.decode(latent)) and torch.equal(images, codec(x).x_hat)
    assert sizes is None and names is None


def test_estimated_rate_matches_actual_bytes_on_a_batch(codec):
    x = random_images(300, seed=8)
    estimate = codec(x).rate_bits.sum().item()
    assert estimate > 300 * 8  # the tables have real entropy (> 8 bits/image)
    vqg = bitstream.parse(bitstream.encode_images(codec, x))
    assert 8 * len(vqg.payload) == pytest.approx(estimate, rel=0.03)


def test_duplicate_latents_decode_once_to_identical_images(codec):
    latent = torch.tensor([[1.0, 0, 0, 2, 0, 0], [0, 0, 0, 0, 0, 0]] * 5)  # (10, 6), 2 distinct rows
    calls = []
    handle = codec.decoder.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    try:
        images = decode_unique(codec.decoder, latent)
    finally:
        handle.remove()
    assert calls == [2] and torch.equal(images[0], images[2]) and torch.equal(images[1], images[9])
    torch.testing.assert_close(images[:2], codec.decoder(latent[:2]))


def test_save_load_keeps_tables_and_fingerprint_and_refuses_other_kinds(codec, tmp_path):
    path = save_codec(codec, tmp_path / "tiny", {"name": "tiny", "seed": 0})
    loaded = load_codec(path)
    assert torch.equal(loaded.entropy_model.freqs, codec.entropy_model.freqs)
    assert loaded.fingerprint() == codec.fingerprint() and loaded.card["fingerprint"] == f"{codec.fingerprint():04x}"
    assert loaded.cfg == codec.cfg and not loaded.training
    save_checkpoint(tmp_path / "critic", {"w": torch.zeros(1)}, {"name": "critic", "kind": "critic"})
    with pytest.raises(VQAGanError, match="expected codec"):
        load_codec(tmp_path / "critic")
    save_codec(VAE(CodecConfig(model="vae", channels=16, latent_dim=4)), tmp_path / "vae", {"name": "vae"})
    with pytest.raises(VQAGanError, match="'vae'"):
        load_codec(tmp_path / "vae")
    assert isinstance(load_codec(tmp_path / "vae", kinds=("vae",)), VAE)


def test_fingerprint_follows_decoder_weights_and_tables(codec):
    other = tiny_codec(seed=1)
    assert other.fingerprint() != codec.fingerprint()
    before = codec.fingerprint()
    with torch.no_grad():
        codec.decoder.head[0].bias[0] += 1e-3
    assert codec.fingerprint() != before
    with torch.no_grad():
        codec.decoder.head[0].bias[0] -= 1e-3


def test_default_codec_is_small(tmp_path):
    codec = Codec(CodecConfig())
    n_params = sum(p.numel() for p in codec.parameters())
    assert n_params < 400_000
    path = save_codec(codec, tmp_path / "default", {"name": "default"})
    assert path.stat().st_size < 2 * 1024 * 1024


def test_vae_rate_is_kl_in_bits_and_eval_decodes_the_mean():
    vae = VAE(CodecConfig(model="vae", channels=16, latent_dim=4))
    x = random_images(3)
    train_out = vae.train()(x)
    assert bool((train_out.rate_bits >= 0).all())
    vae.eval()
    a, b = vae(x), vae(x)
    assert torch.equal(a.x_hat, b.x_hat)
    mu, _ = vae.posterior(x)
    torch.testing.assert_close(a.latent, mu)
    with torch.no_grad():  # posterior == prior (mu = 0, sigma = 1) costs 0 bits
        vae.encoder.head.weight.zero_()
        vae.encoder.head.bias.zero_()
    assert vae(x).rate_bits.abs().max() < 1e-6
