"""The scene code: one slot per object, each slot a few FSQ digits (what it looks like, where it is).

A scene of several flat objects does not fit one categorical index: every object adds its own answers.
So the code is a row of slots, each sent digit by digit under its own table (CodecConfig.answer_coding
"digits"), and the decoder draws one sprite per slot:

    encoder  x -> per slot k: its colour's pixels (data/colour_objects.py) -> their centroid (x_k, y_k),
                and their silhouette around it -> a small MLP -> appearance a_k
    code     [a_k..., x_k, y_k] for k = 1..K, each number one FSQ digit
    decoder  a sprite from a_k (one network for every slot) in slot k's colour, placed at (x_k, y_k),
             over a flat background

Nothing here is told the dataset's palette, shapes or object count: the number of slots is a setting of
the dataset's recipe, and every slot's colour, on both sides, starts at a colour read off the training
images (data/pixels.py, palette_of: k-means of their pixels) and is trained from there. What the digits
mean is learnt, end to end: the pixel loss teaches the decoder to draw the slots, and the VQA term
(training/engine.py) scores the drawing by the frozen critic's answers.

Introduced in notebooks/08_sort_of_clevr.ipynb.
"""
import torch
from torch import nn

from vqagan_lib.coding.images import to_pixels
from vqagan_lib.data.pixels import palette_of
from vqagan_lib.data.colour_objects import GLIMPSE, find_by_colour
from vqagan_lib.models.fsq import FSQ, level_shift

try:  # draw()'s painting in C, built with the package where a C compiler is found (pyproject.toml)
    from vqagan_lib.models import _paint
except ImportError:
    _paint = None

SPRITE = 16  # a slot's sprite resolution: the scenes' objects are 9 pixels wide
OFF_CANVAS = 1 << 24  # a stamp's padding: an offset that moves any pixel off any canvas
EDGE = 1e-4  # how near the grid's ends a position may come: atanh is finite there, and no bin is lost


