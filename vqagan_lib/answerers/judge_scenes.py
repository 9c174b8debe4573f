"""The rule judge for Sort-of-CLEVR: read each image's scene table from its pixels, then answer by rule.

Like the easy-VQA rule judge (judge_rules.py) it has no weights and never enters a training loss,
so a decoder cannot learn to please it: a reconstruction scores only if a plain reading of its
pixels finds each coloured object where, and as what, the original had it.

    image -> each pixel: nearest of the 7 palette entries (6 object colours + white),
             kept only if it lies within MATCH_RADIUS of that entry
          -> per colour: the largest 8-connected blob of its pixels         (object_masks)
          -> centroid = (cx, cy); fill of its bounding box -> square / disc (read_scenes)
          -> the (6,3) table, answered by data/sort_of_clevr.answer: the generator's own rules

MATCH_RADIUS is half the distance between the two closest palette entries (orange and yellow),
so a pixel that passes can be near one entry only; blends at the edges of a blurred object, and
noise far from every entry, vote for nothing. Keeping the largest blob drops stray specks.
A colour with no pixels at all reads as a disc at the image centre (FALLBACK_SHAPE,
FALLBACK_CENTRE) so every question still gets an answer. Where two read distances tie exactly,
closest and farthest go to the first of the tied objects in COLORS order (sort_of_clevr.answer).

Images of another size than 64 are read at their own size and their positions scaled to the
64-pixel grid the questions' rules are written for.
Introduced in notebooks/08_sort_of_clevr.ipynb.
"""
import torch

from vqagan_lib.data import sort_of_clevr as soc
from vqagan_lib.data.pixels import as_float

# The 6 object colours in COLORS order, then the white background: (7,3) in [0,1].
ENTRIES = torch.tensor([soc.PALETTE[c] for c in soc.COLORS] + [soc.BACKGROUND], dtype=torch.float32) / 255.0
_GAPS = torch.cdist(ENTRIES, ENTRIES)[~torch.eye(len(ENTRIES), dtype=torch.bool)]  # (42,) between distinct entries
MATCH_RADIUS = float(_GAPS.min()) / 2  # half the orange-yellow distance: a passing pixel is near one entry only
# Fill of the bounding box: a square fills all of it, a disc the share its stamp does; cut halfway.
_DISC_FILL = float(soc.stamps()[1].mean())
SQUARE_ABOVE = (1.0 + _DISC_FILL) / 2
SQUARE, DISC = soc.SHAPES.index("square"), soc.SHAPES.index("circle")
FALLBACK_SHAPE = DISC
FALLBACK_CENTRE = soc.CENTRE_LINE  # the image centre in pixel-centre coordinates, on both axes
_IMAGES_PER_CALL = 256


