import math
import time

import numpy as np
import pytest
import torch

from vqagan_lib.data import sort_of_clevr as soc
from vqagan_lib.data.registry import get_dataset
from vqagan_lib.data.split import VQASplit

R = soc.OBJECT_RADIUS


def scene(*rows) -> torch.Tensor:
    """A hand-built (6,3) table from (shape name, cx, cy) rows in COLORS order."""
    return torch.tensor([(soc.SHAPES.index(s), x, y) for s, x, y in rows], dtype=torch.long)


# red square top-left, green disc top-right, blue square bottom-left, orange disc bottom-right,
# yellow square near red, gray disc far from everything at the bottom.
HAND = scene(("square", 10, 10), ("circle", 50, 10), ("square", 10, 50),
             ("circle", 50, 50), ("square", 22, 12), ("circle", 31, 60))


@pytest.fixture(scope="module")
def test_split() -> VQASplit:
    return soc.load_split("test")


def test_registered_with_every_required_name():
    module = get_dataset("sort-of-clevr")
    assert module is soc and soc.NAME == "sort-of-clevr" and soc.IMAGE_SIZE == 64
    assert soc.QUESTION_GROUPS["non-relational"] + soc.QUESTION_GROUPS["relational"] == soc.QUESTION_TYPES


def test_generation_is_deterministic():
    a, b = soc.generate_scenes(40, seed=123), soc.generate_scenes(40, seed=123)
    assert torch.equal(a, b) and a.dtype == torch.int64 and a.shape == (40, 6, 3)
    assert soc.render(a).numpy().tobytes() == soc.render(b).numpy().tobytes()
    assert not torch.equal(a, soc.generate_scenes(40, seed=124))


def test_limit_images_is_a_prefix_of_the_full_split(test_split):
    part = soc.load_split("test", limit_images=25)
    per_image = len(soc.all_questions())
    assert torch.equal(part.images, test_split.images[:25])
    assert torch.equal(part.truth, test_split.truth[:25])
    assert part.questions == test_split.questions[: 25 * per_image]
    assert part.answers == test_split.answers[: 25 * per_image]
    assert part.image_ids == list(range(25))


def test_splits_are_different_streams(test_split):
    val = soc.load_split("val")
    train = soc.load_split("train", limit_images=500)
    keys = [{t.numpy().tobytes() for t in s.truth} for s in (train, val, test_split)]
    assert len(keys[1]) == 200 and len(keys[2]) == 1000  # no scene repeats within a split either
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])


def test_split_sizes_and_question_layout(test_split):
    assert len(soc.load_split("val").images) == 200
    assert len(test_split.images) == 1000 and len(test_split) == 36 * 1000
    assert test_split.dataset == "sort-of-clevr" and test_split.images.dtype == torch.uint8
    assert test_split.images.shape == (1000, 3, 64, 64)
    assert torch.equal(test_split.question_image, torch.arange(1000).repeat_interleave(36))
    expected = sorted(f"{t}/{c}" for c in soc.COLORS for t in soc.QUESTION_TYPES)
    for row in (0, 517, 999):
        asked = [test_split.questions[j] for j in range(36 * row, 36 * row + 36)]
        assert sorted(f"{soc.question_type(q)}/{soc.parse(q)[1]}" for q in asked) == expected
    assert test_split.types == [soc.question_type(q) for q in test_split.questions]
    assert set(test_split.answers) <= set(soc.ANSWERS)


def test_full_train_split(test_split):
    train = soc.load_split("train")
    assert len(train.images) >= 9_800 and len(train) == 36 * len(train.images)
    seen = {t.numpy().tobytes() for t in train.truth}
    assert len(seen) == len(train.images)
    assert not seen & {t.numpy().tobytes() for t in test_split.truth}
    assert not seen & {t.numpy().tobytes() for t in soc.load_split("val").truth}


def test_an_empty_prefix_and_the_cache_stay_apart(test_split):
    empty = soc.load_split("val", limit_images=0)
    assert len(empty) == 0 and empty.images.shape == (0, 3, 64, 64)
    again = soc.load_split("test")
    again.questions.append("what is the shape of the red object?")
    assert len(soc.load_split("test").questions) == 36_000  # a caller's list edits never reach the cache


def test_unknown_split_names_the_choices():
    with pytest.raises(ValueError, match="train.*val.*test"):
        soc.load_split("dev")


def test_objects_inside_apart_and_unambiguous(test_split):
    table = test_split.truth  # (N,6,3)
    centres = table[:, :, 1:]
    assert int(centres.min()) >= R and int(centres.max()) <= 63 - R
    gap = (centres[:, :, None] - centres[:, None]).abs().amax(dim=-1)  # (N,6,6) Chebyshev
    gap = gap + torch.eye(6, dtype=torch.long) * 100
    assert int(gap.min()) >= 2 * R + 2  # a 1-pixel gap between every two 9x9 boxes
    d = torch.cdist(centres.double(), centres.double())  # (N,6,6)
    off = ~torch.eye(6, dtype=torch.bool)
    near = d[:, off].view(-1, 6, 5).sort(dim=-1).values
    assert float((near[..., 1] - near[..., 0]).min()) >= 1.0
    assert float((near[..., -1] - near[..., -2]).min()) >= 1.0


