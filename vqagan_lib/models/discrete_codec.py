"""The discrete codec: a global FSQ code that carries the answers, and optionally the geometry.

    x -> answer encoder   -> FSQ(answer_levels)   -> a (B, d_a) --\\
    x -> geometry encoder -> FSQ(geometry_levels) -> g (B, d_g) ---+-> decoder (the generator G) -> x_hat
                                                                   \\
    symbols: [a's index (or merged symbol), digit of each g_i] (B, 1 + d_g) -> categorical prior -> arithmetic coder -> bytes

Why not the continuous codec of notebook 02 at a handful of bits: its rounded global latent
with a factorized prior collapses to one or two symbols, and the pixel loss that trains it
spends what is left on pixels, not on answers. Here the code is a fixed grid that cannot
collapse (Mentzer et al. 2023), and training puts the answers in first (training/stages.py):

- stage "answers": the answer encoder learns, with no pixels at all, to let the frozen critic's
  answer head answer every question of the image from `a` alone (`answer_head` maps a into the
  critic's joint feature space);
- stage "generator": the decoder learns to draw what the code says; the geometry code (position,
  size, tint) is learnt here, from pixels, because only a viewer needs it;
- stage "joint" (optional, last): everything fine-tuned together by the pixel loss.

A code trained with room to spare spreads one answer over several cells. With `answer_symbols`
set, cells are sent as fewer symbols (a table from cell to symbol, filled from the critic's answers
on the training images by training/stages.py's merge_answer_cells), and each symbol is drawn as one
of its cells.

The geometry points use the layered decoder (models/layered_decoder.py): the answer code picks a
sprite and its colour, each geometry digit moves one number of the sprite's box or background.

At a few bits the decoder has few distinct outputs (prod of all levels): `decompress` renders each
code once and then decodes by table lookup. Every model returns one `CodecOutput`.

Introduced in notebooks/05_combined_training.ipynb.
"""
import math

import torch
from torch import nn

from vqagan_lib.coding.images import to_pixels
from vqagan_lib.errors import VQAGanError
from vqagan_lib.models.categorical_prior import CategoricalPrior
from vqagan_lib.models.contract import CodecConfig, CodecOutput, decoding_fingerprint
from vqagan_lib.models.fsq import FSQ
from vqagan_lib.models.layered_decoder import LayeredDecoder
from vqagan_lib.models.networks import Decoder, Encoder, centred
from vqagan_lib.models.slots import SlotDecoder, SlotEncoder, seed_from_data

TABLE_LIMIT = 4096  # at most this many codes: decode by table lookup (4096 images of 64x64 floats: 200 MB at most)


