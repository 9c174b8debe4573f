import pytest
import torch

from vqagan_lib.data.easyvqa import build_vocabulary, load_split
from vqagan_lib.data.split import encode_questions
from vqagan_lib.answerers.judge_rules import question_kind
from vqagan_lib.answerers.judge_scenes import SceneJudge
from vqagan_lib.answerers.judge_vilt import (JudgeConfig, ObjectStage, build_judge, keep_objects, load_judge, object_stages,
                                             pick_questions, question_pools, save_judge, sincos_positions, stage_at,
                                             train_judge)
from vqagan_lib.data import sort_of_clevr as soc
from vqagan_lib.data.registry import DataChoice, get_dataset
from vqagan_lib.errors import VQAGanError
from vqagan_lib.answerers.critic import freeze
from vqagan_lib.answerers.vqa_eval import evaluate

TINY = JudgeConfig(hidden=16, layers=1, heads=2, patch_size=16)


@pytest.fixture(scope="module")
def vocab():
    return build_vocabulary()


def test_tiny_judge_forward_and_round_trip(vocab, tmp_path):
    torch.manual_seed(0)
    model = freeze(build_judge(TINY, vocab))
    x = torch.rand(2, 3, 64, 64)
    q = torch.stack([vocab.encode("what color is the shape?"), vocab.encode("is there not a red circle?")])
    logits = model(x, q)
    assert logits.shape == (2, 13)
    save_judge(model, tmp_path / "j", {"name": "j"}, TINY)
    loaded = load_judge(str(tmp_path / "j"))
    assert loaded.card["vilt_config"]["hidden_size"] == 16
    assert loaded.vilt.config.id2label[0] == vocab.answers[0]
    assert torch.allclose(loaded(x, q), logits, atol=1e-5)
    assert not any(p.requires_grad for p in loaded.parameters())


def test_padding_is_masked(vocab):
    torch.manual_seed(0)
    model = freeze(build_judge(TINY, vocab))
    q = vocab.encode("what shape is present?")[None]  # (1,L) with trailing padding
    x = torch.rand(1, 3, 64, 64)
    longer = torch.cat([q, torch.zeros(1, 3, dtype=torch.long)], dim=1)  # more padding must change nothing
    assert torch.allclose(model(x, q), model(x, longer), atol=1e-5)


def test_question_curriculum_draws_the_asked_kinds(vocab):
    split = load_split("train", limit_images=50)
    pools = question_pools(split.types, encode_questions(split, vocab)[2])
    rows = [r for r in range(50) if pools["shape"][r]] * 4  # (images without one fall back to any question)
    gen = torch.Generator().manual_seed(0)

    def kinds(**schedule):
        chosen = pick_questions(rows, pools, gen, **schedule).tolist()
        assert all(split.question_image[j] == r for j, r in zip(chosen, rows))  # each image's own question
        return {question_kind(split.questions[j]) for j in chosen}

    assert kinds(shapes_only=True) == {"shape"}
    assert kinds(open_fraction=1.0) == {"shape", "colour"}
    assert kinds() == {"shape", "colour", "yes/no"}


def test_shipped_judge_accuracy_on_test_slice():
    judge = load_judge("judge-vilt-easyvqa")
    split = load_split("test", limit_images=60)
    accuracy = evaluate(split.images, split, {"judge": judge})["judge"]
    # Tied to the card, so a retrained judge is held to its own measured accuracy; never below
    # 72% (the first shipped judge read colours but not shapes: 78.7%, above the 67% zero-bit floor).
    assert accuracy >= max(0.72, judge.card["metrics"]["test_accuracy"] - 0.05)
    assert judge.card["kind"] == "judge-vilt" and judge.card["metrics"]["test_per_type"]["colour"] >= 0.98