def test_rendered_objects_are_whole_and_centred(test_split):
    images = test_split.images[:200].permute(0, 2, 3, 1)  # (N,H,W,3)
    sizes = soc.stamps().sum(axis=(1, 2))  # square, disc
    for k, colour in enumerate(soc.COLORS):
        mask = (images == torch.tensor(soc.PALETTE[colour], dtype=torch.uint8)).all(dim=-1)  # (N,H,W)
        truth = test_split.truth[:200, k]
        assert torch.equal(mask.sum(dim=(1, 2)), torch.from_numpy(sizes)[truth[:, 0]])  # nothing painted over
        ys, xs = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
        area = mask.sum(dim=(1, 2)).double()
        assert torch.equal((mask * xs).sum(dim=(1, 2)) / area, truth[:, 1].double())  # centroid == centre exactly
        assert torch.equal((mask * ys).sum(dim=(1, 2)) / area, truth[:, 2].double())


def test_disc_and_square_fill_apart():
    square, disc = soc.stamps()
    assert square.all() and square.shape == (2 * R + 1, 2 * R + 1)
    assert disc[R].all() and disc[:, R].all()  # as wide as the square
    assert 0.7 < disc.mean() < 0.9


@pytest.mark.parametrize(
    "template, colour, expected",
    [
        ("shape", "red", "square"), ("shape", "green", "circle"),
        ("horizontal", "red", "left"), ("horizontal", "green", "right"),
        ("vertical", "red", "top"), ("vertical", "blue", "bottom"),
        ("closest", "red", "square"),  # yellow, 12 px away
        ("closest", "green", "square"),  # yellow (28.1) before orange and red (40)
        ("closest", "gray", "circle"),  # orange (21.5) before blue (23.3)
        ("farthest", "red", "circle"),  # orange, the opposite corner
        ("farthest", "blue", "circle"),  # green
        ("count", "red", "3"), ("count", "gray", "3"),
    ],
)
def test_answers_on_a_hand_built_scene(template, colour, expected):
    question = soc.TEMPLATES[template].format(color=colour)
    assert soc.answer(question, HAND) == expected


def test_count_includes_the_object_itself():
    all_squares = scene(*[("square", 6 + 10 * k, 6) for k in range(6)])
    one_disc = scene(("circle", 6, 6), *[("square", 16 + 10 * k, 6) for k in range(5)])
    assert soc.answer("how many objects have the same shape as the blue object?", all_squares) == "6"
    assert soc.answer("how many objects have the same shape as the red object?", one_disc) == "1"
    assert soc.answer("how many objects have the same shape as the green object?", one_disc) == "5"


def test_relations_range_over_the_objects_in_the_picture():
    """`present` answers a picture of some objects, as render(keep=) draws it."""
    red_blue_gray = [True, False, True, False, False, True]
    ask = {t: soc.TEMPLATES[t].format(color="red") for t in soc.QUESTION_TYPES}
    assert [soc.answer(ask[t], HAND) for t in ("closest", "farthest", "count")] == ["square", "circle", "3"]
    # yellow (closest) and orange (farthest) gone: blue is closest (40 px), gray farthest (54.1); one square fewer
    assert [soc.answer(ask[t], HAND, present=red_blue_gray) for t in ("closest", "farthest", "count")] == ["square", "circle", "2"]
    no_orange = [colour != "orange" for colour in soc.COLORS]
    gray_closest = soc.TEMPLATES["closest"].format(color="gray")
    assert soc.answer(gray_closest, HAND) == "circle" and soc.answer(gray_closest, HAND, present=no_orange) == "square"  # blue, 23.3
    assert [soc.answer(ask[t], HAND, present=red_blue_gray) for t in soc.SINGLE_OBJECT_TYPES] == \
        [soc.answer(ask[t], HAND) for t in soc.SINGLE_OBJECT_TYPES]
    with pytest.raises(ValueError, match="red object is not in the picture"):
        soc.answer(ask["shape"], HAND, present=[False] + [True] * 5)
    with pytest.raises(ValueError, match="no other object"):
        soc.answer(ask["closest"], HAND, present=[True] + [False] * 5)
    assert soc.answer(ask["count"], HAND, present=[True] + [False] * 5) == "1"


def test_centre_line_is_between_pixels_31_and_32():
    at = HAND.clone()
    at[0, 1:] = torch.tensor([31, 31])
    assert soc.answer("is the red object on the left or the right?", at) == "left"
    assert soc.answer("is the red object at the top or the bottom?", at) == "top"
    at[0, 1:] = torch.tensor([32, 32])
    assert soc.answer("is the red object on the left or the right?", at) == "right"
    assert soc.answer("is the red object at the top or the bottom?", at) == "bottom"


