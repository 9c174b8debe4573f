"""Sort-of-CLEVR: six flat objects and relational questions, generated here, offline and deterministically.

The world of Santoro et al. 2017 ("A simple neural network module for relational reasoning",
arXiv 1706.01427, sec. 4.2): each image holds one object of each of six colours, every object a
square or a disc, on a white background. Half the questions ask about one object alone, half
about its relation to the others:

    non-relational   what is the shape of the red object?                   -> square | circle
                     is the red object on the left or the right?            -> left | right
                     is the red object at the top or the bottom?            -> top | bottom
    relational       what is the shape of the object closest to the red object?   -> square | circle
                     what is the shape of the object farthest from the red object? -> square | circle
                     how many objects have the same shape as the red object?      -> 1 .. 6

Every image is asked all 36 (6 colours x 6 templates), colour-major: the six templates of red,
then of green, ... in COLORS x QUESTION_TYPES order.

Size. The paper's models read 128x128 and a widely used public generator draws 75x75; we draw
IMAGE_SIZE = 64 so every model of the course keeps its easy-VQA size and CPU cost. Objects are
still 2R+1 = 9 pixels wide (R = OBJECT_RADIUS):

    square (side 2R+1)      disc (pixel centres within R + 1/2 of the centre)
    #########               ..#####..
    #########               .#######.
    #########               #########
    #########               #########
    ####+####               ####+####     + = the centre, an integer pixel, so each shape's
    #########               #########         pixel centroid is exactly its centre
    #########               #########
    #########               .#######.
    #########               ..#####..

The disc covers 69 of its box's 81 pixels, the square all 81: the 12 corner pixels only a square covers tell them apart.

The ground truth of an image is its scene table, a (6,3) int64 tensor with one row per colour
in COLORS order: (shape index into SHAPES, cx, cy), x to the right and y down, in pixels.
`answer(question, scene)` is the one owner of the question semantics: the generator calls it to
make the answers, and the rule judge (answerers/judge_scenes.py) calls it on a table it has read
from pixels. Positions are pixel-centre coordinates, so the centre line of the image lies at
(IMAGE_SIZE-1)/2 = 31.5: "left" means cx < 31.5 (for integer centres, cx <= 31, i.e. cx < 32).

Generation draws every image from its own random stream, seeded by (split seed, image index):

    split seed --+-- image 0: shapes (6 fair bits), then candidate centre sets until one is valid
                 +-- image 1: ...
                 +-- ...

so the first N images of a split do not depend on how many images are generated after them
(`limit_images` gives a prefix of the full split), and the splits, each with its own seed, are
disjoint streams. A candidate is valid when every object is fully inside the image, no two
objects' 9x9 boxes come closer than a 1-pixel gap (so no shape shares a pixel with another),
and no closest/farthest question is a near tie (below).
Introduced in notebooks/08_sort_of_clevr.ipynb.
"""
import dataclasses
import functools
import math
import zlib

import numpy as np
import torch

from vqagan_lib.data.split import VQASplit
from vqagan_lib.data.vocab import Vocabulary, tokenize

NAME = "sort-of-clevr"
IMAGE_SIZE = 64  # the course's image size; the paper reads 128x128, a common public generator 75x75
OBJECT_RADIUS = 4  # R: squares are 2R+1 wide, discs hold the pixel centres within R + 1/2
COLORS = ("red", "green", "blue", "orange", "yellow", "gray")
PALETTE = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "orange": (255, 156, 0),
    "yellow": (255, 255, 0),
    "gray": (128, 128, 128),
}
BACKGROUND = (255, 255, 255)
SHAPES = ("square", "circle")

QUESTION_TYPES = ("shape", "horizontal", "vertical", "closest", "farthest", "count")
QUESTION_GROUPS = {"non-relational": ("shape", "horizontal", "vertical"), "relational": ("closest", "farthest", "count")}
# Answered from the asked object alone: a picture of it alone answers them (the others need a second object).
SINGLE_OBJECT_TYPES = QUESTION_GROUPS["non-relational"]
TEMPLATES = {
    "shape": "what is the shape of the {color} object?",
    "horizontal": "is the {color} object on the left or the right?",
    "vertical": "is the {color} object at the top or the bottom?",
    "closest": "what is the shape of the object closest to the {color} object?",
    "farthest": "what is the shape of the object farthest from the {color} object?",
    "count": "how many objects have the same shape as the {color} object?",
}
ANSWERS = ("square", "circle", "left", "right", "top", "bottom", "1", "2", "3", "4", "5", "6")