class SlotEncoder(nn.Module):
    """Image (B,3,S,S) -> pre-quantisation values (B, K * (A + 2)), slot-major: [a_1..a_A, x, y] per slot.

    Each slot finds its object by its colour (data/colour_objects.py): the centroid is where it is, and a
    small MLP reads what it looks like from its silhouette."""

    def __init__(self, image_size: int, slots: int, appearance: int, channels: int, position_levels: tuple[int, int]):
        super().__init__()
        self.slots, self.appearance = slots, appearance
        self.colours = nn.Parameter(torch.zeros(slots, 3))  # in [-1, 1]; seed_from_data sets them
        self.read = nn.Sequential(nn.Linear(GLIMPSE * GLIMPSE, channels), nn.GELU(), nn.Linear(channels, appearance))
        # A centroid p in [-1, 1] is placed on the position grid as u = gain * p + bias, both learnt. FSQ bounds
        # its input with a tanh, whose bins are narrow at the centre and wide at the edges; entering as atanh(u),
        # less FSQ's own shift, the bins are even in u, so every place in the picture is sent equally finely.
        # The shift makes the grid symmetric about the image's centre (a bin edge there when the levels are even,
        # a bin centre when odd), and bias 0 means the same at any number of levels, so a point re-binned from a
        # finer one keeps what it learnt.
        self.position_gain = nn.Parameter(torch.ones(slots, 2))  # u = p: the bins even over the whole picture
        self.position_bias = nn.Parameter(torch.zeros(slots, 2))
        self.register_buffer("centring", -torch.tensor([level_shift(level) for level in position_levels]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre, silhouette = find_by_colour(x, self.colours)  # (B,K,2), (B,K,G*G)
        u = (self.position_gain * centre + self.position_bias).clamp(-1 + EDGE, 1 - EDGE)
        where = torch.atanh(u) + self.centring
        return torch.cat([self.read(silhouette), where], dim=2).flatten(1)  # (B,K*(A+2))


class SlotDecoder(nn.Module):
    """Code (B, K * (A + 2)) -> image (B,3,S,S): each slot's sprite, in its colour, at its place, over a flat background."""

    def __init__(self, image_size: int, slots: int, appearance: int, channels: int, position_levels: tuple[int, int]):
        super().__init__()
        self.image_size, self.slots, self.appearance = image_size, slots, appearance
        self.position_fsq = FSQ(position_levels)  # reads each position digit as the middle of its bin
        self.colours = nn.Parameter(torch.zeros(slots, 3))  # logits of each slot's colour; seed_from_data sets them
        self.background = nn.Parameter(torch.full((3,), 3.0))  # logits: starts white
        # One sprite network for every slot: a shape looks the same whatever its colour, so each slot's
        # practice teaches all of them.
        self.sprite = nn.Sequential(nn.Linear(appearance, channels), nn.LeakyReLU(0.2),
                                    nn.Linear(channels, channels), nn.LeakyReLU(0.2), nn.Linear(channels, SPRITE * SPRITE))
        # Where a slot's digits put it, and how large it is: learnt per slot. A bin's middle is a centroid on the
        # encoder's grid (pixel i at -1 + 2i/(S-1)); the start turns it into the place grid_sample draws at
        # (pixel i's centre at -1 + (2i+1)/S), so a point re-binned from a finer one draws in place at once.
        self.position_gain = nn.Parameter(torch.full((slots, 2), (image_size - 1) / image_size))
        self.position_bias = nn.Parameter(torch.full((slots, 2), 1 / image_size))
        self.half_size = nn.Parameter(torch.full((slots, 2), 6.0 / image_size))  # a box 12 pixels wide
        ramp = torch.linspace(-1, 1, SPRITE)
        radius = torch.sqrt(ramp[:, None] ** 2 + ramp[None, :] ** 2)
        self.register_buffer("mask_start", (4.0 * (0.8 - radius)).flatten(), persistent=False)  # a soft disc
        self._stamps = {}  # decoding's cache: each look's lit pixels per slot (`stamps`)

    def sprites(self, looks: torch.Tensor) -> torch.Tensor:
        """Appearance digits (N, A) -> sprites (N,1,T,T) in [0,1], before they are placed."""
        logits = self.sprite(looks) + self.mask_start  # (N,T*T)
        if self.training:  # the binary-concrete noise of the layered decoder: masks learn to be 0 or 1
            u = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
            logits = logits + torch.log(u) - torch.log1p(-u)
        # the layered decoder's fixed 3x3 box filter: a lone speck costs the pixel loss little but reads as a corner
        return nn.functional.avg_pool2d(torch.sigmoid(logits).view(-1, 1, SPRITE, SPRITE), 3, stride=1, padding=1)

    def places(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slots (B,K,A+2) -> the pixel each slot's sprite is centred on (B,K,2) as (column, row), and the
        nudge (B,K,2) that carries the position's gradient: exactly 0 in value."""
        b, k = slots.shape[:2]
        middle = self.position_fsq.middles(slots[..., self.appearance:].reshape(b * k, 2)).view(b, k, 2)
        centre = self.position_gain * middle + self.position_bias  # (B,K,2) in [-1,1] image units
        # Every sprite sits on a pixel centre, as the scenes' objects do, in training too (the gradient passes
        # as if it did not): between two pixels a hard mask comes out a pixel wider on one side, which a
        # reader takes for another shape, so the sprite learns its edges at the one place it is drawn.
        pixel = torch.round((centre.detach() + 1) * self.image_size / 2 - 0.5).long()
        return pixel, centre - centre.detach()

    def halves(self) -> torch.Tensor:
        """Each slot's half width and half height (K,2) in [-1,1] image units."""
        return self.half_size.abs().clamp(min=1e-2)

    def masks(self, code: torch.Tensor) -> torch.Tensor:
        """Code (B, K*(A+2)) -> every slot's sprite placed on the canvas: (B,K,S,S) in [0,1]."""
        b, k, s = len(code), self.slots, self.image_size
        slots = code.view(b, k, self.appearance + 2)
        sprite = self.sprites(slots[..., :self.appearance].reshape(b * k, self.appearance))
        pixel, nudge = self.places(slots)
        offsets = torch.arange(s, device=code.device)[None, None, :, None] - pixel[:, :, None, :]  # (B,K,S,2)
        where = sprite_coordinates(offsets, nudge[:, :, None, :], self.halves()[None, :, None, :], s).view(b * k, s, 2)
        grid = torch.stack([where[:, None, :, 0].expand(-1, s, -1), where[:, :, None, 1].expand(-1, -1, s)], dim=3)
        placed = nn.functional.grid_sample(sprite, grid, padding_mode="zeros", align_corners=False)
        return placed.view(b, k, s, s)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        masks = self.masks(code)  # (B,K,S,S)
        if not self.training:
            masks = (masks > 0.5).to(masks.dtype)  # hard edges, as the scenes are drawn
        image = torch.sigmoid(self.background)[None, :, None, None].expand(len(code), -1, self.image_size, self.image_size)
        colours = torch.sigmoid(self.colours)
        for k in range(self.slots):  # painted in slot order: where two overlap, the later one shows
            m = masks[:, k:k + 1]
            image = image * (1 - m) + colours[k][None, :, None, None] * m
        return image

    @torch.no_grad()
    def stamps(self, looks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distinct appearance digits (U, A) -> every slot's lit pixels of each, as offsets from the sprite's
        centre pixel: rows and columns (K, U, M) int64, padded with an offset that lands off any canvas.

        A stamp is exact, not an approximation of `masks`: a sprite's sampling position depends only on
        a pixel's offset from the centre pixel and the slot's half size (`sprite_coordinates`), so moving a
        slot moves its lit pixels and changes none of them. Kept per distinct look until a weight changes.
        """
        versions = tuple((id(t), t._version) for t in self.parameters())
        if self._stamps.get("versions") != versions:
            self._stamps = {"versions": versions}
        s, halves = self.image_size, self.halves()
        # Beyond this many pixels from its centre a sprite's sampling position lies past 1 + 1/T, where the
        # bilinear weights fall on the zero padding alone (see layered_decoder.lit_pixels): nothing is lit there.
        reach = int(torch.ceil((1 + 1 / SPRITE) * halves.max() * s / 2).item()) + 2
        offsets = torch.arange(-reach, reach + 1, device=looks.device)  # (R,)
        lit = []
        for look in looks:
            key = tuple(look.tolist())
            if key not in self._stamps:
                sprite = self.sprites(look[None]).expand(self.slots, -1, -1, -1)  # (K,1,T,T)
                where = sprite_coordinates(offsets[None, :, None], torch.zeros(1, 1, 1, device=looks.device),
                                           halves[:, None, :], s)  # (K,R,2)
                grid = torch.stack([where[:, None, :, 0].expand(-1, len(offsets), -1),
                                    where[:, :, None, 1].expand(-1, -1, len(offsets))], dim=3)
                placed = nn.functional.grid_sample(sprite, grid, padding_mode="zeros", align_corners=False)[:, 0] > 0.5
                self._stamps[key] = [(offsets[r], offsets[c]) for r, c in (m.nonzero(as_tuple=True) for m in placed)]
            lit.append(self._stamps[key])
        width = max([len(r) for per_slot in lit for r, _ in per_slot] + [1])
        rows = torch.full((self.slots, len(looks), width), OFF_CANVAS, dtype=torch.long, device=looks.device)
        cols = rows.clone()
        for u, per_slot in enumerate(lit):
            for k, (r, c) in enumerate(per_slot):
                rows[k, u, :len(r)], cols[k, u, :len(c)] = r, c
        return rows, cols

    @torch.no_grad()
    def draw(self, code: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Decoding straight to 8-bit pixels: code (B, K*(A+2)) -> (B,S,S,3) uint8 (into `out` if given), eval mode only.

        The same picture as `forward` in eval mode, rounded to 8 bits (tested equal): with hard masks every
        pixel is exactly the background's colour or the last slot's that covers it. So each slot's lit pixels
        are its look's stamp (`stamps`) moved to its centre pixel, and the slots paint their 8-bit colours
        over the background in slot order, as `forward` blends them (in C where the install built `_paint.c`).
        """
        if self.training:
            raise RuntimeError("draw() decodes; call eval() first")
        b, k, s = len(code), self.slots, self.image_size
        slots = code.view(b, k, self.appearance + 2)
        looks = slots[..., :self.appearance].reshape(b * k, self.appearance)
        if self.appearance == 1:  # one digit: the plain unique, many times faster than unique over rows
            looks, which = torch.unique(looks[:, 0], return_inverse=True)
            looks = looks[:, None]
        else:
            looks, which = torch.unique(looks, dim=0, return_inverse=True)
        which = which.view(b, k)
        rows, cols = self.stamps(looks)  # (K,U,M) each
        palette = to_pixels(torch.cat([torch.sigmoid(self.background)[None], torch.sigmoid(self.colours)]))  # (K+1,3)
        canvas = torch.empty((b, s, s, 3), dtype=torch.uint8, device=code.device) if out is None else out
        # One row of background pixels, then that row down every image: broadcasting a 3-byte pixel straight
        # to the canvas copies 3 bytes at a time, a row copies whole rows.
        canvas.view(b * s, s * 3).copy_(palette[0].repeat(s)[None].expand(b * s, s * 3))
        if _paint is not None and canvas.device.type == "cpu" and canvas.is_contiguous():
            _paint.paint_stamps(canvas.numpy(), rows.contiguous().numpy(), cols.contiguous().numpy(),
                                which.contiguous().numpy(), self.places(slots)[0].contiguous().numpy(),
                                palette.contiguous().numpy(), k, len(looks), rows.shape[2], s)
            return canvas
        # int32 offsets and indices halve the bytes each pass over the (B, M) stamps reads and writes
        index_dtype = torch.int32 if b * s * s < 2**31 - 1 else torch.long
        rows, cols = rows.to(index_dtype), cols.to(index_dtype)
        pixel = self.places(slots)[0].to(index_dtype)  # (B,K,2)
        flat = canvas.view(b * s * s, 3)
        first = torch.arange(b, device=code.device, dtype=index_dtype)[:, None] * (s * s)  # (B,1): each image's first pixel
        for slot in range(k):  # painted in slot order: where two overlap, the later one shows
            y = pixel[:, slot, 1:2] + rows[slot].index_select(0, which[:, slot])  # (B,M)
            x = pixel[:, slot, 0:1] + cols[slot].index_select(0, which[:, slot])
            inside = (y >= 0) & (y < s) & (x >= 0) & (x < s)
            flat.index_put_(((first + y * s + x).masked_select(inside),), palette[slot + 1])
        return canvas


def sprite_coordinates(offset: torch.Tensor, nudge: torch.Tensor, half: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel offsets from a sprite's centre pixel (integers) -> where they read the sprite, in its [-1,1]
    coordinates: (offset * 2/size - nudge) / half, broadcast. The offset's float is exact and the nudge is 0
    in value, so the same offset gives the same bits wherever the sprite is: `masks` and `stamps` agree."""
    return (offset.to(half.dtype) * (2 / size) - nudge) / half


@torch.no_grad()
def seed_from_data(encoder: SlotEncoder, decoder: SlotDecoder, images: torch.Tensor) -> None:
    """Both sides' slot colours (and the background) start at the training images' own colours: the most
    common is the background, the next K are the slots'."""
    palette = palette_of(images, encoder.slots + 1)  # (K+1,3) in [0,1], most common first
    encoder.colours.copy_(palette[1:] * 2 - 1)
    logits = torch.logit(palette.clamp(0.02, 0.98))  # the decoder's colours are sigmoids: a finite start near 0 and 1
    decoder.colours.copy_(logits[1:])
    decoder.background.copy_(logits[0])
