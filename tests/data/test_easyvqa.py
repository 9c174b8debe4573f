import math

import torch

from vqagan_lib.data.easyvqa import (COLORS, SHAPES, ImageDataset, VQADataset, answer_list, build_vocabulary,
                                load_split, make_loader, split_image_ids)
from vqagan_lib.data.floor import QuestionOnlyBaseline


def test_split_sizes_match_the_published_dataset():
    train, val, test = (load_split(s) for s in ("train", "val", "test"))
    assert len(train.images) + len(val.images) == 4000
    assert len(val.images) == 400
    assert len(test.images) == 1000
    assert len(train) + len(val) == 38575
    assert len(test) == 9673


def test_validation_split_is_by_image_and_deterministic():
    train, val = load_split("train"), load_split("val")
    assert not set(train.image_ids) & set(val.image_ids)
    assert split_image_ids(list(range(100)), 0.1, seed=0) == split_image_ids(list(range(100)), 0.1, seed=0)
    assert split_image_ids(list(range(100)), 0.1, seed=0) != split_image_ids(list(range(100)), 0.1, seed=1)
    # every question points at an image of its own split
    assert int(val.question_image.max()) < len(val.images)


def test_dataset_item_shapes_and_dtypes():
    data = load_split("test", limit_images=5)
    vocab = build_vocabulary()
    image, question, answer, image_id = VQADataset(data, vocab)[0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert question.shape == (vocab.max_len,) and question.dtype == torch.long
    assert 0 <= int(answer) < 13
    assert image_id in data.image_ids
    assert ImageDataset(data)[0].shape == (3, 64, 64)


def test_loader_batches_are_seeded():
    data = load_split("val", limit_images=20)
    ds = VQADataset(data, build_vocabulary())
    first = next(iter(make_loader(ds, batch_size=8, shuffle=True, seed=3)))
    again = next(iter(make_loader(ds, batch_size=8, shuffle=True, seed=3)))
    assert first[0].shape == (8, 3, 64, 64)
    assert torch.equal(first[1], again[1])


def test_answers_are_shapes_colours_and_yes_no():
    assert sorted(answer_list()) == sorted(list(SHAPES) + list(COLORS) + ["yes", "no"])
    assert math.log2(len(SHAPES) * len(COLORS)) == pytest_approx(4.585)


def pytest_approx(x):
    import pytest

    return pytest.approx(x, abs=1e-3)


def test_zero_bit_floor_on_test_is_about_67_percent():
    train, test = load_split("train"), load_split("test")
    floor = QuestionOnlyBaseline(train.questions, train.answers)
    assert 0.66 < floor.accuracy(test.questions, test.answers) < 0.68
    # it never looks at images: shuffling them can't change it, and it beats the most common answer alone
    majority = max(set(test.answers), key=test.answers.count)
    assert floor.accuracy(test.questions, test.answers) > test.answers.count(majority) / len(test)
