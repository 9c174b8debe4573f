"""The rule judge for Sort-of-CLEVR: read each image's scene table from its pixels, then answer by rule.

Like the easy-VQA rule judge (judge_rules.py) it has no weights and never enters a training loss,
so a decoder cannot learn to please it: a reconstruction scores only if a plain reading of its
pixels finds each coloured object where, and as what, the original had it. It reads a lossy
picture as a careful person would: an object still clearly in its colour and shape counts though
its tint has drifted or its edges have bled; one whose colour or shape is gone does not.

    image -> each pixel: its nearest blend of white with one of the 6 colours, and how far along
             that blend it lies (its amount: 0 = white, 1 = the full colour, or darker);
             coloured where the amount is above COLOURED_ABOVE                 (colour_labels)
          -> per colour: the largest 8-connected blob of its coloured pixels    (object_masks)
          -> weights: the amounts over the blob, its holes and its 1-pixel rim, wherever those
             pixels are nearest the same colour
          -> centroid = the weighted mean (cx, cy)
          -> shape: the weights, plus the amounts of achromatic pixels (nearest gray) around
             this object and no other, sampled at the stamp's 9x9 pixel centres around the
             centroid; square where the 12 corner pixels only a square covers hold more than
             CORNERS_ABOVE of the disc pixels' mean, else disc                  (read_scenes)
          -> the (6,3) table, answered by data/sort_of_clevr.answer: the generator's own rules

Why blends. Lossy codecs subsample chroma and blur, so most of a 9-pixel object's pixels are its
colour mixed with the white around it, darkened by ringing, or slightly off in hue. Against the
exact palette entries a tight radius loses most of such an object, and plain nearest-entry voting
hands a blend to whichever entry happens to lie nearest (a blue-white blend is nearer gray than
blue or white). Every pixel an object leaves on white lies near the segment from white to its
colour, so each pixel goes to the nearest of the 6 segments and counts as coloured when it lies
more than half way from white: the edge a person would draw. Gray, the hard case, is a segment
like the others: a greyish white lies near its white end and stays background, while a darkened
colour (navy, maroon) stays nearest its own segment. Pure cyan or magenta lies exactly half way
along two segments and reads as neither; a colour pulled most of the way to gray reads as gray.

Why the largest blob, then soft weights. The largest blob keeps each colour's object and drops
specks and faint ghosts elsewhere (a ghost under half strength is not coloured at all). The
half-way cut alone would clip a blurred object's rim at an arbitrary place, so the centroid and
the shape read the amounts themselves, over the blob and its rim: a blur that spreads an object
evenly leaves its weighted centre in place. Rim pixels nearest another colour (a neighbouring
object's edge) weigh nothing; where the object is comes from its own colour alone.

Why corners. A square and a disc of the known size (sort_of_clevr.stamps, OBJECT_RADIUS) differ
only in the 12 corner pixels of their 9x9 box. A blob's fill of its bounding box swings as soon as
the blob gains or loses an edge row; the corners, sampled bilinearly at the weighted centre and
compared with the disc pixels of the same object, judge a faded or shrunk object against itself.
A sharp square's corners hold what its disc does (ratio 1), a disc's nothing (ratio 0): the cut is
halfway. Codecs keep brightness at full resolution and colour at half, so their errors inside an
object are mostly dark or grey specks and stripes (ringing) that leave its outline plain to see;
the shape test counts such achromatic pixels as the object's when no other object's surroundings
reach them, but not a fringe of another hue, which is colour bled from a neighbour. A blur as
wide as the objects smears both shapes into the kernel's own, so such a picture reads no
trustworthy shapes, while its blobs' centres, which a blur keeps, still read.

A colour with no coloured pixel at all reads as a disc at the image centre (FALLBACK_SHAPE,
FALLBACK_CENTRE) so every question still gets an answer. Where two read distances tie exactly,
closest and farthest go to the first of the tied objects in COLORS order (sort_of_clevr.answer).
Originals read exactly: their pixels are the colours or white, so the blobs are the stamps, the
weights 1 on them and 0 around them, and the centroids the integer centres.

Only pixels at least half the shortest segment's length from white can be coloured, so the blend
reading runs on those and on the objects' surroundings alone: a few per cent of a picture.
Images of another size than 64 are read at their own size, the stamp's sample positions scaled to
it, and their positions scaled to the 64-pixel grid the questions' rules are written for.
Introduced in notebooks/08_sort_of_clevr.ipynb.
"""
import torch
import torch.nn.functional as F