def test_object_stages_are_parsed_and_checked():
    data = get_dataset("sort-of-clevr")
    stages = object_stages("1:shape:5,3:non-relational+shape:7", data)
    assert stages == [ObjectStage(1, frozenset({"shape"}), 5), ObjectStage(3, frozenset(soc.SINGLE_OBJECT_TYPES), 7)]
    assert [stage_at(stages, s) for s in (0, 4, 5, 11, 12)] == [stages[0], stages[0], stages[1], stages[1], None]
    assert object_stages("", get_dataset("easyvqa")) == []
    assert object_stages("2:relational:5", data) == [ObjectStage(2, frozenset(soc.QUESTION_GROUPS["relational"]), 5)]
    for spec, said in (("1:closest:10", "two for closest"), ("1:relational:10", "two for closest, count, farthest"),
                       ("0:shape:10", "one object"), ("2:colour:10", "unknown: colour"),
                       ("2:shape", "OBJECTS:TYPES:STEPS"), ("two:shape:10", "OBJECTS:TYPES:STEPS")):
        with pytest.raises(VQAGanError, match=said):
            object_stages(spec, data)
    with pytest.raises(VQAGanError, match="easyvqa cannot draw pictures with fewer objects"):
        object_stages("1:shape:10", get_dataset("easyvqa"))


def test_keep_objects_keeps_the_asked_one_and_so_many_others():
    asked = torch.tensor([0, 5, 2, 2, 3] * 20)
    gen = torch.Generator().manual_seed(0)
    for objects in (1, 3, 6):
        keep = keep_objects(asked, objects, 6, gen)
        assert keep[torch.arange(len(asked)), asked].all() and (keep.sum(dim=1) == objects).all()
    assert len({tuple(row) for row in keep_objects(asked, 3, 6, gen).tolist()}) > 5  # the others are random


def test_pictures_of_fewer_objects_read_as_their_answers_say():
    """What the stages rely on: the rule judge, reading a picture of some objects, finds each kept object
    where the scene has it, so the dataset's answers for that picture (present=keep) are the picture's."""
    split = soc.load_split("test", limit_images=30)
    asked = torch.tensor([soc.asked_object(q) for q in split.questions])
    keep = keep_objects(asked, 3, 6, torch.Generator().manual_seed(1))  # (N_q,6): one picture per question
    scenes = split.truth[split.question_image]
    read = SceneJudge().read_scenes(soc.render(scenes, keep))  # (N_q,6,3)
    assert torch.equal(read[keep].long(), scenes[keep])
    said = [soc.answer(q, t, p) for q, t, p in zip(split.questions, read.tolist(), keep.tolist())]
    assert said == [soc.answer(q, t, p) for q, t, p in zip(split.questions, scenes.tolist(), keep.tolist())]
    changed = [a != b for a, b in zip(said, split.answers)]
    solo = [t in soc.SINGLE_OBJECT_TYPES for t in split.types]
    assert not any(c and s for c, s in zip(changed, solo)) and sum(changed) > 0.1 * len(changed)  # relations change


def test_scene_judge_trains_a_few_steps_through_its_stages():
    cfg = JudgeConfig(data=DataChoice("sort-of-clevr"), hidden=16, layers=1, heads=2, patch_size=16, init_std=0.09,
                      shape_steps=0, open_fraction=0.0, object_stages="1:shape:2,2:non-relational:2,3:relational:2",
                      limit_images=16, max_steps=8, batch_size=8)
    lines = []
    model, metrics = train_judge(cfg, log_every=1, log=lines.append)
    assert metrics["steps"] == 8 and len(lines) == 8 and all("nan" not in line for line in lines)
    assert model.vilt.config.initializer_range == 0.09 and not any(p.requires_grad for p in model.parameters())


def test_sincos_positions_tell_every_patch_apart_and_start_the_judge():
    table = sincos_positions(4, 32)
    assert table.shape == (16, 32) and table.abs().max() <= 1.0
    assert torch.cdist(table, table).add(torch.eye(16) * 9).min() > 0.5  # no two patches close
    cfg = JudgeConfig(data=DataChoice("sort-of-clevr"), hidden=32, layers=1, heads=2, patch_size=16, sincos_positions=True)
    model = build_judge(cfg, get_dataset("sort-of-clevr").build_vocabulary())
    assert torch.equal(model.vilt.vilt.embeddings.position_embeddings[0, 1:].detach(), table)
