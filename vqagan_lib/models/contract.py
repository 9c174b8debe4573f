"""What every model of the course shares: its config and its output contract.

`CodecConfig` sizes a model (the VAE of notebook 01 or the codec of notebook 02), and every
model's `forward` returns one `CodecOutput`, so losses, plots and tests consume one structure.
Both live here, below the models, so that the VAE and the codec can import them without importing
each other.

Introduced in notebooks/01_vae.ipynb.
"""
import dataclasses
import hashlib
from typing import NamedTuple

import torch


class CodecOutput(NamedTuple):
    x_hat: torch.Tensor  # (B,3,H,W) in [0,1]
    rate_bits: torch.Tensor  # (B,) training: noisy-relaxation estimate; eval: exact bits from the integer tables
    latent: torch.Tensor  # (B,D) the (noisy or quantised) latent the decoder saw


@dataclasses.dataclass
class CodecConfig:
    model: str = "codec"  # "codec" (notebook 02's continuous latent), "fsq" (the discrete code of notebook 05) or "vae"
    image_size: int = 64  # the model's side; the data and the discriminator follow it; other sizes are resized on the way in and restored on the way out
    latent_dim: int = 16  # a ceiling, not the rate: dims the prior makes deterministic cost 0 bits
    # A freshly initialised encoder outputs values near 0.003: rounding sends every image to one code,
    # and the decoder learns nothing until the encoder drifts past +-0.5 (hundreds of steps). A fixed
    # gain starts the latent a few quantisation bins wide, so the decoder sees information at step 1.
    latent_gain: float = 4.0  # not much larger: Adam's steps on the encoder are multiplied too, and latents run into the clamp
    channels: int = 64  # widest conv layer; thinner layers at high resolution keep decoding fast
    support_radius: int = 15  # symbols are integers in [-R, R]; latents beyond are clamped to the ends
    prior_filters: tuple[int, ...] = (3, 3, 3)  # hidden widths of each dim's CDF network (Balle 2017's choice)
    prior_init_scale: float = 2.0  # untrained prior spans ~[-2, 2], where global latents start; Balle's 10 starts too wide and learns slower
    deterministic_mass: float = 2 ** -10  # a dim with less mass than this off its mode is sent in 0 bits
    # The discrete codec (model "fsq"): FSQ levels per code dimension. The answer code's product of
    # levels bounds how many images the decoder can be told apart (8*6*5 = 240 codes, at most 7.9 bits;
    # its prior's entropy is the real rate); the geometry code adds position, size and tint.
    answer_levels: tuple[int, ...] = (8, 6, 5)
    # > 0: the answer code is sent as one of this many symbols, each standing for the grid cells whose
    # training images the critic answers alike (training/stages.py, merge_answer_cells); 0: one symbol a cell.
    answer_symbols: int = 0
    # How the answer code is sent: "joint", one symbol for its whole grid (a few answers, each combination
    # its own probability); "digits", one symbol per digit under its own table, for a code that carries
    # many answers (a scene's objects) and whose grid no single table could hold.
    answer_coding: str = "joint"
    geometry_levels: tuple[int, ...] = ()  # empty: no geometry, one image per answer code, wherever the shape was
    # "conv": the decoder of notebooks 01-03. "layered": a learnt sprite placed by a box over a flat
    # background (models/layered_decoder.py), which keeps position (the geometry code) apart from appearance.
    # "slots": one sprite per object slot (models/slots.py), for scenes of several objects; the answer code
    # is then `slots` equal groups of digits, [appearance..., x, y] each, sent digit by digit.
    decoder: str = "conv"
    slots: int = 0
    encoder_channels: int = 32  # the answer and geometry encoders: a code of a few numbers needs little width
    answer_head_dim: int = 128  # the critic's joint feature size: stage "answers" feeds its answer head


def decoding_fingerprint(layout: str, decoder: torch.nn.Module, freqs: torch.Tensor) -> int:
    """16-bit hash of what decoding depends on: the code layout, the decoder weights, the integer tables.

    The encoder (and any float probability model) is left out on purpose: changing it changes no
    decoded pixel. The .vqg check is keyed with it, so a file only decodes with the model that made it.
    """
    digest = hashlib.sha256(layout.encode())
    state = {f"decoder.{k}": v for k, v in decoder.state_dict().items()}
    state["freqs"] = freqs
    for key, tensor in sorted(state.items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return int.from_bytes(digest.digest()[:2], "big")