from vqagan_lib.data import sort_of_clevr as soc
from vqagan_lib.data.pixels import as_float

WHITE = torch.tensor(soc.BACKGROUND, dtype=torch.float32) / 255.0  # (3,)
# The 6 object colours in COLORS order, (6,3) in [0,1]; each pixel is read as white + amount * (colour - white).
COLOURS = torch.tensor([soc.PALETTE[c] for c in soc.COLORS], dtype=torch.float32) / 255.0
_TOWARDS = COLOURS - WHITE  # (6,3) white -> colour
_SQUARED_LENGTH = (_TOWARDS**2).sum(dim=1)  # (6,)
BACKGROUND_LABEL = len(soc.COLORS)  # colour_labels' value for a pixel that is no object's
COLOURED_ABOVE = 0.5  # more than half way from white to the colour: the edge a person would draw
CORNERS_ABOVE = 0.5  # corners / disc: 1 for a square, 0 for a disc; cut halfway
# More than half way along a segment means at least half its length from white: nearer white, no pixel is coloured.
_MAY_BE_COLOURED = float(_SQUARED_LENGTH.min()) * COLOURED_ABOVE**2  # a squared distance from white
SQUARE, DISC = soc.SHAPES.index("square"), soc.SHAPES.index("circle")
FALLBACK_SHAPE = DISC
FALLBACK_CENTRE = soc.CENTRE_LINE  # the image centre in pixel-centre coordinates, on both axes
_STAMPS = torch.from_numpy(soc.stamps())  # (2,2R+1,2R+1) bool, indexed like SHAPES
_CORNERS = _STAMPS[SQUARE] & ~_STAMPS[DISC]  # the 12 pixels only a square covers
_OFFSETS = torch.arange(-soc.OBJECT_RADIUS, soc.OBJECT_RADIUS + 1, dtype=torch.float32)  # (2R+1,) stamp columns / rows
_K = len(soc.COLORS)
_GRAY = soc.COLORS.index("gray")
_IMAGES_PER_CALL = 256


