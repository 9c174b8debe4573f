from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from vqagan_lib.answerers import judge_scenes as js
from vqagan_lib.answerers.judge_scenes import SceneJudge, largest_blobs, object_masks, read_scenes
from vqagan_lib.answerers.shapes import _largest_component
from vqagan_lib.data import sort_of_clevr as soc

R = soc.OBJECT_RADIUS


def scene(*rows) -> torch.Tensor:
    """A hand-built (6,3) table from (shape name, cx, cy) rows in COLORS order."""
    return torch.tensor([(soc.SHAPES.index(s), x, y) for s, x, y in rows], dtype=torch.long)


@pytest.fixture(scope="module")
def test_split():
    return soc.load_split("test")


def accuracy_by_type(predicted, split) -> dict[str, float]:
    right, asked = Counter(), Counter()
    for p, a, t in zip(predicted, split.answers, split.types):
        asked[t] += 1
        right[t] += p == a
    return {t: right[t] / asked[t] for t in soc.QUESTION_TYPES}


def test_judge_agrees_with_the_truth_on_every_test_original(test_split):
    predicted = SceneJudge().answer_split(test_split.images, test_split.questions, test_split.question_image)
    by_type = accuracy_by_type(predicted, test_split)
    print("judge accuracy per type on the test originals:", by_type)
    assert by_type == {t: 1.0 for t in soc.QUESTION_TYPES}


def test_read_scenes_recovers_exact_centres_and_shapes(test_split):
    read = read_scenes(test_split.images[:300])  # the headline test above reads all 1,000 through the judge
    assert read.shape == (300, 6, 3) and read.dtype == torch.float32
    assert torch.equal(read, test_split.truth[:300].float())


def test_uint8_and_float_inputs_agree(test_split):
    images = test_split.images[:50]
    assert torch.equal(read_scenes(images), read_scenes(images.float() / 255.0))
    assert torch.equal(read_scenes(images[0]), read_scenes(images[:1]))  # one (3,H,W) image reads as a batch of one


def test_touching_objects_are_read_apart():
    side = 2 * R + 1  # centres exactly one object width apart: the boxes share an edge
    table = scene(("square", 20, 20), ("square", 20 + side, 20), ("circle", 20, 20 + side),
                  ("circle", 20 + side, 20 + side), ("square", 50, 50), ("circle", 50, 50 - side))
    image = soc.render(table[None])
    assert torch.equal(read_scenes(image)[0], table.float())
    judge = SceneJudge()
    assert judge.answer_split(image, soc.all_questions(), torch.zeros(36, dtype=torch.long)) == [
        soc.answer(q, table) for q in soc.all_questions()]


@pytest.mark.parametrize("x, expected", [(31, "left"), (32, "right")])
def test_object_on_the_centre_line(x, expected):
    table = scene(("circle", x, 10), ("square", 5, 40), ("square", 58, 40),
                  ("circle", 10, 58), ("square", 50, 58), ("circle", 58, 5))
    image = soc.render(table[None])
    question = "is the red object on the left or the right?"
    assert SceneJudge().answer_batch(image, [question]) == [expected]
    assert read_scenes(image)[0, 0, 1] == x


def test_missing_colour_falls_back(test_split):
    images = test_split.images[:4].clone()
    masks = object_masks(images)
    images.permute(0, 2, 3, 1)[masks[:, 0]] = torch.tensor(soc.BACKGROUND, dtype=torch.uint8)  # paint red out
    read = read_scenes(images)
    fallback = torch.tensor([js.FALLBACK_SHAPE, js.FALLBACK_CENTRE, js.FALLBACK_CENTRE])
    assert torch.equal(read[:, 0], fallback.expand(4, 3))
    assert torch.equal(read[:, 1:], test_split.truth[:4, 1:].float())  # the others are untouched
    answers = SceneJudge().answer_split(images, test_split.questions[: 4 * 36], test_split.question_image[: 4 * 36])
    assert len(answers) == 4 * 36 and set(answers) <= set(soc.ANSWERS)
    assert soc.answer("what is the shape of the red object?", read[0]) == "circle"


