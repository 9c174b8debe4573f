"""The discrete codec's layered decoder: a learnt sprite, placed by a box, over a flat background.

Introduced in notebooks/05_combined_training.ipynb.
"""
import numpy as np
import torch
from torch import nn

from vqagan_lib.coding.images import to_pixels
from vqagan_lib.models.networks import group_norm

try:  # draw()'s sampling and painting in C, built with the package where a C compiler is found (pyproject.toml)
    from vqagan_lib.models import _paint
except ImportError:
    _paint = None


class LayeredDecoder(nn.Module):
    """Code (B, D_a + D_g) -> image (B,3,S,S): one learnt sprite, placed by a box, over a flat background.

        answer code a -> transposed convs -> sprite mask (32x32)      } appearance: what is drawn
                      -> MLP              -> flat colour             }
                      -> MLP              -> default layout p(a)      the box and tint when nothing else says
        geometry code g: each digit has one job, in this order (a shorter code keeps the defaults):
            x, y, size, aspect, background red, green, blue      layout = p(a) + scale * g
        image = background * (1 - mask') + colour * mask',   mask' = the sprite warped into the box

    A spatial transformer (Jaderberg et al. 2015, arXiv 1506.02025) as the last layer: the sprite is
    drawn once, in its own frame, and the box only moves and stretches it, so a pixel loss toward
    the original cannot blur the shape to hedge over where it is. Giving each geometry digit one
    job keeps the quantiser's bins on the image's axes: x and y each get all their levels, instead
    of a rotated grid of positions.
    """

    SPRITE = 32  # the sprite's own resolution: about as wide as the largest easy-VQA shapes, so none is upsampled much
    LAYOUT = ("x", "y", "size", "aspect", "red", "green", "blue")  # the geometry digits' jobs, in order

    def __init__(self, image_size: int, channels: int, answer_dim: int, geometry_dim: int):
        super().__init__()
        if geometry_dim > len(self.LAYOUT):
            raise ValueError(f"a layered decoder reads at most {len(self.LAYOUT)} geometry digits, got {geometry_dim}")
        self.image_size, self.answer_dim, self.geometry_dim, c = image_size, answer_dim, geometry_dim, channels
        quarter = self.SPRITE // 4
        # A hidden layer before the spatial one: a few code numbers must select one of dozens of distinct
        # masks, which a single linear map of the code cannot do.
        self.sprite = nn.Sequential(
            nn.Linear(answer_dim, 128), nn.LeakyReLU(0.2),
            nn.Linear(128, c * quarter * quarter), nn.LeakyReLU(0.2), nn.Unflatten(1, (c, quarter, quarter)),
            nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1), group_norm(c // 2), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(c // 2, 1, 4, stride=2, padding=1))

        def mlp(out: int) -> nn.Module:
            return nn.Sequential(nn.Linear(answer_dim, 128), nn.LeakyReLU(0.2), nn.Linear(128, 128),
                                 nn.LeakyReLU(0.2), nn.Linear(128, out))

        # One flat colour per sprite: a per-pixel colour learns a halo where members' edges disagree.
        self.colour = mlp(3)
        self.layout = mlp(len(self.LAYOUT))
        # How far one unit of each geometry digit moves its layout number. It starts small: every image's
        # sprite starts in one place, where the pixel loss grows it rather than erasing it, and the
        # digits earn their reach as the geometry encoder learns what they mean.
        self.digit_scale = nn.Parameter(torch.full((geometry_dim,), 0.1))
        # A soft disc as the sprite's starting mask: from step one the drawing overlaps where shapes are,
        # so the box gets a gradient before the sprite has learnt any shape.
        ramp = torch.linspace(-1, 1, self.SPRITE)
        radius = torch.sqrt(ramp[:, None] ** 2 + ramp[None, :] ** 2)
        self.register_buffer("mask_start", 4.0 * (0.8 - radius), persistent=False)  # (T, T) logits
        self._known = None  # decoding's cache: (answer codes, mask, colour, layout) of each code drawn so far

    def train(self, mode: bool = True):
        self._known = None  # the weights may change: the cached appearances would go stale
        return super().train(mode)

    def appearance(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Answer code (B, D_a) -> what it alone decides: mask (B,1,T,T) in [0,1], colour (B,3), and the
        default layout p(a) (B,7) that the geometry digits move."""
        logits = self.sprite(a) + self.mask_start  # (B, 1, T, T)
        if self.training:
            # Logistic noise on the mask's logits (a binary-concrete relaxation): a half-transparent pixel
            # now flickers, so the pixel loss pushes every logit far from 0 and the mask becomes the 0/1
            # that decoding draws. Without it, a gray shape can be learnt as half-transparent black.
            u = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
            logits = logits + torch.log(u) - torch.log1p(-u)
        # A fixed 3x3 box filter: a speck of one sprite pixel costs the pixel loss almost nothing, but drawn
        # hard it juts out of a rectangle's side and a reader takes the shape for a circle.
        mask = nn.functional.avg_pool2d(torch.sigmoid(logits), 3, stride=1, padding=1, count_include_pad=True)
        return mask, torch.sigmoid(self.colour(a)), self.layout(a)

    @torch.no_grad()
    def appearances(self, answers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`appearance` of distinct answer codes (U, D_a), for decoding: an answer code has one sprite in every
        image, so each is made once per decoder, on its own, and kept (at most one per code of the answer alphabet)."""
        known, match = self._known, None
        if len(answers) == 0:
            return self.appearance(answers)
        if known is not None:
            match = (answers[:, None, :] == known[0][None]).all(dim=2)  # (U, C)
        missing = answers if match is None else answers[~match.any(dim=1)]
        if len(missing):
            # One code at a time: a batched matrix product may round differently with the batch's size, and
            # a code's sprite must not depend on which other codes its batch happened to hold.
            made = [self.appearance(m[None]) for m in missing]
            fresh = (missing,) + tuple(torch.cat(parts) for parts in zip(*made))
            known = fresh if known is None else tuple(torch.cat([k, f]) for k, f in zip(known, fresh))
            self._known = known
            match = (answers[:, None, :] == known[0][None]).all(dim=2)
        row = match.to(torch.uint8).argmax(dim=1)  # each answer's one matching cached row
        return tuple(t.index_select(0, row) for t in known[1:])

    def box_of(self, layout: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Default layout (B,7) moved by the geometry code g (B, D_g) -> box (B,4) as (cx, cy, half width,
        half height) in [-1,1] image units, and background (B,3)."""
        layout = torch.cat([layout[:, :self.geometry_dim] + self.digit_scale * g, layout[:, self.geometry_dim:]], 1)
        x, y, size, aspect = layout[:, 0], layout[:, 1], layout[:, 2], layout[:, 3]
        half = 0.3 * torch.exp(torch.stack([size + aspect, size - aspect], 1)).clamp(max=4.0)
        box = torch.cat([torch.stack([x, y], 1), half.clamp(min=1e-2)], 1)
        background = torch.sigmoid(layout[:, 4:] + 3.0)  # starts light, as most backgrounds are
        return box, background

    def render(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> mask (B,1,T,T) in [0,1], colour (B,3), box (B,4) as (cx, cy, half width, half height) in
        [-1,1] image units, background (B,3)."""
        mask, colour, layout = self.appearance(code[:, :self.answer_dim])
        return (mask, colour) + self.box_of(layout, code[:, self.answer_dim:])

    def sprite_coordinates(self, box: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Box (B,4) -> the sprite x of each output column and the sprite y of each output row, (B,S) each."""
        return sprite_coordinates(box, self.image_size)

    def placement(self, box: torch.Tensor) -> torch.Tensor:
        """Box (B,4) -> where each output pixel reads the sprite, (B,S,S,2) in sprite coordinates [-1,1]."""
        return box_grid(box, self.image_size)

    def placed_mask(self, mask: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        """The sprite warped into its box: (B,1,S,S) in [0,1]."""
        return nn.functional.grid_sample(mask, self.placement(box), padding_mode="zeros", align_corners=False)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        mask, colour, box, background = self.render(code)
        placed = self.placed_mask(mask, box)  # (B,1,S,S)
        if not self.training:
            # Decoding draws hard edges, as easy-VQA does (no anti-aliasing): a soft edge is a hedge that a
            # reader takes for a rounded corner. Training keeps the mask soft, so that every pixel of the
            # sprite feels the pixel loss (a hard mask would leave its margins untaught at 0.5).
            placed = (placed > 0.5).to(placed.dtype)
        fill = colour[:, :, None, None]
        return background[:, :, None, None] * (1 - placed) + fill * placed  # (B, 3, S, S) in [0, 1]

    @torch.no_grad()
    def draw(self, code: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Decoding straight to 8-bit pixels: code (B, D_a + D_g) -> (B,S,S,3) uint8 (into `out` if given), eval mode only.

        The same picture as `forward` in eval mode, rounded to 8 bits (tested equal), made cheaper: the
        sprite and its colour depend on the answer code alone, so they are made once per answer code and
        kept (`appearances`); the sprite is sampled only where it can reach (`lit_pixels`); every pixel is
        then either the background's colour or the sprite's, written in 8 bits instead of blended in floats (in C
        where the install built `_paint.c`).
        """
        if self.training:
            raise RuntimeError("draw() decodes; call eval() first")
        answers, which = torch.unique(code[:, :self.answer_dim], dim=0, return_inverse=True)  # (U, D_a), (B,)
        mask, colour, layout = self.appearances(answers)
        box, background = self.box_of(layout[which], code[:, self.answer_dim:])
        n, s = len(code), self.image_size
        # One row of background pixels, then that row down the image: broadcasting a 3-byte pixel straight
        # to the canvas copies 3 bytes at a time, a row copies whole rows.
        row = to_pixels(background)[:, None, :].expand(n, s, 3).reshape(n, 1, s * 3)
        canvas = torch.empty((n, s, s, 3), dtype=torch.uint8, device=code.device) if out is None else out
        canvas.view(n, s, s * 3).copy_(row.expand(n, s, s * 3))
        lit = self.lit_pixels(mask, which, box)
        if _paint is not None and canvas.device.type == "cpu" and canvas.is_contiguous() and lit.dtype == torch.int32:
            _paint.paint_pixels(canvas.numpy(), lit.numpy(), to_pixels(colour)[which].contiguous().numpy(), s)
            return canvas
        fill = to_pixels(colour)[which].index_select(0, lit // (s * s))  # each lit pixel's image's colour
        canvas.view(n * s * s, 3).index_put_((lit,), fill)
        return canvas

    # Images per window in `lit_pixels`: a window per image costs a call per image, one for the whole batch
    # samples every image over the largest image's window.
    WINDOW_GROUP = 64

    def lit_pixels(self, mask: torch.Tensor, which: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        """Where `placed_mask(mask[which], box) > 0.5`, as indices into the batch's pixels flattened (B*S*S)."""
        native = lit_pixels_in_c(mask, which, box, self.image_size)
        return native if native is not None else lit_pixels(mask, which, box, self.image_size, self.WINDOW_GROUP)


# How near 0.5 a sample computed in C must lie for grid_sample to settle it: far above the about 1e-6 by which
# doubles and grid_sample's float32 sums of the same inputs can differ, and rare (a few pixels a batch).
UNSURE_MARGIN = 1e-4


def lit_pixels_in_c(mask: torch.Tensor, which: torch.Tensor, box: torch.Tensor, size: int) -> torch.Tensor | None:
    """`lit_pixels` by the C sampler of `_paint.c`, the pixels it cannot decide settled by grid_sample itself:
    int32 indices (in another order: a set, which is all drawing needs), or None where it does not apply."""
    n, s = len(box), size
    if (_paint is None or mask.device.type != "cpu" or mask.dtype != torch.float32 or box.dtype != torch.float32
            or n * s * s > torch.iinfo(torch.int32).max):
        return None
    gx, gy = sprite_coordinates(box, size)
    lit, unsure = np.empty(n * s * s, dtype=np.int32), np.empty(n * s * s, dtype=np.int32)
    n_lit, n_unsure = _paint.lit_pixels(mask[:, 0].contiguous().numpy(), mask.shape[-1], which.contiguous().numpy(),
                                        gx.contiguous().numpy(), gy.contiguous().numpy(), s, UNSURE_MARGIN, lit, unsure)
    found = torch.from_numpy(lit[:n_lit])
    if n_unsure:
        pixel = torch.from_numpy(unsure[:n_unsure]).long()
        image, row, col = pixel // (s * s), pixel // s % s, pixel % s
        grid = torch.stack([gx[image, col], gy[image, row]], dim=1)[:, None, None, :]  # (N,1,1,2): N unsure pixels
        value = nn.functional.grid_sample(mask[which[image]], grid, padding_mode="zeros", align_corners=False)
        found = torch.cat([found, pixel[value.view(-1) > 0.5].to(torch.int32)])
    return found


def lit_pixels(mask: torch.Tensor, which: torch.Tensor, box: torch.Tensor, size: int, window_group: int = 64) -> torch.Tensor:
    """Where sprites `mask` (U,1,T,T), `mask[which]` sampled into `box` (B,4) on a size x size canvas, are over 0.5:
    indices into the batch's pixels flattened (B*S*S), found by sampling only the window of rows and columns
    that each sprite can reach.

    With zero padding and align_corners=False, a sample at |g| >= 1 + 1/T lies a whole texel beyond the
    outermost texels' centres, so its bilinear weights fall on padding alone: exactly 0. So outside the
    columns (rows) whose sprite x (y) is inside that bound nothing is lit, and inside, each pixel is
    sampled at the very grid value that `box_grid` gives it (a slice of the same per-column and per-row
    coordinates), so a sample near 0.5 thresholds the same way: the pixels are exactly those of the
    whole-canvas sampling.
    """
    n, s = len(box), size
    # int32 indices halve the bytes that the selection below reads and writes
    index_dtype = torch.int32 if n * s * s <= torch.iinfo(torch.int32).max else torch.int64
    if n == 0:
        return torch.zeros(0, dtype=index_dtype, device=box.device)
    gx, gy = sprite_coordinates(box, size)
    reach = 1 + 1 / mask.shape[-1]  # the sprite's own resolution T
    first_col, width = _reach_span(gx, reach)
    first_row, height = _reach_span(gy, reach)
    # Images sorted by their window's longer side, so that a group's window fits all of its images
    # without being much larger than most of them.
    groups = torch.maximum(width, height).argsort().split(window_group)
    sides = torch.stack([torch.stack([width[g].max(), height[g].max()]) for g in groups]).tolist()
    lit = []
    for images, (w, h) in zip(groups, sides):
        if w == 0 or h == 0:
            continue  # no sprite reaches into any of these images
        # A window starts at its image's first reachable column (row), moved back where it would
        # overhang the canvas; it still covers every reachable one, as no image's span exceeds it.
        cols = first_col[images].clamp(max=s - w)[:, None] + torch.arange(w, device=box.device)  # (G, w)
        rows = first_row[images].clamp(max=s - h)[:, None] + torch.arange(h, device=box.device)  # (G, h)
        x, y = gx[images].gather(1, cols), gy[images].gather(1, rows)
        g = len(images)
        grid = torch.stack([x[:, None, :].expand(g, h, w), y[:, :, None].expand(g, h, w)], dim=3)
        placed = nn.functional.grid_sample(mask[which[images]], grid, padding_mode="zeros", align_corners=False)
        cols, rows, images = cols.to(index_dtype), rows.to(index_dtype), images.to(index_dtype)
        pixel = (images * (s * s))[:, None, None] + rows[:, :, None] * s + cols[:, None, :]  # (G, h, w)
        lit.append(pixel.masked_select(placed[:, 0] > 0.5))
    return torch.cat(lit) if lit else torch.zeros(0, dtype=index_dtype, device=box.device)


def _reach_span(coordinate: torch.Tensor, reach: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column (or per-row) sprite coordinates (B,S) -> the first index whose |coordinate| < reach and
    how many indices from there up to the last such one, (B,) each; a count of 0 where none is.

    The coordinates rise along the row, so those inside form one run; taking its first and last index
    instead of counting keeps every inside index covered even if rounding ever broke that order.
    """
    s = coordinate.shape[1]
    inside = coordinate.abs() < reach
    index = torch.arange(s, device=coordinate.device)
    first = torch.where(inside, index, s).amin(1)
    end = torch.where(inside, index + 1, 0).amax(1)
    return first, (end - first).clamp(min=0)


def sprite_coordinates(box: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Box (B,4) as (cx, cy, half width, half height) in [-1,1] image units -> the sprite x of each column and the
    sprite y of each row of a size x size canvas, (B,S) each.

    The box only scales and moves (no rotation), so each column's x and each row's y are computed once
    and broadcast: what affine_grid would give for theta [[1/w, 0, -cx/w], [0, 1/h, -cy/h]], without
    its per-pixel matrix product, which was the largest single cost of decoding a batch. Every sampling of
    a sprite (the whole canvas or a window of it) reads these values: one formula, so the same bits.
    """
    steps = torch.linspace(-1, 1, size, device=box.device, dtype=box.dtype) * (size - 1) / size  # pixel centres, as affine_grid has them
    gx = steps[None, :] * (1 / box[:, 2:3]) + (-box[:, 0:1] / box[:, 2:3])  # (B,S): sprite x of each column
    gy = steps[None, :] * (1 / box[:, 3:4]) + (-box[:, 1:2] / box[:, 3:4])  # (B,S): sprite y of each row
    return gx, gy


def box_grid(box: torch.Tensor, size: int) -> torch.Tensor:
    """Box (B,4) -> where each pixel of a size x size canvas reads its sprite, (B,S,S,2) in sprite coordinates
    [-1,1], for grid_sample."""
    gx, gy = sprite_coordinates(box, size)
    return torch.stack([gx[:, None, :].expand(-1, size, -1), gy[:, :, None].expand(-1, -1, size)], dim=3)