def _as_batch(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 or float 0..1, (3,H,W) or (B,3,H,W) -> float (B,3,H,W) in [0,1], overshoot clipped."""
    return as_float(images if images.dim() == 4 else images[None]).detach().clamp(0, 1)


def read_pixels(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(P,3) float in [0,1] -> nearest (P,) int64 index into COLORS, amount (P,) in [0,1], coloured (P,) bool.

    Each pixel's nearest segment from white to one of the 6 colours, how far along it the pixel lies
    (0 at white, 1 at the colour or beyond it), and whether it counts as that colour: more than
    COLOURED_ABOVE along.
    """
    off_white = rgb - WHITE  # (P,3)
    along = off_white @ _TOWARDS.T  # (P,6)
    amount = (along / _SQUARED_LENGTH).clamp(0, 1)  # the nearest point of each segment
    # squared distance to that point: |p|^2 - 2 a p.d + a^2 |d|^2
    d2 = (off_white**2).sum(dim=1, keepdim=True) - amount * (2 * along - amount * _SQUARED_LENGTH)
    nearest = d2.argmin(dim=1)
    amount = amount.gather(1, nearest[:, None])[:, 0]
    return nearest, amount, amount > COLOURED_ABOVE


def _pixels_at(x: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W), flat indices into (B,H,W) -> (P,3) their colours."""
    b, _, h, w = x.shape
    return x.reshape(b, 3, h * w)[flat // (h * w), :, flat % (h * w)]


def _coloured_pixels(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,3,H,W) -> (flat indices into (B,H,W) of the coloured pixels, their colours' indices), both (P,)."""
    # only pixels far enough from white can be coloured: read those alone (a few per cent of a picture)
    maybe = ((1 - x) ** 2).sum(dim=1).reshape(-1) >= _MAY_BE_COLOURED
    flat = maybe.nonzero().squeeze(1)
    nearest, _, coloured = read_pixels(_pixels_at(x, flat))
    return flat[coloured], nearest[coloured]


def colour_labels(images: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) -> (B,H,W) int64: index into COLORS of each coloured pixel; BACKGROUND_LABEL (6) elsewhere."""
    x = _as_batch(images)
    b, _, h, w = x.shape
    flat, colour = _coloured_pixels(x)
    labels = torch.full((b * h * w,), BACKGROUND_LABEL, dtype=torch.long)
    labels[flat] = colour
    return labels.view(b, h, w)


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


def _largest_blob_pixels(pixels: torch.Tensor, m: int, h: int, w: int) -> torch.Tensor:
    """Sorted flat indices (P,) of M masks' foreground, into (M,H,W) -> the sorted indices of each mask's largest blob."""
    if len(pixels) == 0:
        return pixels
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
    return pixels[label == best_root[pixels // (h * w)]]


def largest_blobs(masks: torch.Tensor) -> torch.Tensor:
    """(M,H,W) bool -> (M,H,W) bool: each mask's largest 8-connected blob (ties: the first in raster order).

    Connected components over the foreground pixels only (a few per cent of an image): every pixel
    starts labelled with its own index and repeatedly takes the smallest label among its neighbours,
    then follows its label's own label (pointer jumping, so long blobs settle in few rounds). At the
    fixed point each blob carries the index of its first pixel.
    """
    m, h, w = masks.shape
    kept = torch.zeros(m * h * w, dtype=torch.bool)
    kept[_largest_blob_pixels(masks.reshape(-1).nonzero().squeeze(1), m, h, w)] = True
    return kept.view(m, h, w)


def _object_pixels(x: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) -> sorted flat indices into (6,B,H,W), colour-major planes, of each colour's object: its largest blob."""
    b, _, h, w = x.shape
    flat, colour = _coloured_pixels(x)
    # colour-major, so each colour's pixels, already in (image, row, column) order, follow the previous colour's
    planes = torch.cat([flat[colour == k] + k * b * h * w for k in range(_K)])
    return _largest_blob_pixels(planes, _K * b, h, w)


def object_masks(images: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) uint8 or [0,1] float -> (B,6,H,W) bool: each colour's object (its largest blob of coloured pixels)."""
    if images.dim() == 3:
        images = images[None]
    b, _, h, w = images.shape
    masks = torch.zeros(_K, b * h * w, dtype=torch.bool)
    for i in range(0, b, _IMAGES_PER_CALL):  # slices keep the flat indices and the scratch planes small
        part = images[i : i + _IMAGES_PER_CALL]
        objects = _object_pixels(_as_batch(part))
        masks[objects // (len(part) * h * w), i * h * w + objects % (len(part) * h * w)] = True
    return masks.view(_K, b, h, w).transpose(0, 1).contiguous()


def _around(pixels: torch.Tensor, m: int, h: int, w: int) -> torch.Tensor:
    """Sorted flat indices into (M,H,W) -> the sorted indices of those pixels and their 8 neighbours in the same plane."""
    hit = torch.zeros(m * h * w, dtype=torch.bool)
    hit[pixels] = True
    planes = hit.view(m, h, w)
    grown = planes.clone()  # the 3x3 dilation, as a row pass then a column pass, never across a plane's edge
    grown[:, :, 1:] |= planes[:, :, :-1]
    grown[:, :, :-1] |= planes[:, :, 1:]
    rows = grown.clone()
    grown[:, 1:] |= rows[:, :-1]
    grown[:, :-1] |= rows[:, 1:]
    return grown.view(-1).nonzero().squeeze(1)


def _stamp_samples(around: torch.Tensor, weight: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor,
                   h: int, w: int) -> torch.Tensor:
    """The weights (flat indices into (M,H,W), values) sampled bilinearly at the stamp's 9x9 pixel centres
    around each plane's centroid (cx, cy): (M,2R+1,2R+1); white (0) wherever no weight lies."""
    m = len(cx)
    scale_x, scale_y = w / soc.IMAGE_SIZE, h / soc.IMAGE_SIZE  # a larger image's object is that much wider
    reach = int(-(-soc.OBJECT_RADIUS * max(scale_x, scale_y) // 1))  # ceil: the farthest sample from the centre
    size = 2 * reach + 2  # every sample's four bilinear neighbours, around the centroid's own pixel
    ox, oy = cx.floor().long() - reach, cy.floor().long() - reach  # (M,) each window's top-left pixel
    plane, y, x = around // (h * w), around // w % h, around % w
    wy, wx = y - oy[plane], x - ox[plane]
    inside = (wy >= 0) & (wy < size) & (wx >= 0) & (wx < size)
    window = torch.zeros(m * size * size)
    window.index_put_(((plane[inside] * size + wy[inside]) * size + wx[inside],), weight[inside])
    # grid_sample's [-1, 1] over each window, pixel i spanning [i, i+1)
    gx = ((cx - ox)[:, None, None] + scale_x * _OFFSETS[None, None, :] + 0.5) / size * 2 - 1
    gy = ((cy - oy)[:, None, None] + scale_y * _OFFSETS[None, :, None] + 0.5) / size * 2 - 1
    side = len(_OFFSETS)
    grid = torch.stack([gx.expand(m, side, side), gy.expand(m, side, side)], dim=-1)
    return F.grid_sample(window.view(m, 1, size, size), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[:, 0]


def _read(x: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) float in [0,1] -> (B,6,3) float32 tables (shape, cx, cy) on the 64 grid: one slice of `read_scenes`."""
    b, _, h, w = x.shape
    m, hw = _K * b, h * w
    objects = _object_pixels(x)  # planes colour-major: plane = colour * B + image
    # weights: the amount over the blob, its holes and its 1-pixel rim, where those pixels are nearest the same
    # colour (so never a neighbouring object's): faint rims and dark or off-tint specks inside an object count
    around = _around(objects, m, h, w)
    plane, pixel = around // hw, around % hw
    image_pixel = plane % b * hw + pixel  # flat into (B,H,W)
    nearest, amount, _ = read_pixels(_pixels_at(x, image_pixel))
    own = nearest == plane // b
    weight = torch.where(own, amount, torch.zeros_like(amount))
    mass = torch.bincount(plane, weight, minlength=m)  # (M,)
    cx = torch.bincount(plane, weight * (pixel % w), minlength=m) / mass.clamp(min=1e-12)  # in the image's own pixels
    cy = torch.bincount(plane, weight * (pixel // w), minlength=m) / mass.clamp(min=1e-12)
    # the shape also counts achromatic pixels (nearest gray) that no other object's surroundings reach: a codec's
    # dark ringing inside an object is an error of brightness, while a fringe of another hue is bled chroma
    claims = torch.bincount(image_pixel, minlength=b * hw)[image_pixel]  # how many objects' surroundings hold it
    shade = (nearest == _GRAY) & (claims == 1)
    ink = torch.where(own | shade, amount, torch.zeros_like(amount))
    sampled = _stamp_samples(around, ink, cx, cy, h, w)  # (M,2R+1,2R+1)
    corners = sampled[:, _CORNERS].mean(dim=1)
    disc = sampled[:, _STAMPS[DISC]].mean(dim=1)
    shape = torch.where(corners > CORNERS_ABOVE * disc, float(SQUARE), float(DISC))
    cx = (cx + 0.5) * soc.IMAGE_SIZE / w - 0.5  # pixel-centre coordinates on the 64 grid
    cy = (cy + 0.5) * soc.IMAGE_SIZE / h - 0.5
    missing = torch.bincount(objects // hw, minlength=m) == 0
    shape = torch.where(missing, float(FALLBACK_SHAPE), shape)
    cx = torch.where(missing, FALLBACK_CENTRE, cx)
    cy = torch.where(missing, FALLBACK_CENTRE, cy)
    return torch.stack([shape, cx, cy], dim=1).view(_K, b, 3).transpose(0, 1).contiguous()


def read_scenes(images: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) uint8 or [0,1] float -> (B,6,3) float32: the scene table read from the pixels."""
    if images.dim() == 3:
        images = images[None]
    if not len(images):
        return torch.zeros((0, _K, 3))
    slices = (images[i : i + _IMAGES_PER_CALL] for i in range(0, len(images), _IMAGES_PER_CALL))
    return torch.cat([_read(_as_batch(part)) for part in slices])


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
