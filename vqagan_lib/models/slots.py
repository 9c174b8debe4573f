"""The scene code: one slot per object, each slot a few FSQ digits (what it looks like, where it is).

A scene of several flat objects does not fit one categorical index: every object adds its own answers.
So the code is a row of slots, each sent digit by digit under its own table (CodecConfig.answer_coding
"digits"), and the decoder draws one sprite per slot:

    encoder  x -> per slot k: a map of how close each pixel is to the slot's colour -> softmax over pixels
                -> its centroid (x_k, y_k) and, pooled by the same map, conv features -> appearance a_k
    code     [a_k..., x_k, y_k] for k = 1..K, each number one FSQ digit
    decoder  slot k's sprite (from k and a_k) in its colour, placed at (x_k, y_k), over a flat background

Nothing here is told the dataset's palette, shapes or object count: the number of slots is a setting of
the dataset's recipe, and every slot's colour, on both sides, starts at a colour read off the training
images (data/pixels.py, palette_of: k-means of their pixels) and is trained from there. What the digits
mean is learnt: the pixel loss teaches the decoder to draw the slots, the VQA term (training/engine.py)
decides which distinctions the few levels of each digit keep.

Introduced in notebooks/08_sort_of_clevr.ipynb.
"""
import torch
from torch import nn

from vqagan_lib.coding.images import to_pixels
from vqagan_lib.data.pixels import palette_of
from vqagan_lib.models.layered_decoder import box_grid

# Each slot finds its pixels by a softmax over their squared colour distance (pixels in [-1, 1]) to its colour:
# at this scale a colour 0.5 away weighs e^-10 as much as an exact match, so slots do not blur into each other.
SHARPNESS = 40.0
SPRITE = 16  # a slot's sprite resolution: the scenes' objects are 9 pixels wide
LAYOUT = ("x", "y")  # each slot's last two digits: where it is; the digits before them say what it looks like


class SlotEncoder(nn.Module):
    """Image (B,3,S,S) -> pre-quantisation values (B, K * (A + 2)), slot-major: [a_1..a_A, x, y] per slot."""

    def __init__(self, image_size: int, slots: int, appearance: int, channels: int):
        super().__init__()
        self.slots, self.appearance = slots, appearance
        self.colours = nn.Parameter(torch.zeros(slots, 3))  # in [-1, 1]; seed_from_data sets them
        self.features = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.GELU(),
                                      nn.Conv2d(channels, channels, 3, padding=1), nn.GELU())
        self.read = nn.Sequential(nn.Linear(channels, channels), nn.GELU(), nn.Linear(channels, appearance))
        # FSQ bounds its input with tanh: a centroid p in [-1, 1] enters as gain * p + bias, which training moves,
        # so that the digits' bin edges can settle where the questions need them (e.g. on the centre line).
        self.position_gain = nn.Parameter(torch.full((slots, 2), 1.5))
        self.position_bias = nn.Parameter(torch.zeros(slots, 2))
        ramp = torch.linspace(-1, 1, image_size)
        ys, xs = torch.meshgrid(ramp, ramp, indexing="ij")
        self.register_buffer("grid", torch.stack([xs.flatten(), ys.flatten()], dim=1), persistent=False)  # (S*S,2)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B,3,S,S) in [0,1] -> (B,K,S*S): where each slot's colour is, a softmax over the pixels."""
        pixels = (x * 2 - 1).flatten(2).transpose(1, 2)  # (B,S*S,3)
        distance = ((pixels[:, None] - self.colours[None, :, None]) ** 2).sum(dim=3)  # (B,K,S*S)
        return torch.softmax(-SHARPNESS * distance, dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attend = self.attention(x)  # (B,K,S*S)
        centre = attend @ self.grid  # (B,K,2)
        pooled = attend @ self.features(x * 2 - 1).flatten(2).transpose(1, 2)  # (B,K,C)
        where = self.position_gain * centre + self.position_bias
        return torch.cat([self.read(pooled), where], dim=2).flatten(1)  # (B,K*(A+2))


class SlotDecoder(nn.Module):
    """Code (B, K * (A + 2)) -> image (B,3,S,S): each slot's sprite, in its colour, at its place, over a flat background."""

    def __init__(self, image_size: int, slots: int, appearance: int, channels: int):
        super().__init__()
        self.image_size, self.slots, self.appearance = image_size, slots, appearance
        self.colours = nn.Parameter(torch.zeros(slots, 3))  # logits of each slot's colour; seed_from_data sets them
        self.background = nn.Parameter(torch.full((3,), 3.0))  # logits: starts white
        self.slot_embedding = nn.Parameter(torch.randn(slots, 16) * 0.5)
        self.sprite = nn.Sequential(nn.Linear(16 + appearance, channels), nn.LeakyReLU(0.2),
                                    nn.Linear(channels, channels), nn.LeakyReLU(0.2), nn.Linear(channels, SPRITE * SPRITE))
        # Where a slot's digits put it, and how large it is: learnt per slot, starting at the digits' own scale.
        self.position_gain = nn.Parameter(torch.ones(slots, 2))
        self.position_bias = nn.Parameter(torch.zeros(slots, 2))
        self.half_size = nn.Parameter(torch.full((slots, 2), 6.0 / image_size))  # a box 12 pixels wide
        ramp = torch.linspace(-1, 1, SPRITE)
        radius = torch.sqrt(ramp[:, None] ** 2 + ramp[None, :] ** 2)
        self.register_buffer("mask_start", (4.0 * (0.8 - radius)).flatten(), persistent=False)  # a soft disc

    def masks(self, code: torch.Tensor) -> torch.Tensor:
        """Code (B, K*(A+2)) -> every slot's sprite placed on the canvas: (B,K,S,S) in [0,1]."""
        b, k = len(code), self.slots
        slots = code.view(b, k, self.appearance + 2)
        identity = self.slot_embedding.expand(b, -1, -1)
        logits = self.sprite(torch.cat([identity, slots[..., :self.appearance]], dim=2)) + self.mask_start  # (B,K,T*T)
        if self.training:  # the binary-concrete noise of the layered decoder: masks learn to be 0 or 1
            u = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
            logits = logits + torch.log(u) - torch.log1p(-u)
        sprite = torch.sigmoid(logits).view(b * k, 1, SPRITE, SPRITE)
        centre = self.position_gain * slots[..., self.appearance:] + self.position_bias  # (B,K,2)
        box = torch.cat([centre, self.half_size.abs().clamp(min=1e-2).expand(b, -1, -1)], dim=2).view(b * k, 4)
        placed = nn.functional.grid_sample(sprite, box_grid(box, self.image_size), padding_mode="zeros", align_corners=False)
        return placed.view(b, k, self.image_size, self.image_size)

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
    def draw(self, code: torch.Tensor) -> torch.Tensor:
        """Decoding to 8-bit pixels (B,S,S,3), eval mode only: `forward` rounded."""
        if self.training:
            raise RuntimeError("draw() decodes; call eval() first")
        return to_pixels(self(code))


@torch.no_grad()
def seed_from_data(encoder: SlotEncoder, decoder: SlotDecoder, images: torch.Tensor) -> None:
    """Both sides' slot colours (and the background) start at the training images' own colours: the most
    common is the background, the next K are the slots'."""
    palette = palette_of(images, encoder.slots + 1)  # (K+1,3) in [0,1], most common first
    encoder.colours.copy_(palette[1:] * 2 - 1)
    logits = torch.logit(palette.clamp(0.02, 0.98))  # the decoder's colours are sigmoids: a finite start near 0 and 1
    decoder.colours.copy_(logits[1:])
    decoder.background.copy_(logits[0])