SPLITS = ("train", "val", "test")
SPLIT_SIZES = {"train": 9_800, "val": 200, "test": 1_000}
SPLITS_NOTE = "Sort-of-CLEVR generated here: 9,800 train / 200 val / 1,000 test images, one seed per split; metrics on the 1,000 test originals"
MIRROR_SAFE = False  # a left-right flip swaps every left/right answer: critics must not train on flips
# A gap of one pixel between two objects' boxes: their centres are at least 2R+2 apart along x or y.
MIN_GAP = 1
# Closest and farthest answers must not hang on a near tie: the best and second-best distances
# of every object differ by at least this many pixels, so a reconstruction that moves an object
# by a fraction of a pixel cannot change the true answer.
MIN_MARGIN = 1.0
CENTRE_LINE = (IMAGE_SIZE - 1) / 2  # between pixel columns (rows) 31 and 32
_CANDIDATES = 64  # candidate centre sets an image draws per round: enough that few images need a second round


def split_seed(split: str) -> int:
    """A split's fixed seed, derived from its name (a stable hash: Python's hash() changes per process)."""
    return zlib.crc32(f"{NAME}/{split}".encode())


# ---------------------------------------------------------------- questions and their answers

def all_questions() -> list[str]:
    """The 36 questions every image is asked, colour-major (red's six templates first)."""
    return [TEMPLATES[t].format(color=c) for c in COLORS for t in QUESTION_TYPES]


@functools.lru_cache(maxsize=None)
def _template_by_words() -> dict[tuple[str, ...], str]:
    """A template's words with the colour blanked -> its family."""
    return {tuple(tokenize(text.format(color="COLOR"))): family for family, text in TEMPLATES.items()}


@functools.lru_cache(maxsize=256)
def parse(question: str) -> tuple[str, str]:
    """(family, colour) of a template question, from its words; ValueError on anything else."""
    words = tokenize(question)
    named = [w for w in words if w in COLORS]
    if len(named) == 1:
        blanked = tuple("color" if w == named[0] else w for w in words)
        family = _template_by_words().get(blanked)
        if family is not None:
            return family, named[0]
    raise ValueError(f"not a Sort-of-CLEVR question: {question!r}")


def asked_object(question: str) -> int:
    """The index (in COLORS, the scene table's row) of the object a template question names."""
    return COLORS.index(parse(question)[1])


def question_type(question: str) -> str:
    """The family of a template question: one of QUESTION_TYPES."""
    return parse(question)[0]


def _half(position: float, low: str, high: str) -> str:
    return low if position < CENTRE_LINE else high


def _shape_of(value: float) -> str:
    return SHAPES[int(round(value))]


def _extreme_neighbour(rows: list[list[float]], asked: int, farthest: bool, present: list[bool]) -> int:
    """Row of the present object closest to (or farthest from) row `asked`. Ties go to the first in COLORS order."""
    _, x0, y0 = rows[asked]
    best, best_d2 = -1, 0.0
    for j, (_, x, y) in enumerate(rows):
        if j == asked or not present[j]:
            continue
        d2 = (x - x0) ** 2 + (y - y0) ** 2  # squared Euclidean: the same order as the distance
        if best < 0 or (d2 > best_d2 if farthest else d2 < best_d2):
            best, best_d2 = j, d2
    return best


def answer(question: str, scene: torch.Tensor | list, present=None) -> str:
    """Answer a template question from a (6,3) scene table (shape index, cx, cy), int or float.

    Closest and farthest are by Euclidean distance between centres; "how many" counts the asked
    object too (as in the paper), so its answers run from 1 to 6.
    A tensor or its rows as python lists (what a judge passes after one `tolist()` per batch).
    `present` (6 bools, default all) answers for a picture of only those objects, as `render(keep=)`
    draws it: the relations then range over the present objects alone. The asked object must be
    present, and closest/farthest need one other.
    """
    family, colour = parse(question)
    rows = scene.tolist() if isinstance(scene, torch.Tensor) else [list(r) for r in scene]
    present = [True] * len(rows) if present is None else [bool(p) for p in present]
    asked = COLORS.index(colour)
    if not present[asked]:
        raise ValueError(f"{question!r}: the {colour} object is not in the picture")
    shape, cx, cy = rows[asked]
    if family == "shape":
        return _shape_of(shape)
    if family == "horizontal":
        return _half(cx, "left", "right")
    if family == "vertical":
        return _half(cy, "top", "bottom")
    if family in ("closest", "farthest"):
        other = _extreme_neighbour(rows, asked, family == "farthest", present)
        if other < 0:
            raise ValueError(f"{question!r}: no other object in the picture")
        return _shape_of(rows[other][0])
    # count: the object itself included
    return str(sum(_shape_of(r[0]) == _shape_of(shape) for r, here in zip(rows, present) if here))