def test_an_empty_image_still_answers_everything():
    white = torch.full((1, 3, 64, 64), 255, dtype=torch.uint8)
    answers = SceneJudge().answer_split(white, soc.all_questions(), torch.zeros(36, dtype=torch.long))
    assert set(answers) <= set(soc.ANSWERS) and len(answers) == 36


def test_noisy_images_still_read(test_split):
    generator = torch.Generator().manual_seed(0)
    clean = test_split.images[:200].float() / 255.0
    noisy = (clean + 0.05 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)  # (200,3,64,64)
    read, truth = read_scenes(noisy), test_split.truth[:200].float()
    assert torch.equal(read[..., 0], truth[..., 0])  # every shape
    assert torch.equal(read[..., 1:] < soc.CENTRE_LINE, truth[..., 1:] < soc.CENTRE_LINE)  # every half-plane
    assert float((read[..., 1:] - truth[..., 1:]).abs().max()) < 0.5


def test_larger_images_read_on_the_64_grid(test_split):
    images = test_split.images[:20]
    doubled = F.interpolate(images.float(), scale_factor=2, mode="nearest").to(torch.uint8)  # (20,3,128,128)
    assert torch.equal(read_scenes(doubled), test_split.truth[:20].float())


def test_object_masks_are_the_painted_objects(test_split):
    images = test_split.images[:30]
    masks = object_masks(images)
    assert masks.shape == (30, 6, 64, 64) and masks.dtype == torch.bool
    assert torch.equal(masks, SceneJudge().object_masks(images))
    truth = test_split.truth[:30]
    for k, colour in enumerate(soc.COLORS):
        painted = (images.permute(0, 2, 3, 1) == torch.tensor(soc.PALETTE[colour], dtype=torch.uint8)).all(dim=-1)
        assert torch.equal(masks[:, k], painted)
        stamp_sizes = torch.from_numpy(soc.stamps().sum(axis=(1, 2)))
        assert torch.equal(masks[:, k].sum(dim=(1, 2)), stamp_sizes[truth[:, k, 0]])


def test_largest_blob_matches_the_easyvqa_reader():
    generator = torch.Generator().manual_seed(1)
    masks = torch.rand(16, 16, 16, generator=generator) < 0.45  # many blobs of many sizes
    ours, theirs = largest_blobs(masks), _largest_component(masks)
    assert torch.equal(ours.sum(dim=(1, 2)), theirs.sum(dim=(1, 2)))
    assert not (ours & ~masks).any()


def test_largest_blob_ties_and_empty_masks():
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[0, 0, 0] = masks[0, 5, 5] = True  # two blobs of one pixel: the first in raster order stays
    masks[1, 2:4, 2:4] = True
    masks[1, 6, 6] = masks[1, 7, 7] = True  # diagonal neighbours are one blob (8-connected), but smaller
    kept = largest_blobs(masks)
    assert kept[0].nonzero().tolist() == [[0, 0]]
    assert torch.equal(kept[1], masks[1] & (torch.arange(8)[:, None] < 4))
    assert not kept[2].any()
    diagonal = torch.eye(6, dtype=torch.bool)[None]
    assert torch.equal(largest_blobs(diagonal), diagonal)


def test_stray_specks_are_ignored(test_split):
    images = test_split.images[:1].clone()
    red = torch.tensor(soc.PALETTE["red"], dtype=torch.uint8)
    images[0, :, 0, 0] = red
    images[0, :, 63, 63] = red  # two one-pixel specks of the red object's colour
    assert torch.equal(read_scenes(images), test_split.truth[:1].float())


