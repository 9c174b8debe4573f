import pytest
import torch

from vqagan_lib.data.easyvqa import build_vocabulary, load_split
from vqagan_lib.answerers.judge_rules import RuleJudge
from vqagan_lib.answerers.vqa_eval import evaluate, format_results
from vqagan_lib.data.easyvqa import question_type


class AlwaysYes(torch.nn.Module):
    """A critic-shaped answerer that ignores the picture."""

    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab
        self.bias = torch.nn.Parameter(torch.zeros(len(vocab.answers)))
        self.bias.data[vocab.answer_index("yes")] = 1.0

    def forward(self, images, questions):
        return self.bias.expand(len(images), -1)


@pytest.fixture(scope="module")
def split():
    return load_split("test", limit_images=40)


def test_question_type():
    assert [question_type(a) for a in ("yes", "teal", "circle")] == ["yes/no", "colour", "shape"]


def test_originals_and_per_type(split):
    result = evaluate(split.images, split, {"judge_rules": RuleJudge(), "yes": AlwaysYes(build_vocabulary())}, return_predictions=True)
    assert result["judge_rules"] == 1.0
    yes_share = sum(a == "yes" for a in split.answers) / len(split)
    assert result["yes"] == pytest.approx(yes_share)
    assert result["per_type"]["yes"]["colour"] == 0.0 and result["per_type"]["yes"]["shape"] == 0.0
    assert len(result["predictions"]["yes"]) == len(split)
    assert "judge_rules" in format_results(result)


def test_uint8_and_float_agree(split):
    judge = {"judge_rules": RuleJudge()}
    assert evaluate(split.images, split, judge)["per_type"] == evaluate(split.images.float() / 255, split, judge)["per_type"]


def test_blank_reconstructions_score_low(split):
    blank = torch.full_like(split.images, 240)
    result = evaluate(blank, split, {"judge_rules": RuleJudge()})
    assert result["judge_rules"] < 0.75  # yes/no questions are half right by chance
    assert result["per_type"]["judge_rules"]["colour"] < 0.3  # a blank picture has no colour to read


def test_wrong_number_of_images(split):
    with pytest.raises(ValueError):
        evaluate(split.images[:3], split, {"judge_rules": RuleJudge()})
