"""Scoring reconstructions by asking questions about them: critic and judges side by side.

Every notebook and the benchmark call `evaluate(images, split)`: `images` holds one
(reconstructed or original) picture per image row of the split, and each answerer
answers all of the split's questions about those pictures. Accuracy is reported
overall and per question type (yes/no, colour, shape). The critic's number alone can be
gamed by a decoder trained against it; the two judges never entered any training loss.
Introduced in notebooks/04_vqa_critic.ipynb.
"""
import torch
import torch.nn as nn

from vqagan_lib.answerers.critic import load_critic
from vqagan_lib.answerers.judge_rules import RuleJudge
from vqagan_lib.answerers.judge_vilt import load_judge
from vqagan_lib.data.easyvqa import COLORS, SHAPES, VQASplit
from vqagan_lib.data.pixels import as_float

QUESTION_TYPES = ("yes/no", "colour", "shape")


def question_type(answer: str) -> str:
    """Type of a question, from its true answer (easy-VQA's three families)."""
    if answer in COLORS:
        return "colour"
    if answer in SHAPES:
        return "shape"
    return "yes/no"


@torch.no_grad()
def answer_with_model(model: nn.Module, images: torch.Tensor, split: VQASplit, batch_size: int = 512) -> list[str]:
    """A critic-like model (images, question ids) -> logits over model.vocab.answers; one answer per question."""
    vocab = model.vocab
    device = next(model.parameters()).device
    ids = torch.stack([vocab.encode(q) for q in split.questions]) if len(split) else torch.zeros(0, vocab.max_len, dtype=torch.long)
    out = []
    for start in range(0, len(split), batch_size):
        rows = split.question_image[start : start + batch_size]
        x = as_float(images[rows]).to(device)  # (b,3,H,W)
        logits = model(x, ids[start : start + batch_size].to(device))  # (b,A)
        out += [vocab.answers[i] for i in logits.argmax(dim=1).tolist()]
    return out


def answer(answerer, images: torch.Tensor, split: VQASplit) -> list[str]:
    """Answers of a RuleJudge (reads each image once) or of a critic-like model."""
    if hasattr(answerer, "answer_split"):
        return answerer.answer_split(images, split.questions, split.question_image)
    return answer_with_model(answerer, images, split)


def default_answerers() -> dict:
    """The shipped critic, the shipped ViLT judge and the rule judge."""
    return {"critic": load_critic("critic-easyvqa"), "judge_vilt": load_judge("judge-vilt-easyvqa"), "judge_rules": RuleJudge()}


def accuracy_table(predicted: list[str], split: VQASplit) -> dict:
    """Overall and per question type accuracy of one answerer."""
    correct = [p == a for p, a in zip(predicted, split.answers)]
    table = {"all": sum(correct) / max(len(correct), 1)}
    for kind in QUESTION_TYPES:
        hits = [c for c, a in zip(correct, split.answers) if question_type(a) == kind]
        table[kind] = sum(hits) / len(hits) if hits else float("nan")
    return table


def evaluate(images: torch.Tensor, split: VQASplit, answerers: dict | None = None, return_predictions: bool = False) -> dict:
    """images: (N_img,3,H,W) uint8 or [0,1] float, one per image row of `split`.

    Returns {name: overall accuracy, ..., "per_type": {name: {"all", "yes/no", "colour", "shape"}}}
    (plus "predictions": {name: [answer per question]} when asked).
    """
    if len(images) != len(split.images):
        raise ValueError(f"evaluate: {len(images)} images for a split with {len(split.images)} image rows")
    answerers = default_answerers() if answerers is None else answerers
    result, per_type, predictions = {}, {}, {}
    for name, answerer in answerers.items():
        predicted = answer(answerer, images, split)
        per_type[name] = accuracy_table(predicted, split)
        result[name] = per_type[name]["all"]
        predictions[name] = predicted
    result["per_type"] = per_type
    if return_predictions:
        result["predictions"] = predictions
    return result


def format_results(result: dict) -> str:
    """A small text table: one row per answerer, columns all / yes/no / colour / shape."""
    lines = [f"{'answerer':12s} {'all':>7s} " + " ".join(f"{k:>7s}" for k in QUESTION_TYPES)]
    for name, table in result["per_type"].items():
        lines.append(f"{name:12s} {table['all']:7.2%} " + " ".join(f"{table[k]:7.2%}" for k in QUESTION_TYPES))
    return "\n".join(lines)