def test_answer_batch_one_question_per_image(test_split):
    rows = test_split.question_image[:72:5]
    questions = test_split.questions[:72:5]
    assert SceneJudge().answer_batch(test_split.images[rows], questions) == test_split.answers[:72:5]
    with pytest.raises(ValueError):
        SceneJudge().answer_batch(test_split.images[:2], ["what is the shape of the red object?"])


# ---------------------------------------------------------------- lossy pictures: read what a person reads, no more

FALLBACK = torch.tensor([js.FALLBACK_SHAPE, js.FALLBACK_CENTRE, js.FALLBACK_CENTRE])


def painted(split, n: int) -> torch.Tensor:
    """(n,6,H,W) bool: each colour's painted pixels in the first n originals."""
    pixels = split.images[:n].permute(0, 2, 3, 1)
    return torch.stack([(pixels == torch.tensor(soc.PALETTE[c], dtype=torch.uint8)).all(dim=-1) for c in soc.COLORS], 1)


def repainted(split, n: int, k: int, rgb) -> torch.Tensor:
    """The first n originals as floats, colour k's object painted in `rgb` (0..1)."""
    images = split.images[:n].float().div(255).permute(0, 2, 3, 1).clone()
    images[painted(split, n)[:, k]] = torch.tensor(rgb, dtype=torch.float32)
    return images.permute(0, 3, 1, 2)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B,3,H,W) float -> the same, blurred by a separable Gaussian; outside the picture is white."""
    r = int(3 * sigma + 0.5)
    taps = torch.exp(-torch.arange(-r, r + 1).float() ** 2 / (2 * sigma**2))
    taps = taps / taps.sum()
    x = F.pad(images, (r, r, r, r), value=1.0)
    x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(x, taps.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)


@pytest.fixture(scope="module")
def webp_q20(test_split):
    """WebP quality 20 decodes of the first 100 test originals (about 2,450 bits an image): (100,3,64,64) uint8."""
    pytest.importorskip("imagecodecs")
    import numpy as np

    from vqagan_lib.evaluation.baselines import classical_codecs, to_hwc_uint8

    codec = next(c for c in classical_codecs() if c.name == "WebP q20")
    decoded = np.stack([codec.decode(codec.encode(a)) for a in to_hwc_uint8(test_split.images[:100])])
    return torch.from_numpy(decoded).permute(0, 3, 1, 2).contiguous()


def test_webp_q20_decodes_read_like_their_originals(test_split, webp_q20):
    """Every object of these decodes is plainly in its colour and shape to a person, so the judge must read them.

    The bar comes from the val split (200 images, never the test): there the judge scores 99.4% overall and
    97.5% on counts, its lowest type, misreading 5 of 1,200 shapes (yellow discs whose bled chroma squares
    them off). One misread shape costs about 9 of its image's 36 answers (its shape, all six counts, some
    closest/farthest), so 97% overall, every type at 90% or more, allows several times val's misreads on
    100 images while failing any reader that loses the shapes (the old palette-radius judge scored 72%).
    """
    n = len(webp_q20) * len(soc.QUESTION_TYPES) * len(soc.COLORS)
    predicted = SceneJudge().answer_split(webp_q20, test_split.questions[:n], test_split.question_image[:n])
    by_type = accuracy_by_type(predicted, test_split)
    overall = sum(p == a for p, a in zip(predicted, test_split.answers)) / n
    print(f"judge accuracy on WebP q20 decodes: {overall:.2%}", by_type)
    assert overall >= 0.97
    assert min(by_type.values()) >= 0.90
    assert by_type["horizontal"] >= 0.99 and by_type["vertical"] >= 0.99  # positions survive far better than shapes


def test_a_blank_picture_reads_no_object():
    white = torch.ones(3, 3, 64, 64)
    assert torch.equal(read_scenes(white), FALLBACK.expand(3, 6, 3))
    assert not object_masks(white).any()
    assert (js.colour_labels(white) == js.BACKGROUND_LABEL).all()


@pytest.mark.parametrize("k", range(5))  # every colour but gray itself
def test_a_colour_pulled_most_of_the_way_to_gray_is_not_read(test_split, k):
    colour = torch.tensor(soc.PALETTE[soc.COLORS[k]]) / 255.0
    gray = torch.tensor(soc.PALETTE["gray"]) / 255.0
    images = repainted(test_split, 50, k, (0.2 * colour + 0.8 * gray).tolist())
    read = read_scenes(images)
    assert torch.equal(read[:, k], FALLBACK.expand(50, 3))  # no object of colour k anywhere
    others = [j for j in range(6) if j not in (k, soc.COLORS.index("gray"))]  # gray now has a rival blob
    assert torch.equal(read[:, others], test_split.truth[:50, others].float())


@pytest.mark.parametrize("strength, seen", [(0.45, False), (0.55, True)])
def test_an_object_faded_into_white_is_read_while_more_colour_than_white(test_split, strength, seen):
    red = torch.tensor(soc.PALETTE["red"]) / 255.0
    images = repainted(test_split, 50, 0, ((1 - strength) * torch.ones(3) + strength * red).tolist())
    read = read_scenes(images)
    if seen:  # weights of 0.55 put the centres a rounding error from the integers
        assert torch.allclose(read, test_split.truth[:50].float(), atol=1e-3)
    else:
        assert torch.equal(read[:, 0], FALLBACK.expand(50, 3))


@pytest.mark.parametrize("k, rgb, seen", [
    (0, (1.0, 0.0, 1.0), False),  # magenta where red was: half red, half blue, neither
    (1, (0.0, 1.0, 1.0), False),  # cyan where green was
    (2, (0.0, 0.0, 0.43), True),  # navy is still blue
    (0, (0.47, 0.0, 0.0), True),  # maroon is still red
])
def test_hues_off_the_palette_and_darkened_colours(test_split, k, rgb, seen):
    read = read_scenes(repainted(test_split, 30, k, rgb))
    expected = test_split.truth[:30, k].float() if seen else FALLBACK.expand(30, 3)
    assert torch.equal(read[:, k], expected)


def test_a_blur_wider_than_the_objects_reads_no_shapes(test_split):
    originals = test_split.images[:100].float() / 255.0
    blurred = F.avg_pool2d(F.pad(originals, (4, 4, 4, 4), value=1.0), 9, stride=1)  # a 9x9 box: as wide as an object
    read, truth = read_scenes(blurred), test_split.truth[:100].float()
    right = read[..., 0] == truth[..., 0]
    assert float(right.float().mean()) < 0.7  # about chance: both shapes smear into the box's own
    assert float(right.all(dim=1).float().mean()) < 0.1  # hardly an image keeps its six shapes
    # what a blur keeps, the reading keeps: each blob still sits where its object was
    assert float((read[..., 1:] - truth[..., 1:]).abs().max()) < 1.0


def test_soft_tinted_reconstructions_still_read(test_split):
    """What a blurry decoder draws: soft edges, a slight tint, faint ghosts elsewhere."""
    originals = test_split.images[:100].float() / 255.0
    soft = gaussian_blur(originals, 1.0)
    tinted = (soft * torch.tensor([0.92, 1.0, 0.95])[:, None, None] + 0.03).clamp(0, 1)
    ghost = 1 - 0.4 * (1 - torch.roll(originals, shifts=(20, 20), dims=(2, 3)))  # every object again, at 40%
    haunted = torch.minimum(tinted, ghost)
    truth = test_split.truth[:100].float()
    for images in (soft, tinted):
        read = read_scenes(images)
        assert torch.equal(read[..., 0], truth[..., 0])
        assert float((read[..., 1:] - truth[..., 1:]).abs().max()) < 0.5
    read = read_scenes(haunted)
    assert float((read[..., 0] == truth[..., 0]).float().mean()) > 0.98
    assert float(((read[..., 1:] - truth[..., 1:]).abs() < 1).all(dim=-1).float().mean()) > 0.97
