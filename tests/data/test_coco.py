import pytest
import torch

from vqagan_lib.data.coco import CocoVQADataset, answer_vocabulary
from vqagan_lib.errors import VQAGanError


def test_loads_the_fixture_with_top_k_answers(coco_fixture):
    ds = CocoVQADataset(coco_fixture, image_size=32, top_k=3)
    # 'yes' (2x) then alphabetical ties: '2', 'black'
    assert ds.vocab.answers == ["yes", "2", "black"]
    assert len(ds) == 4  # questions answered 'no' or 'red' fall outside the top 3
    image, question, answer, image_id = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert question.dtype == torch.long and image_id in (42, 73, 139)
    assert ds.vocab.answers[int(answer)] == ds.answers[0]


def test_val_uses_the_training_vocabulary(coco_fixture):
    train = CocoVQADataset(coco_fixture, top_k=10)
    again = CocoVQADataset(coco_fixture, vocab=train.vocab, image_size=16)
    assert again.vocab is train.vocab and len(again) == 6


def test_answer_vocabulary_is_stable():
    anns = [{"multiple_choice_answer": a} for a in "b a b c a b".split()]
    assert answer_vocabulary(anns, 2) == ["b", "a"]


@pytest.mark.parametrize("missing", ["images/val2014", "annotations/instances_val2014.json",
                                     "vqa/v2_OpenEnded_mscoco_val2014_questions.json",
                                     "vqa/v2_mscoco_val2014_annotations.json"])
def test_missing_piece_names_the_file_and_what_to_download(coco_fixture, missing):
    import shutil

    path = coco_fixture / missing
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    with pytest.raises(VQAGanError, match="missing; download") as err:
        CocoVQADataset(coco_fixture)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_image_file_is_a_clear_error(coco_fixture):
    ds = CocoVQADataset(coco_fixture)
    for f in (coco_fixture / "images" / "val2014").iterdir():
        f.unlink()
    with pytest.raises(VQAGanError, match="is missing"):
        ds[0]
