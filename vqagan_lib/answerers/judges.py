"""Who reads which dataset: the shipped critic, the ViLT judge and the rule judge of each.

A dataset's answerers follow one naming rule (critic-<dataset>, judge-vilt-<dataset>), and its rule
judge is registered here by name, so the benchmark, the evaluation and the playground find all three
from the dataset's name alone. A rule judge has no weights; it offers
    answer_split(images, questions, question_image) -> answers    (each image read once)
    answer_batch(images, questions) -> answers                    (one question per image row)
    object_masks(images) -> (B,K,H,W) bool                        (K objects; for mask IoU)
Introduced in notebooks/08_sort_of_clevr.ipynb.
"""
import importlib

from vqagan_lib.data.registry import get_dataset

RULE_JUDGES = {
    "easyvqa": "vqagan_lib.answerers.judge_rules:RuleJudge",
    "sort-of-clevr": "vqagan_lib.answerers.judge_scenes:SceneJudge",
}


def critic_name(dataset: str) -> str:
    return f"critic-{get_dataset(dataset).NAME}"


def judge_name(dataset: str) -> str:
    return f"judge-vilt-{get_dataset(dataset).NAME}"


def rule_judge(dataset: str):
    """A fresh rule judge for the dataset (get_dataset first: an unknown name gets its one clear error)."""
    module, cls = RULE_JUDGES[get_dataset(dataset).NAME].split(":")
    return getattr(importlib.import_module(module), cls)()
