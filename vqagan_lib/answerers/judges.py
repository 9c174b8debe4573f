"""Who reads which dataset: the shipped critic, the ViLT judge and the rule judge of each.

A dataset's answerers follow one naming rule (critic-<dataset>, judge-vilt-<dataset>), and its rule
judge is registered here by name, so the benchmark, the evaluation and the playground find all three
from the dataset's name alone. A rule judge has no weights; it offers
    answer_split(images, questions, question_image) -> answers    (each image read once)
    answer_batch(images, questions) -> answers                    (one question per image row)
    object_masks(images) -> (B,K,H,W) bool                        (K objects; for mask IoU)
A dataset's critic and ViLT judge are trained by `train-critic` / `train-judge --data.name NAME`, which
start from the dataset's recipe below (dotted overrides of CriticConfig / JudgeConfig) and then apply
the command line's own overrides.
Introduced in notebooks/08_sort_of_clevr.ipynb.
"""
import importlib

from vqagan_lib.data.registry import get_dataset
from vqagan_lib.errors import VQAGanError

RULE_JUDGES = {
    "easyvqa": "vqagan_lib.answerers.judge_rules:RuleJudge",
    "sort-of-clevr": "vqagan_lib.answerers.judge_scenes:SceneJudge",
}

# Questions that relate objects need the relation head; 8 of an image's 36 questions a step spend the
# passes on more images; the non-relational questions alone first, until the head has learnt which
# colour a question's name means. Edge jitter keeps the critic from reading shapes and counts by their area
# (a codec can move an edge pixel without changing the shape); with it, seed 0 never learnt "closest",
# so the recipe names a seed that did.
CRITIC_RECIPES = {
    "easyvqa": {},
    "sort-of-clevr": {"head": "relation", "dim": 64, "hidden": 64, "images_per_batch": 32,
                      "questions_per_image": 8, "warmup_group": "non-relational", "warmup_steps": 600,
                      "epochs": 12, "edge_jitter": 0.1, "seed": 1},
}
# The scenes' judge, a recipe still on trial (no scenes judge is shipped yet): a wider init (with ViLT's
# 0.02 the tiny model could not even memorise 64 scenes), patch positions that start legible, a third layer
# for the relations, and pictures of fewer objects first (see JudgeConfig.object_stages); a short rise keeps
# the learning rate up while those stages run. Stages asking relations among two to five objects, placed
# after these, learnt two objects' relations but stalled at three, and the mixed stages after them lost part
# of what the earlier stages had learnt (the run was stopped there).
JUDGE_RECIPES = {
    "easyvqa": {},
    "sort-of-clevr": {"init_std": 0.09, "sincos_positions": True, "layers": 3, "shape_steps": 0, "open_fraction": 0.0,
                      "warmup_fraction": 0.01,
                      "object_stages": "1:shape:800,1:non-relational:800,2:non-relational:1500,3:non-relational:1500,"
                                       "4:non-relational:1000,6:non-relational:1500",
                      "epochs": 150},
}


def recipe(recipes: dict, dataset: str) -> dict:
    """A dataset's recipe, plus the dataset itself: {"data.name": NAME, ...overrides}."""
    name = get_dataset(dataset).NAME
    return {"data.name": name, **recipes.get(name, {})}


def critic_name(dataset: str) -> str:
    return f"critic-{get_dataset(dataset).NAME}"


def judge_name(dataset: str) -> str:
    return f"judge-vilt-{get_dataset(dataset).NAME}"


def rule_judge(dataset: str):
    """A fresh rule judge for the dataset (get_dataset first: an unknown name gets its one clear error)."""
    name = get_dataset(dataset).NAME
    if name not in RULE_JUDGES:
        raise VQAGanError(f"dataset {name!r} has no rule judge registered in answerers/judges.py (RULE_JUDGES)")
    module, cls = RULE_JUDGES[name].split(":")
    return getattr(importlib.import_module(module), cls)()