def _as_batch(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 or float 0..1, (3,H,W) or (B,3,H,W) -> float (B,3,H,W) in [0,1], overshoot clipped."""
    return as_float(images if images.dim() == 4 else images[None]).detach().clamp(0, 1)


def colour_labels(images: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) -> (B,H,W) int64: index into COLORS of each pixel's colour; 6 = white, -1 = none near enough."""
    x = _as_batch(images)
    # squared distances as |x|^2 - 2 x.e + |e|^2: one small matrix product instead of a (B,7,3,H,W) difference
    d2 = (x**2).sum(dim=1, keepdim=True) - 2 * torch.einsum("bchw,kc->bkhw", x, ENTRIES) \
        + (ENTRIES**2).sum(dim=1)[None, :, None, None]  # (B,7,H,W)
    best, label = d2.min(dim=1)  # (B,H,W)
    return torch.where(best < MATCH_RADIUS**2, label, torch.full_like(label, -1))


def _neighbour_pairs(pixels: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground pixels (P,), sorted flat indices into (M,H,W) -> (u, v): rows of every 8-connected pair, once each."""
    y, x = (pixels // w) % h, pixels % w
    row = torch.arange(len(pixels))
    us, vs = [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):  # half the 8 neighbours: the other half are these, reversed
        inside = (y + dy < h) & (x + dx >= 0) & (x + dx < w)  # never crosses into the next mask or row
        wanted = pixels[inside] + dy * w + dx
        at = torch.searchsorted(pixels, wanted).clamp(max=len(pixels) - 1)  # where it would sit among the foreground
        hit = pixels[at] == wanted  # the neighbour is foreground too
        us.append(row[inside][hit])
        vs.append(at[hit])
    return torch.cat(us), torch.cat(vs)


def largest_blobs(masks: torch.Tensor) -> torch.Tensor:
    """(M,H,W) bool -> (M,H,W) bool: each mask's largest 8-connected blob (ties: the first in raster order).

    Connected components over the foreground pixels only (a few per cent of an image): every pixel
    starts labelled with its own index and repeatedly takes the smallest label among its neighbours,
    then follows its label's own label (pointer jumping, so long blobs settle in few rounds). At the
    fixed point each blob carries the index of its first pixel.
    """
    m, h, w = masks.shape
    pixels = masks.reshape(-1).nonzero().squeeze(1)  # (P,) flat indices
    kept = torch.zeros(m * h * w, dtype=torch.bool)
    if len(pixels) == 0:
        return kept.view(m, h, w)
    u, v = _neighbour_pairs(pixels, h, w)
    label = torch.arange(len(pixels))  # (P,) a row of the same blob, never above the pixel's own row
    while True:
        lower = label.clone()
        lower.scatter_reduce_(0, u, label[v], reduce="amin")
        lower.scatter_reduce_(0, v, label[u], reduce="amin")
        lower = lower[lower]
        if torch.equal(lower, label):
            break
        label = lower
    size = torch.bincount(label, minlength=len(pixels))  # (P,) pixels per blob, at its first row
    root = (label == torch.arange(len(pixels))).nonzero().squeeze(1)  # one row per blob
    # the largest blob of each mask; among equals the smallest root (first in raster order) scores highest
    key = size[root] * (len(pixels) + 1) + (len(pixels) - root)
    best = torch.full((m,), -1, dtype=torch.long).scatter_reduce_(0, pixels[root] // (h * w), key, reduce="amax")
    best_root = len(pixels) - best % (len(pixels) + 1)  # (M,) meaningless where the mask is empty
    kept[pixels[label == best_root[pixels // (h * w)]]] = True
    return kept.view(m, h, w)


def object_masks(images: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) uint8 or [0,1] float -> (B,6,H,W) bool: each colour's object (its largest blob)."""
    if images.dim() == 3:
        images = images[None]
    # the colour distances are 7 floats a pixel: label in slices; the blobs work on the foreground only
    labels = torch.cat([colour_labels(images[i : i + _IMAGES_PER_CALL]) for i in range(0, len(images), _IMAGES_PER_CALL)]) \
        if len(images) else torch.zeros((0,) + images.shape[2:], dtype=torch.long)  # (B,H,W)
    b, h, w = labels.shape
    per_colour = labels[:, None] == torch.arange(len(soc.COLORS))[None, :, None, None]  # (B,6,H,W)
    return largest_blobs(per_colour.view(b * len(soc.COLORS), h, w)).view(b, len(soc.COLORS), h, w)


def _extent(occupied: torch.Tensor) -> torch.Tensor:
    """(...,L) bool -> (...,) the number of positions from the first occupied one to the last, inclusive."""
    length = occupied.shape[-1]
    first = occupied.float().argmax(dim=-1)
    last = length - 1 - occupied.flip(-1).float().argmax(dim=-1)
    return (last - first + 1).clamp(min=0)


def scenes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """(B,6,H,W) bool -> (B,6,3) float32 scene tables (shape index, cx, cy) on the 64-pixel grid."""
    b, k, h, w = masks.shape
    m = masks.float()
    area = m.sum(dim=(2, 3))  # (B,6)
    xs = torch.arange(w, dtype=torch.float32)
    ys = torch.arange(h, dtype=torch.float32)
    cx = (m.sum(dim=2) * xs).sum(dim=2) / area.clamp(min=1)  # (B,6)
    cy = (m.sum(dim=3) * ys).sum(dim=2) / area.clamp(min=1)  # (B,6)
    # pixel-centre coordinates on the 64 grid: pixel i spans [i, i+1) of W, [64 i / W, 64 (i+1) / W) of 64
    cx = (cx + 0.5) * soc.IMAGE_SIZE / w - 0.5
    cy = (cy + 0.5) * soc.IMAGE_SIZE / h - 0.5
    box = _extent(masks.any(dim=2)) * _extent(masks.any(dim=3))  # (B,6) width x height
    fill = area / box.clamp(min=1).float()
    shape = torch.where(fill > SQUARE_ABOVE, float(SQUARE), float(DISC))
    missing = area == 0
    shape = torch.where(missing, float(FALLBACK_SHAPE), shape)
    cx = torch.where(missing, FALLBACK_CENTRE, cx)
    cy = torch.where(missing, FALLBACK_CENTRE, cy)
    return torch.stack([shape, cx, cy], dim=2)  # (B,6,3)


def read_scenes(images: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) uint8 or [0,1] float -> (B,6,3) float32: the scene table read from the pixels."""
    return scenes_from_masks(object_masks(images))


class SceneJudge:
    """Answers from `read_scenes`; reads each image once, however many questions it has."""

    def read_scenes(self, images: torch.Tensor) -> torch.Tensor:
        return read_scenes(images)

    def object_masks(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) -> (B,6,H,W) bool: the six objects as the judge reads them (for mask IoU)."""
        return object_masks(images)

    def answer_batch(self, images: torch.Tensor, questions: list[str]) -> list[str]:
        """One question per image row: (B,3,H,W), B questions -> B answers."""
        if len(images) != len(questions):
            raise ValueError(f"SceneJudge.answer_batch: {len(images)} images but {len(questions)} questions")
        tables = read_scenes(images).tolist()  # python rows: answering 36 questions an image stays cheap
        return [soc.answer(q, table) for q, table in zip(questions, tables)]

    def answer_split(self, images: torch.Tensor, questions: list[str], question_image: torch.Tensor) -> list[str]:
        """Images once per row, questions pointing at rows (a VQASplit's layout) -> one answer per question."""
        tables = read_scenes(images).tolist()
        return [soc.answer(q, tables[r]) for q, r in zip(questions, question_image.tolist())]
