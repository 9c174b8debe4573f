import pytest
import torch

from vqagan_lib.data.registry import get_dataset
from vqagan_lib.errors import VQAGanError
from vqagan_lib.training.batches import DataConfig, TrainData

SCENES = get_dataset("sort-of-clevr")


def _data(**overrides) -> TrainData:
    cfg = DataConfig(name="sort-of-clevr", limit_images=4, **overrides)
    return TrainData(cfg, SCENES.IMAGE_SIZE, vocab=SCENES.build_vocabulary())


def test_question_types_keep_only_those_families_and_their_answers():
    every, few = _data(), _data(question_types=SCENES.QUESTION_GROUPS["non-relational"])
    split = SCENES.load_split("train", limit_images=4)
    kept = [i for i, t in enumerate(split.types) if t in SCENES.QUESTION_GROUPS["non-relational"]]
    assert 0 < len(few) == len(kept) < len(every)
    assert torch.equal(few.question_image, every.question_image[kept])
    assert torch.equal(few.questions, every.questions[kept]) and torch.equal(few.answers, every.answers[kept])


def test_an_unknown_question_family_is_one_clear_error():
    with pytest.raises(VQAGanError, match="data.question_types: sort-of-clevr has no question family 'colour'"):
        _data(question_types=("shape", "colour"))


def test_coco_refuses_question_families_in_one_line(tmp_path):
    cfg = DataConfig(name="coco", coco_root=str(tmp_path), question_types=("shape",))
    with pytest.raises(VQAGanError, match="data.question_types: coco's questions have no families"):
        TrainData(cfg, 64, vocab=SCENES.build_vocabulary())
