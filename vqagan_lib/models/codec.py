"""The learned codec: encoder, quantiser, factorized prior and decoder (Balle et al. 2017, global latent).

    x -> encoder -> y (B,D) -> Q -> y_hat (integers) -> decoder -> x_hat
                                 \\-> factorized prior -> integer tables -> arithmetic coder -> bytes

Training (the engine in training/engine.py): rate = -log2 p(y + uniform noise) (differentiable), while the
decoder sees y rounded with a straight-through gradient. Eval / compress: y is rounded and
clamped, deterministic dims pinned, and the rate is read from the frozen integer tables.

Every model here returns the same `CodecOutput`, so losses, plots and tests consume one thing.

Introduced in notebooks/02_codec.ipynb.
"""

import torch
from torch import nn

from vqagan_lib.checkpoint import load_checkpoint, save_checkpoint
from vqagan_lib.coding.images import to_pixels
from vqagan_lib.config import from_dict, to_dict
from vqagan_lib.data.registry import DEFAULT
from vqagan_lib.errors import VQAGanError
from vqagan_lib.models.contract import CodecConfig, CodecOutput, decoding_fingerprint
from vqagan_lib.models.discrete_codec import DiscreteCodec, check_config
from vqagan_lib.models.entropy_model import FactorizedPrior
from vqagan_lib.models.networks import Decoder, Encoder
from vqagan_lib.models.vae import VAE

__all__ = ["Codec", "CodecConfig", "CodecOutput", "build_model", "load_codec", "save_codec"]


def decode_unique(decoder: nn.Module, latent: torch.Tensor) -> torch.Tensor:
    """Run the decoder once per distinct latent row (B, D) -> (B, 3, S, S).

    At ~8 bits per image a batch of 1000 holds at most a few hundred distinct codes, and
    identical latents must decode to identical images anyway, so decoding only the distinct
    rows is both correct and a large throughput win.
    """
    unique, inverse = torch.unique(latent, dim=0, return_inverse=True)  # (U, D), (B,)
    return decoder(unique)[inverse]  # (B, 3, S, S)


