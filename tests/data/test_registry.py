"""The data layer's one interface: every registered dataset provides it, and the library asks only the registry."""
import pytest

from vqagan_lib.data.registry import REQUIRED, dataset_names, get_dataset
from vqagan_lib.errors import VQAGanError


def test_unknown_dataset_is_one_clear_error():
    with pytest.raises(VQAGanError, match="unknown dataset 'mnist'.*'easyvqa', 'sort-of-clevr'"):
        get_dataset("mnist")


@pytest.mark.parametrize("name", dataset_names())
def test_every_dataset_provides_the_interface(name):
    data = get_dataset(name)
    assert all(hasattr(data, attr) for attr in REQUIRED) and data.NAME == name
    split = data.load_split("val", limit_images=4)
    assert split.dataset == name and len(split.images) == 4
    assert split.images.shape[-2:] == (data.IMAGE_SIZE, data.IMAGE_SIZE)
    assert set(split.types) <= set(data.QUESTION_TYPES)
    assert all(set(kinds) <= set(data.QUESTION_TYPES) for kinds in data.QUESTION_GROUPS.values())
    vocab = data.build_vocabulary()
    assert all(vocab.has_answer(a) for a in split.answers)
    assert not any(vocab.unknown_words(q) for q in split.questions)
    assert data.information_bits() > 0


def test_no_module_outside_the_data_layer_imports_a_dataset_module():
    """The rest of the library reaches a dataset through the registry; only a dataset's own rule judge may
    import its module's constants."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "vqagan_lib"
    allowed = {"answerers/judge_rules.py", "answerers/judge_scenes.py"}
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("data/") or rel in allowed:
            continue
        text = path.read_text()
        if any(f"vqagan_lib.data.{m}" in text or f"from vqagan_lib.data import {m}" in text
               for m in ("easyvqa", "sort_of_clevr")):
            offenders.append(rel)
    assert not offenders, f"import a dataset module directly: {offenders}"


def test_a_dataset_without_a_rule_judge_is_one_clear_error(monkeypatch):
    from vqagan_lib.answerers import judges

    monkeypatch.delitem(judges.RULE_JUDGES, "sort-of-clevr")
    with pytest.raises(VQAGanError, match="no rule judge registered"):
        judges.rule_judge("sort-of-clevr")
    assert type(judges.rule_judge("easyvqa")).__name__ == "RuleJudge"