class DiscreteCodec(nn.Module):
    """Answer code (+ geometry code) -> decoder; symbols coded under a categorical prior."""

    def __init__(self, cfg: CodecConfig = None):
        super().__init__()
        self.cfg = cfg = cfg or CodecConfig(model="fsq")
        d_a, d_g = len(cfg.answer_levels), len(cfg.geometry_levels)
        self.answer_fsq = FSQ(cfg.answer_levels)
        self.answer_encoder, self.decoder = build_networks(cfg)
        # Maps the answer code into the critic's joint image feature space (stage "answers").
        self.answer_head = nn.Sequential(nn.Linear(d_a, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(),
                                         nn.Linear(256, cfg.answer_head_dim))
        self.geometry_fsq = FSQ(cfg.geometry_levels) if d_g else None
        self.geometry_encoder = Encoder(cfg.image_size, cfg.encoder_channels, d_g) if d_g else None
        # A merged answer code (cfg.answer_symbols): which symbol each cell is sent as, and which cell each
        # symbol is drawn as. Until merge_answer_cells fills them, symbol s stands for cell s alone.
        if cfg.answer_symbols:
            self.register_buffer("symbol_of_cell", torch.arange(self.answer_fsq.size) % cfg.answer_symbols)
            self.register_buffer("cell_of_symbol", torch.arange(cfg.answer_symbols) % self.answer_fsq.size)
        self.entropy_model = CategoricalPrior(self.group_sizes)
        self.card: dict = {}
        self._table = None  # (codes, 3, S, S): every code decoded once, built on first use in eval mode
        self._pixel_table = None  # the same in 8 bits, channels last: (codes, S, S, 3)

    @property
    def group_sizes(self) -> tuple[int, ...]:
        """How many values each symbol of an image can take: the answer symbol (or each answer digit), then each geometry digit."""
        answers = tuple(self.cfg.answer_levels) if self.cfg.answer_coding == "digits" else (self.answer_alphabet,)
        return answers + tuple(self.cfg.geometry_levels)

    @property
    def answer_alphabet(self) -> int:
        """How many answer symbols can be sent: the grid's cells, or fewer when cells are merged."""
        return self.cfg.answer_symbols or self.answer_fsq.size

    def check_merge_tables(self, what: str) -> None:
        """A merged answer code's tables must point inside the grid and the alphabet (a loaded file may not)."""
        if not self.cfg.answer_symbols:
            return
        for name, table, bound in (("symbol_of_cell", self.symbol_of_cell, self.cfg.answer_symbols),
                                   ("cell_of_symbol", self.cell_of_symbol, self.answer_fsq.size)):
            if not 0 <= int(table.min()) <= int(table.max()) < bound:
                raise VQAGanError(f"{what}: its {name} table must hold integers in 0 to {bound - 1}")

    @property
    def code_space(self) -> int:
        """How many distinct codes (so at most how many distinct images) the decoder can be sent."""
        return math.prod(self.group_sizes)

    @property
    def decodes_by_table(self) -> bool:
        """Whether decoding is a lookup in a table of every code's image, built once per model."""
        return self.code_space <= TABLE_LIMIT and not self.training

    def train(self, mode: bool = True):
        self._table = self._pixel_table = None  # weights may change: the cached renderings would go stale
        return super().train(mode)

    def answer_code(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B,3,S,S) -> answer code (B, d_a), straight-through quantised."""
        return self.answer_fsq(self.answer_encoder(x))

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B,3,S,S) -> the whole code (B, d_a + d_g) the decoder sees."""
        if self.geometry_fsq is None:
            return self.answer_code(x)
        c = centred(x)  # one pass over the pixels for both encoders
        return torch.cat([self.answer_fsq(self.answer_encoder.from_centred(c)),
                          self.geometry_fsq(self.geometry_encoder.from_centred(c))], dim=1)

    def symbols_of(self, code: torch.Tensor) -> torch.Tensor:
        """Code (B, d_a + d_g) -> symbols (B, G): the answer symbol (or each answer digit), then each geometry digit."""
        d_a = len(self.cfg.answer_levels)
        geometry = self.geometry_fsq.to_digits(code[:, d_a:]) if self.geometry_fsq is not None else code[:, d_a:].long()
        if self.cfg.answer_coding == "digits":
            return torch.cat([self.answer_fsq.to_digits(code[:, :d_a]), geometry], dim=1)
        cell = self.answer_fsq.to_index(code[:, :d_a])
        answer = self.symbol_of_cell[cell] if self.cfg.answer_symbols else cell
        return torch.cat([answer[:, None], geometry], dim=1)

    def code_of(self, symbols: torch.Tensor) -> torch.Tensor:
        """Symbols (B, G) -> code (B, d_a + d_g), the inverse of symbols_of."""
        d_a = len(self.cfg.answer_levels) if self.cfg.answer_coding == "digits" else 1
        rest = symbols[:, d_a:]
        geometry = self.geometry_fsq.from_digits(rest) if self.geometry_fsq is not None else rest.float()
        if self.cfg.answer_coding == "digits":
            return torch.cat([self.answer_fsq.from_digits(symbols[:, :d_a]), geometry], dim=1)
        cell = self.cell_of_symbol[symbols[:, 0]] if self.cfg.answer_symbols else symbols[:, 0]
        return torch.cat([self.answer_fsq.from_index(cell), geometry], dim=1)

    def joint_index(self, symbols: torch.Tensor) -> torch.Tensor:
        """Symbols (B, G) -> one number per code in [0, code_space): the decode table's row (mixed radix, first symbol fastest)."""
        index, scale = torch.zeros(len(symbols), dtype=torch.long, device=symbols.device), 1
        for g, size in enumerate(self.group_sizes):
            index += symbols[:, g] * scale
            scale *= size
        return index

    def all_symbols(self) -> torch.Tensor:
        """Every code's symbols (code_space, G), in joint-index order."""
        rest, parts = torch.arange(self.code_space), []
        for size in self.group_sizes:
            parts.append(rest % size)
            rest = rest // size
        return torch.stack(parts, dim=1)

    def forward(self, x: torch.Tensor) -> CodecOutput:
        code = self.code(x)  # (B, d)
        x_hat = self.decoder(code)  # (B, 3, S, S)
        if self.entropy_model.frozen:
            rate = self.entropy_model.table_bits(self.symbols_of(code.detach()))
        else:
            rate = torch.zeros(len(x), device=x.device)  # no prior yet: stage "answers" fits it
        return CodecOutput(x_hat, rate, code)

    def freeze_tables(self) -> None:
        """The prior is fitted on training codes (training/stages.py), never guessed here."""
        self.entropy_model.check_tables(self.card.get("name", "codec"))

    @torch.no_grad()
    def compress(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B,3,S,S) -> symbols (B, G); coding/bitstream.py turns them into bytes."""
        self.entropy_model.check_tables(self.card.get("name", "codec"))
        return self.symbols_of(self.code(x))

    @torch.no_grad()
    def render_table(self) -> torch.Tensor:
        """Every code decoded once: (code_space, 3, S, S). Built on first use, cached until train()."""
        if self._table is None:
            codes = self.code_of(self.all_symbols().to(next(self.decoder.parameters()).device))
            self._table = torch.cat([self.decoder(chunk) for chunk in codes.split(512)])
        return self._table

    @torch.no_grad()
    def decompress(self, symbols: torch.Tensor) -> torch.Tensor:
        """Symbols (B, G) -> images (B, 3, S, S); a table lookup when the code space is small."""
        if self.decodes_by_table:
            return torch.index_select(self.render_table(), 0, self.joint_index(symbols))
        unique, inverse = torch.unique(symbols, dim=0, return_inverse=True)
        return self.decoder(self.code_of(unique))[inverse]

    @torch.no_grad()
    def decompress_pixels(self, symbols: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Symbols (B, G) -> 8-bit images (B, S, S, 3): `decompress` rounded, as a PNG or a viewer holds them
        (written into `out` when given: a whole file's images then cost one buffer, not one per batch and a copy).

        A small code space is one 8-bit table built once per model, so decoding is the lookup alone;
        otherwise the decoder draws the codes (one with a draw() straight to 8 bits).
        """
        if self.decodes_by_table:
            if self._pixel_table is None:
                self._pixel_table = to_pixels(self.render_table())
            # index_select copies one row an image, where [] gathers element by element
            return torch.index_select(self._pixel_table, 0, self.joint_index(symbols), out=out)
        # A decoder with a draw() goes straight to 8 bits (the layered and slot ones) and shares the work of
        # repeated codes itself; a conv decoder runs once per distinct code and its floats are rounded.
        draw = getattr(self.decoder, "draw", None)
        if draw is not None:
            return draw(self.code_of(symbols), out=out)
        unique, inverse = torch.unique(symbols, dim=0, return_inverse=True)
        return torch.index_select(to_pixels(self.decoder(self.code_of(unique))), 0, inverse, out=out)

    def seed_from_data(self, images: torch.Tensor) -> None:
        """Before training from scratch: parts that start from the training images' statistics (the slots' colours)."""
        if self.cfg.decoder == "slots":
            seed_from_data(self.answer_encoder, self.decoder, images)

    def fingerprint(self) -> int:
        """16-bit hash of what decoding depends on: decoder weights, integer tables, code layout."""
        layout = f"fsq/{self.cfg.image_size}/{self.cfg.answer_levels}/{self.cfg.geometry_levels}"
        if self.cfg.answer_coding == "digits":
            layout += "/digits"
        if self.cfg.answer_symbols:
            layout += f"/{self.cell_of_symbol.tolist()}"
        return decoding_fingerprint(layout, self.decoder, self.entropy_model.freqs)


def build_networks(cfg: CodecConfig) -> tuple[nn.Module, nn.Module]:
    """The answer encoder and the decoder that cfg.decoder names: a new decoder is one new file and one line here."""
    d_a, d_g = len(cfg.answer_levels), len(cfg.geometry_levels)
    if cfg.decoder == "slots":
        per_slot = d_a // cfg.slots
        positions = cfg.answer_levels[per_slot - 2:per_slot]  # every slot's x and y digits alike (check_config)
        return (SlotEncoder(cfg.image_size, cfg.slots, per_slot - 2, cfg.encoder_channels, positions),
                SlotDecoder(cfg.image_size, cfg.slots, per_slot - 2, cfg.channels, positions))
    encoder = Encoder(cfg.image_size, cfg.encoder_channels, d_a)
    if cfg.decoder == "layered":
        return encoder, LayeredDecoder(cfg.image_size, cfg.channels, d_a, d_g)
    return encoder, Decoder(cfg.image_size, cfg.channels, d_a + d_g)


def check_config(cfg: CodecConfig) -> None:
    """One clear error for a code layout the prior or the coder cannot hold."""
    if len(cfg.answer_levels) < 1 or any(level < 2 for level in cfg.answer_levels + cfg.geometry_levels):
        raise VQAGanError(f"model.answer_levels / geometry_levels: levels must be >= 2, got "
                          f"{cfg.answer_levels} / {cfg.geometry_levels}")
    if cfg.decoder not in ("conv", "layered", "slots"):
        raise VQAGanError(f"model.decoder: unknown {cfg.decoder!r} (expected 'conv', 'layered' or 'slots')")
    if cfg.decoder == "slots":
        if cfg.slots < 1 or len(cfg.answer_levels) % cfg.slots or len(cfg.answer_levels) // cfg.slots < 3:
            raise VQAGanError(f"model.answer_levels: the slots decoder needs model.slots ({cfg.slots}) equal groups of at "
                              f"least 3 digits (appearance..., x, y), got {len(cfg.answer_levels)} digits")
        per_slot = len(cfg.answer_levels) // cfg.slots
        if len(set(cfg.answer_levels[i:i + per_slot] for i in range(0, len(cfg.answer_levels), per_slot))) > 1:
            raise VQAGanError(f"model.answer_levels: the slots decoder needs every slot's digits alike, got {cfg.answer_levels}")
        if cfg.geometry_levels or cfg.answer_coding != "digits":
            raise VQAGanError("model.decoder 'slots': every digit is a slot's (no geometry_levels), sent digit by digit "
                              "(model.answer_coding 'digits')")
    if cfg.decoder == "layered" and len(cfg.geometry_levels) > len(LayeredDecoder.LAYOUT):
        raise VQAGanError(f"model.geometry_levels: the layered decoder reads at most {len(LayeredDecoder.LAYOUT)} "
                          f"geometry digits ({', '.join(LayeredDecoder.LAYOUT)}), got {len(cfg.geometry_levels)}")
    if cfg.answer_coding not in ("joint", "digits"):
        raise VQAGanError(f"model.answer_coding: unknown {cfg.answer_coding!r} (expected 'joint' or 'digits')")
    if cfg.answer_coding == "digits":
        if cfg.answer_symbols:
            raise VQAGanError("model.answer_symbols merges cells of one joint answer symbol: it needs model.answer_coding 'joint'")
        return
    if not 0 <= cfg.answer_symbols <= math.prod(cfg.answer_levels):
        raise VQAGanError(f"model.answer_symbols: {cfg.answer_symbols} is outside 0 to {math.prod(cfg.answer_levels)} "
                          f"(the cells of answer_levels {cfg.answer_levels})")
    if math.prod(cfg.answer_levels) > 1 << 15:
        raise VQAGanError(f"model.answer_levels: {math.prod(cfg.answer_levels)} codes is more than one "
                          "16-bit-precision table can hold (at most 32768)")