class Codec(nn.Module):
    """Global-latent learned codec with a factorized prior and an exact integer arithmetic coder."""

    def __init__(self, cfg: CodecConfig = None):
        super().__init__()
        self.cfg = cfg = cfg or CodecConfig()
        self.encoder = Encoder(cfg.image_size, cfg.channels, cfg.latent_dim)
        self.decoder = Decoder(cfg.image_size, cfg.channels, cfg.latent_dim)
        self.entropy_model = FactorizedPrior(cfg.latent_dim, cfg.support_radius, cfg.prior_filters,
                                             cfg.prior_init_scale, cfg.deterministic_mass)
        self.card: dict = {}  # filled by load_codec

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B,3,S,S) -> the continuous latent y (B, D), before quantisation."""
        return self.cfg.latent_gain * self.encoder(x)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """The generator G(z): latent (B, D) -> images (B, 3, S, S)."""
        return self.decoder(latent) if self.training else decode_unique(self.decoder, latent)

    def forward(self, x: torch.Tensor) -> CodecOutput:
        y = self.encode(x)  # (B, D)
        if self.training:
            rate = self.entropy_model.noisy_bits(y)  # (B,) differentiable estimate
            # Straight-through rounding: the decoder trains on the integers it will be sent,
            # while gradients flow to the encoder as if rounding were the identity. (Feeding it
            # y + noise instead would train it on latents it never sees at decode time.)
            # Beyond [-R, R] the clamp is real and passes no gradient: with a pass-through there,
            # latents pushed past R stop changing the image and Adam's momentum carries them off
            # to the hundreds (measured); the rate term pulls them back instead.
            latent = self.entropy_model.straight_through(y)  # (B, D) integers, gradient 1 inside [-R, R]
        else:
            symbols = self.entropy_model.quantize(y)  # (B, D)
            latent = self.entropy_model.dequantize(symbols)
            fresh = self.entropy_model.frozen and not self.entropy_model.stale
            rate = self.entropy_model.table_bits(symbols) if fresh else self.entropy_model.float_bits(symbols)
        return CodecOutput(self.decode(latent), rate, latent)

    def freeze_tables(self) -> None:
        self.entropy_model.freeze_tables()

    @torch.no_grad()
    def compress(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B,3,S,S) -> integer symbols (B, D) in [0, K); coding/bitstream.py turns them into bytes."""
        self.entropy_model.check_tables(self.card.get("name", "codec"))
        return self.entropy_model.quantize(self.encode(x))

    @torch.no_grad()
    def decompress(self, symbols: torch.Tensor) -> torch.Tensor:
        """Symbols (B, D) -> images (B, 3, S, S); depends only on the decoder weights and the symbols."""
        return decode_unique(self.decoder, self.entropy_model.dequantize(symbols))

    @torch.no_grad()
    def decompress_pixels(self, symbols: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Symbols (B, D) -> 8-bit images (B, S, S, 3): `decompress` rounded, as a PNG or a viewer holds them
        (written into `out` when given)."""
        pixels = to_pixels(self.decompress(symbols))
        return pixels if out is None else out.copy_(pixels)

    def fingerprint(self) -> int:
        """16-bit hash of what decoding depends on: decoder weights, integer tables, latent layout.

        A .vqg header carries it, so a file names the model that can decode it. The encoder and
        the float CDF networks are left out on purpose: changing them changes no decoded pixel.
        """
        layout = f"{self.cfg.image_size}/{self.cfg.latent_dim}/{self.cfg.support_radius}"
        return decoding_fingerprint(layout, self.decoder, self.entropy_model.freqs)


CODEC_KINDS = ("codec", "fsq")  # the models that write .vqg files


def build_model(cfg: CodecConfig) -> nn.Module:
    """A Codec, the DiscreteCodec of notebook 05 (cfg.model == 'fsq'), or the VAE of notebook 01."""
    if cfg.model == "codec":
        return Codec(cfg)
    if cfg.model == "fsq":
        check_config(cfg)
        return DiscreteCodec(cfg)
    if cfg.model == "vae":
        return VAE(cfg)
    raise VQAGanError(f"unknown model '{cfg.model}' (expected 'codec', 'fsq' or 'vae')")


def save_codec(model: nn.Module, path, card: dict):
    """Save a Codec (kind 'codec', tables frozen first if needed), a DiscreteCodec ('fsq') or a VAE ('vae')."""
    card = dict(card)
    card.setdefault("name", str(path).rsplit("/", 1)[-1].removesuffix(".safetensors"))
    card["kind"] = model.cfg.model
    card["config"] = to_dict(model.cfg)
    if isinstance(model, Codec):
        if not model.entropy_model.frozen or model.entropy_model.stale:
            model.freeze_tables()
        card["coded_dims"] = int(len(model.entropy_model.coded_dims()))
    if isinstance(model, (Codec, DiscreteCodec)):
        model.freeze_tables()  # a DiscreteCodec refuses to save without a fitted prior
        card["fingerprint"] = f"{model.fingerprint():04x}"
    return save_checkpoint(path, model.state_dict(), card)


def card_dataset(card: dict) -> str:
    """The dataset a codec was trained on, from its card (cards from before the second dataset: easy-VQA)."""
    return ((card.get("train_config") or {}).get("data") or {}).get("name", DEFAULT)


def training_stage(card: dict) -> str | None:
    """The stage a checkpoint stops at, when it is a step towards a codec rather than one: stage "answers"
    trains the code alone, so its decoder has never seen a pixel target and draws nothing meaningful."""
    stage = (card.get("train_config") or {}).get("stage")
    return stage if stage == "answers" else None


def load_codec(name_or_path, kinds=CODEC_KINDS) -> nn.Module:
    """Load a saved codec (or, if `kinds` allows, a VAE) in eval mode; anything else is a VQAGanError."""
    tensors, card = load_checkpoint(name_or_path)
    if card.get("kind") not in kinds:
        raise VQAGanError(f"{name_or_path}: checkpoint is a '{card.get('kind')}', expected {' or '.join(kinds)}")
    try:
        cfg = from_dict(CodecConfig, card.get("config") or {})
        model = build_model(cfg)
        model.load_state_dict(tensors, strict=True)
    except (RuntimeError, TypeError, ValueError) as e:
        raise VQAGanError(f"{name_or_path}: weights do not fit the config in its card ({str(e).splitlines()[0]})") from None
    model.card = card
    if isinstance(model, (Codec, DiscreteCodec)):
        model.entropy_model.stale = False
        model.entropy_model.check_tables(str(name_or_path))
    if isinstance(model, DiscreteCodec):
        model.check_merge_tables(str(name_or_path))
    return model.eval()
