import pytest
import torch

from vqagan_lib.data.easyvqa import build_vocabulary, load_split
from vqagan_lib.data.split import encode_questions
from vqagan_lib.answerers.judge_rules import question_kind
from vqagan_lib.answerers.judge_vilt import JudgeConfig, build_judge, load_judge, pick_questions, question_pools, save_judge
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
