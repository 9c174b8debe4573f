import pytest

from vqagan_lib.data.easyvqa import load_split
from vqagan_lib.answerers.judge_rules import RuleJudge, answer, question_kind


@pytest.mark.parametrize(
    "question, expected",
    [
        ("what color is the shape?", "teal"),
        ("what is the color of the triangle?", "teal"),
        ("what shape does the image contain?", "triangle"),
        ("what is the teal shape?", "triangle"),
        ("is there a teal shape?", "yes"),
        ("is there a red shape in the image?", "no"),
        ("is there not a teal shape?", "no"),
        ("is no red shape present?", "yes"),
        ("does the image not contain a circle?", "yes"),
        ("does the image contain a triangle?", "yes"),
        ("is a circle present?", "no"),
        ("is there not a triangle in the image?", "no"),
    ],
)
def test_templates(question, expected):
    assert answer(question, "triangle", "teal") == expected


def test_question_kind():
    assert question_kind("What is the color of the circle?") == "colour"
    assert question_kind("what shape is present?") == "shape"
    assert question_kind("is no gray shape present?") == "yes/no"


def test_nothing_found_means_absent():
    assert answer("is there a red shape?", None, None) == "no"
    assert answer("is there not a circle?", None, None) == "yes"


def test_accuracy_on_test_slice():
    split = load_split("test", limit_images=150)
    predicted = RuleJudge().answer_split(split.images, split.questions, split.question_image)
    accuracy = sum(p == a for p, a in zip(predicted, split.answers)) / len(split)
    assert accuracy >= 0.995


def test_answer_batch_one_question_per_image():
    split = load_split("test", limit_images=20)
    rows = split.question_image[:30]
    got = RuleJudge().answer_batch(split.images[rows], split.questions[:30])
    assert got == split.answers[:30]
    with pytest.raises(ValueError):
        RuleJudge().answer_batch(split.images[:2], ["what shape is present?"])