# ---------------------------------------------------------------- scenes

def _distances(centres: np.ndarray) -> np.ndarray:
    """(K,6,2) centres -> (K,6,6) Euclidean distances between every two objects."""
    delta = (centres[:, :, None, :] - centres[:, None, :, :]).astype(np.float64)  # (K,6,6,2)
    return np.sqrt((delta**2).sum(axis=-1))


def _apart(centres: np.ndarray) -> np.ndarray:
    """(K,6,2) -> (K,) bool: every two objects' boxes are separated by a gap of MIN_GAP pixels."""
    i, j = np.triu_indices(centres.shape[1], k=1)  # the 15 pairs
    chebyshev = np.abs(centres[:, i] - centres[:, j]).max(axis=-1)  # (K,15)
    return (chebyshev >= 2 * OBJECT_RADIUS + 1 + MIN_GAP).all(axis=1)


def _clear(centres: np.ndarray) -> np.ndarray:
    """(K,6,2) -> (K,) bool: for every object, closest and farthest win by at least MIN_MARGIN pixels."""
    n = centres.shape[1]
    off = ~np.eye(n, dtype=bool)
    near = np.sort(_distances(centres)[:, off].reshape(len(centres), n, n - 1), axis=-1)  # (K,6,5) ascending
    return ((near[..., 1] - near[..., 0] >= MIN_MARGIN) & (near[..., -1] - near[..., -2] >= MIN_MARGIN)).all(axis=1)