def test_ties_go_to_the_first_colour():
    tied = scene(("square", 30, 30), ("circle", 40, 30), ("square", 20, 30),
                 ("square", 30, 50), ("square", 30, 10), ("square", 55, 55))
    # green and blue are both 10 from red: green comes first in COLORS
    assert soc.answer("what is the shape of the object closest to the red object?", tied) == "circle"
    # orange and yellow are both 20 from red, gray is 35.4: gray is farthest either way
    assert soc.answer("what is the shape of the object farthest from the red object?", tied) == "square"


def test_answer_takes_lists_and_float_tables():
    assert [soc.answer(q, HAND.tolist()) for q in soc.all_questions()] == [soc.answer(q, HAND) for q in soc.all_questions()]
    assert [soc.answer(q, HAND.double()) for q in soc.all_questions()] == [soc.answer(q, HAND) for q in soc.all_questions()]


def test_question_type_on_every_template():
    for family, text in soc.TEMPLATES.items():
        for colour in soc.COLORS:
            assert soc.question_type(text.format(color=colour)) == family
            assert soc.question_type(text.format(color=colour).upper()) == family  # words, not characters
    assert [soc.question_type(q) for q in soc.all_questions()[:6]] == list(soc.QUESTION_TYPES)  # colour-major


@pytest.mark.parametrize("question", [
    "what is the shape of the purple object?",
    "what color is the red object?",
    "is the red object left of the green object?",
    "what is the shape of the object closest to the red green object?",
    "",
])
def test_unknown_questions_raise(question):
    with pytest.raises(ValueError):
        soc.question_type(question)


def test_vocabulary_covers_every_question_and_answer():
    vocab = soc.build_vocabulary()
    assert vocab.answers == list(soc.ANSWERS) and len(vocab.answers) == 12
    assert set(soc.load_split("train", limit_images=3).questions) == set(soc.all_questions())
    for question in soc.all_questions():
        assert vocab.unknown_words(question) == []
    assert vocab.max_len == max(len(q.rstrip("?").split()) for q in soc.all_questions())


def test_information_estimate_parts():
    parts = soc.information_estimate()
    assert parts["shapes"] == 6.0
    assert 10.0 < parts["half_planes_plugin"] <= parts["half_planes"] < 12.0
    # 12 questions, each under 1 bit, and the sampled plug-in value agrees with the exact one
    assert 0 < parts["relational"] < 12.0
    assert abs(parts["relational"] - parts["relational_plugin"]) < 0.1
    assert parts["counts"] == 0.0
    assert math.isclose(parts["total"], parts["shapes"] + parts["half_planes"] + parts["relational"])
    assert parts["lower_bound"] < parts["total"] < 6 + 12 + 12
    assert soc.information_bits() == parts["total"]


@pytest.mark.slow
def test_ten_thousand_images_in_a_few_seconds():
    start = time.perf_counter()
    images = soc.render(soc.generate_scenes(10_000, seed=7))
    assert images.shape == (10_000, 3, 64, 64)
    assert time.perf_counter() - start < 15.0


def test_valid_centres_rejects_touching_and_ties():
    good = np.array([[51, 39], [32, 19], [21, 6], [8, 4], [13, 49], [40, 55]])
    touching = good.copy()
    touching[1] = [42, 39]  # green's box shares an edge with red's: no 1-pixel gap
    spaced = good.copy()
    spaced[1] = [41, 39]  # one pixel apart is allowed
    tied = np.array([[30, 30], [40, 30], [20, 30], [30, 52], [5, 5], [58, 5]])  # green and blue both 10 from red
    assert soc.valid_centres(np.stack([good, touching, tied])).tolist() == [True, False, False]
    assert soc._apart(spaced[None])[0] and soc._apart(tied[None])[0]


def test_render_keep_draws_only_the_kept_objects(test_split):
    scenes = test_split.truth[:40]
    keep = torch.rand(40, len(soc.COLORS), generator=torch.Generator().manual_seed(0)) < 0.5
    full, partial = soc.render(scenes), soc.render(scenes, keep)
    assert torch.equal(soc.render(scenes, torch.ones_like(keep)), full)
    painted = (full != torch.tensor(soc.BACKGROUND, dtype=torch.uint8)[:, None, None]).any(dim=1)  # (n,S,S)
    for image in range(40):
        for k, colour in enumerate(soc.COLORS):
            shape, cx, cy = scenes[image, k].tolist()
            R = soc.OBJECT_RADIUS
            box = partial[image, :, cy - R : cy + R + 1, cx - R : cx + R + 1]
            stamp = torch.from_numpy(soc.stamps()[shape])
            expected = torch.tensor(soc.PALETTE[colour] if keep[image, k] else soc.BACKGROUND, dtype=torch.uint8)
            assert (box.permute(1, 2, 0)[stamp] == expected).all()
    assert torch.equal(partial[~painted[:, None].expand_as(partial)], full[~painted[:, None].expand_as(full)])


def test_asked_object_is_the_named_colours_row():
    for question in soc.all_questions():
        assert soc.COLORS[soc.asked_object(question)] in question.split()
    assert set(soc.SINGLE_OBJECT_TYPES) < set(soc.QUESTION_TYPES)
