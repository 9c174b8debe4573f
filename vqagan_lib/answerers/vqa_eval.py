"""Scoring reconstructions by asking questions about them: critic and judges side by side.

Every notebook and the benchmark call `evaluate(images, split)`: `images` holds one
(reconstructed or original) picture per image row of the split, and each answerer
answers all of the split's questions about those pictures. Accuracy is reported
overall, per question type (the dataset's families: yes/no, colour, shape on easy-VQA) and per
group of types (relational or not, on Sort-of-CLEVR). The critic's number alone can be gamed by a
decoder trained against it; the two judges never entered any training loss.
Introduced in notebooks/04_vqa_critic.ipynb.
"""
import torch
import torch.nn as nn

from vqagan_lib.answerers.critic import load_critic
from vqagan_lib.answerers.judge_vilt import load_judge
from vqagan_lib.answerers.judges import critic_name, judge_name, rule_judge
from vqagan_lib.checkpoint import model_folders
from vqagan_lib.data.pixels import as_float
from vqagan_lib.data.registry import DEFAULT, get_dataset
from vqagan_lib.data.split import VQASplit


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


def default_answerers(dataset: str = DEFAULT, without_missing_judge: bool = False) -> dict:
    """The dataset's shipped critic, its shipped ViLT judge and its rule judge.

    `without_missing_judge`: a dataset whose ViLT judge is not shipped (yet) is asked by the other two, and
    reports say so (the benchmark counts every target that needs both judges as missed)."""
    answerers = {"critic": load_critic(critic_name(dataset))}
    if not without_missing_judge or shipped(judge_name(dataset)):
        answerers["judge_vilt"] = load_judge(judge_name(dataset))
    answerers["judge_rules"] = rule_judge(dataset)
    return answerers


def shipped(name: str) -> bool:
    """Whether a model of that name is where bare names are looked up (the shipped ones, then VQAGAN_MODELS)."""
    return any((folder / f"{name}.safetensors").is_file() for folder in model_folders())


def table_columns(dataset: str) -> tuple[str, ...]:
    """The per-type columns of a dataset's tables: its question types, then its groups of types."""
    data = get_dataset(dataset)
    return tuple(data.QUESTION_TYPES) + tuple(data.QUESTION_GROUPS)


def accuracy_table(predicted: list[str], split: VQASplit) -> dict:
    """Overall, per question type and per group of types: the accuracy of one answerer."""
    correct = [p == a for p, a in zip(predicted, split.answers)]
    table = {"all": sum(correct) / max(len(correct), 1)}
    data = get_dataset(split.dataset)
    families = {kind: (kind,) for kind in data.QUESTION_TYPES} | dict(data.QUESTION_GROUPS)
    for column, kinds in families.items():
        hits = [c for c, t in zip(correct, split.types) if t in kinds]
        table[column] = sum(hits) / len(hits) if hits else float("nan")
    return table


def evaluate(images: torch.Tensor, split: VQASplit, answerers: dict | None = None, return_predictions: bool = False) -> dict:
    """images: (N_img,3,H,W) uint8 or [0,1] float, one per image row of `split`.

    Returns {name: overall accuracy, ..., "per_type": {name: {"all", then table_columns(split.dataset)}}}
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
    """A small text table: one row per answerer, columns all and then each type (and group) it was scored on."""
    columns = [k for k in next(iter(result["per_type"].values())) if k != "all"] if result["per_type"] else []
    width = max([7] + [len(k) for k in columns])
    lines = [f"{'answerer':12s} {'all':>7s} " + " ".join(f"{k:>{width}s}" for k in columns)]
    for name, table in result["per_type"].items():
        lines.append(f"{name:12s} {table['all']:7.2%} " + " ".join(f"{table[k]:{width}.2%}" for k in columns))
    return "\n".join(lines)