def valid_centres(centres: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """(K,6,2) int centres -> (K,) bool: apart by a gap, and no near tie for closest or farthest.

    Inside-the-image is not checked here: the centres are drawn inside already.
    """
    if len(centres) > chunk:  # the pairwise tables are 36 entries a candidate: check in slices
        return np.concatenate([valid_centres(centres[i : i + chunk], chunk) for i in range(0, len(centres), chunk)])
    ok = _apart(centres)
    ok[ok] = _clear(centres[ok])  # the dearer check, only where the cheap one passed
    return ok


def _draw_centres(rng: np.random.Generator, k: int) -> np.ndarray:
    """k candidate centre sets, uniform over the positions that keep every object inside the image."""
    return rng.integers(OBJECT_RADIUS, IMAGE_SIZE - OBJECT_RADIUS, size=(k, len(COLORS), 2))  # (k,6,2)


def generate_scenes(n: int, seed: int) -> torch.Tensor:
    """n scene tables (n,6,3) int64; image i depends only on (seed, i).

    Rejection sampling: the first valid candidate of the image's own stream is kept, which is a
    uniform draw from the valid centre sets. The draws run one image at a time (cheap), the checks
    for all images at once.
    """
    rngs = [np.random.default_rng([seed, i]) for i in range(n)]
    shapes = np.stack([r.integers(0, len(SHAPES), size=len(COLORS)) for r in rngs]) if n else np.zeros((0, len(COLORS)), np.int64)
    centres = np.zeros((n, len(COLORS), 2), dtype=np.int64)
    pending = np.arange(n)
    while len(pending):
        batch = np.stack([_draw_centres(rngs[i], _CANDIDATES) for i in pending])  # (P,K,6,2)
        ok = valid_centres(batch.reshape(-1, len(COLORS), 2)).reshape(len(pending), _CANDIDATES)  # (P,K)
        found = ok.any(axis=1)
        first = ok.argmax(axis=1)
        centres[pending[found]] = batch[found, first[found]]
        pending = pending[~found]  # these images draw another round from their own streams
    table = np.concatenate([shapes[:, :, None], centres], axis=2)  # (n,6,3)
    return torch.from_numpy(table.astype(np.int64))


@functools.lru_cache(maxsize=None)
def stamps() -> np.ndarray:
    """(2, 2R+1, 2R+1) bool: the pixels of a square and of a disc, indexed like SHAPES."""
    offsets = np.arange(-OBJECT_RADIUS, OBJECT_RADIUS + 1)
    d2 = offsets[:, None] ** 2 + offsets[None, :] ** 2  # (2R+1,2R+1)
    square = np.ones_like(d2, dtype=bool)
    disc = d2 <= (OBJECT_RADIUS + 0.5) ** 2  # R+1/2: as wide as the square, round rather than diamond-tipped
    return np.stack([square, disc])


def render(scenes: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """(n,6,3) scene tables -> (n,3,64,64) uint8 images: each colour's stamp pasted at its centre.

    `keep` (n,6) bool draws only those objects (the rest is background): a scene with fewer objects,
    which `answer(question, scene, present=keep row)` answers.
    Objects are pasted in COLORS order, so where a hand-built table overlaps two, the later one shows.
    """
    table = scenes.numpy() if isinstance(scenes, torch.Tensor) else np.asarray(scenes)
    table = table.astype(np.int64)
    n = len(table)
    drawn = np.ones((n, len(COLORS)), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    canvas = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)  # (n,H,W,3)
    canvas[:] = BACKGROUND
    stamp = stamps()
    for k, colour in enumerate(COLORS):
        shape, cx, cy = table[:, k, 0], table[:, k, 1], table[:, k, 2]
        image, dy, dx = np.nonzero(stamp[shape])  # every painted pixel of object k in every image
        painted = drawn[image, k]
        image, dy, dx = image[painted], dy[painted], dx[painted]
        canvas[image, cy[image] + dy - OBJECT_RADIUS, cx[image] + dx - OBJECT_RADIUS] = PALETTE[colour]
    return torch.from_numpy(canvas).permute(0, 3, 1, 2).contiguous()  # (n,3,H,W)


# ---------------------------------------------------------------- splits

def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


def _make_split(scenes: torch.Tensor) -> VQASplit:
    """Images and all 36 questions per image from scene tables."""
    questions = all_questions()
    types = [question_type(q) for q in questions]
    n = len(scenes)
    return VQASplit(
        dataset=NAME,
        images=render(scenes),
        image_ids=list(range(n)),
        questions=questions * n,
        answers=[answer(q, scene) for scene in scenes for q in questions],
        question_image=torch.arange(n).repeat_interleave(len(questions)),
        types=types * n,
        truth=scenes,
    )


@functools.lru_cache(maxsize=3)
def _full_split(split: str) -> VQASplit:
    return _make_split(generate_scenes(SPLIT_SIZES[split], split_seed(split)))


def load_split(split: str, limit_images: int | None = None) -> VQASplit:
    """'train' (9,800 images), 'val' (200) or 'test' (1,000); `limit_images` generates only the first N.

    A full split is generated once per process; each call gets its own lists, but the image and
    truth tensors are shared with the cache: copy them before writing into them.
    """
    _check_split(split)
    if limit_images is None or limit_images >= SPLIT_SIZES[split]:
        full = _full_split(split)
        return dataclasses.replace(full, image_ids=list(full.image_ids), questions=list(full.questions),
                                   answers=list(full.answers), types=list(full.types))
    return _make_split(generate_scenes(max(limit_images, 0), split_seed(split)))


def build_vocabulary() -> Vocabulary:
    """Words of the 36 template questions (exactly the full train split's questions) and the 12 answers."""
    return Vocabulary.build(all_questions(), list(ANSWERS))


# ---------------------------------------------------------------- information

INFORMATION_SCENES = 200_000
INFORMATION_SEED = zlib.crc32(f"{NAME}/information".encode())


def _entropy_bits(counts: np.ndarray) -> float:
    """Plug-in entropy of observed counts, in bits."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _miller_madow(counts: np.ndarray) -> float:
    """The plug-in entropy plus its first-order bias, (observed outcomes - 1) / (2 N ln 2): the plug-in
    estimate is low on average, and an upper bound should not err low."""
    return _entropy_bits(counts) + (int((counts > 0).sum()) - 1) / (2 * counts.sum() * math.log(2))


def _sample_valid_centres(n: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    """n valid centre sets (n,6,2), the same distribution as the splits' (uniform over valid sets), from one stream."""
    rng = np.random.default_rng(seed)
    kept, have = [], 0
    while have < n:
        candidates = _draw_centres(rng, chunk)
        good = candidates[valid_centres(candidates)]
        kept.append(good)
        have += len(good)
    return np.concatenate(kept)[:n]


def _relational_exact() -> float:
    """Sum over the 12 closest/farthest questions of H(answer | asked object's shape, number of squares).

    Shapes are fair coins drawn apart from the positions, and which object is closest (farthest) depends
    on the positions only. Given the asked object's shape and m squares among the other five, the
    closest (farthest) object is any of the five alike, so the answer is 'square' with probability m/5, m ~ Binomial(5, 1/2).
    """
    others = len(COLORS) - 1
    per_question = 0.0
    for m in range(others + 1):
        p = m / others
        h = 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
        per_question += math.comb(others, m) / 2**others * h
    return 2 * len(COLORS) * per_question


def _relational_plugin(shapes: np.ndarray, centres: np.ndarray) -> float:
    """The same sum by the plug-in estimator over sampled scenes: a check on `_relational_exact`."""
    euclid = _distances(centres)  # (N,6,6)
    n = len(COLORS)
    self_pair = np.eye(n, dtype=bool)
    nearest = np.where(self_pair, np.inf, euclid).argmin(axis=2)  # (N,6)
    farthest = np.where(self_pair, -np.inf, euclid).argmax(axis=2)  # (N,6)
    squares = (shapes == 0).sum(axis=1)  # (N,)
    total = 0.0
    for target in (nearest, farthest):
        for i in range(n):
            said = np.take_along_axis(shapes, target[:, i : i + 1], axis=1)[:, 0]  # (N,) the answer's shape
            cell = (shapes[:, i] * (n + 1) + squares) * 2 + said  # (asked shape, squares, answer) as one index
            joint = np.bincount(cell, minlength=2 * (n + 1) * 2).reshape(-1, 2)  # (conditions, answers)
            given = joint.sum(axis=1)
            total += sum(given[c] / len(shapes) * _entropy_bits(joint[c]) for c in range(len(joint)) if given[c])
    return total


def information_estimate() -> dict:
    """An estimate of an upper bound on the answer-relevant information of one image, in bits, by parts.

    The 36 answers are a function of the 6 shapes, the 12 half-plane bits (left/right, top/bottom of each
    object) and the 12 closest/farthest answers (how-many answers are a function of the shapes). So

        H(answers) <= H(shapes) + H(half-planes) + H(relational | shapes, half-planes)

    since the shapes are drawn apart from the positions. The parts:
      shapes        6 fair coins: exactly 6 bits.
      half_planes   the 12 bits' joint entropy over their 2^12 outcomes, estimated from sampled scenes
                    (less than 12: objects keep apart, so their half-planes are not independent), with
                    the Miller-Madow bias correction so the estimate does not err low; `half_planes_plugin`
                    is the uncorrected plug-in value.
      relational    sum over the 12 of H(answer | asked object's shape, number of squares): conditioning
                    on less can only raise an entropy, and a sum of entropies bounds their joint entropy,
                    so this bounds the 12 answers' share from above (it ignores their mutual dependence,
                    which is large: the bound is loose). Computed exactly (see `_relational_exact`);
                    `relational_plugin` is the plug-in estimate from the sampled scenes, a check.
      counts        0: a function of the shapes.
    `lower_bound` = shapes + half_planes_plugin: those answers are themselves among the 36 asked.
    Sampled once per process (INFORMATION_SCENES scenes from INFORMATION_SEED); each call gets its own dict.
    """
    return dict(_information_parts())


@functools.lru_cache(maxsize=1)
def _information_parts() -> dict:
    rng = np.random.default_rng(INFORMATION_SEED + 1)
    centres = _sample_valid_centres(INFORMATION_SCENES, INFORMATION_SEED)  # (N,6,2)
    shapes = rng.integers(0, len(SHAPES), size=(len(centres), len(COLORS)))  # (N,6)
    bits = (centres >= CENTRE_LINE).reshape(len(centres), -1)  # (N,12): right, bottom of each object
    outcome = bits @ (1 << np.arange(bits.shape[1]))  # (N,) the 12 bits as one integer
    counts = np.bincount(outcome, minlength=2 ** bits.shape[1])
    parts = {
        "shapes": float(len(COLORS) * math.log2(len(SHAPES))),
        "half_planes": float(_miller_madow(counts)),
        "half_planes_plugin": float(_entropy_bits(counts)),
        "relational": float(_relational_exact()),
        "relational_plugin": float(_relational_plugin(shapes, centres)),
        "counts": 0.0,
        "scenes": len(centres),
    }
    parts["total"] = parts["shapes"] + parts["half_planes"] + parts["relational"] + parts["counts"]
    parts["lower_bound"] = parts["shapes"] + parts["half_planes_plugin"]
    return parts


def information_bits() -> float:
    """The estimated upper bound on one image's answer-relevant information (bits); parts in `information_estimate`."""
    return information_estimate()["total"]
