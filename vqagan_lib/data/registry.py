"""Datasets by name: the one place the rest of the library learns which datasets exist.

Every dataset is one module in `vqagan_lib/data/` that provides the same few names:

    NAME              the registry name ("easyvqa")
    IMAGE_SIZE        the side of its (square) images in pixels
    QUESTION_TYPES    the question families, in the order tables show them
    QUESTION_GROUPS   {group: families}: coarser rows for reports (may be empty)
    MIRROR_SAFE       whether a left-right flip leaves every answer true (augmentation may flip)
    SPLITS_NOTE       one line for model cards: which images train, validate and test
    load_split(split, limit_images=None) -> VQASplit   for split in ("train", "val", "test")
    build_vocabulary() -> Vocabulary                    question words and answers of the full train split
    information_bits() -> float                         the answer-relevant information of one image

A dataset of generated scenes may also offer, for trainers that begin with fewer objects a picture:

    SINGLE_OBJECT_TYPES                                 families answered from the asked object alone
    asked_object(question) -> int                       the row of the object a question names
    render(truth, keep) -> (n,3,S,S) uint8              its images with only the `keep` (n,K) objects drawn
    answer(question, truth_row, present) -> str         the answer in such a picture (`present`: its keep row)

The engine, the benchmark, the critic and judge trainers and the playground ask `get_dataset(name)`,
never a dataset module directly; a new dataset is one new module and one line here (and, for the
benchmark, a rule judge registered in answerers/judges.py).
Introduced in notebooks/08_sort_of_clevr.ipynb.
"""
import importlib
from dataclasses import dataclass
from types import ModuleType

from vqagan_lib.errors import VQAGanError

DEFAULT = "easyvqa"
DATASETS = {
    "easyvqa": "vqagan_lib.data.easyvqa",  # one shape a 64x64 image; offline from the easy-vqa package
    "sort-of-clevr": "vqagan_lib.data.sort_of_clevr",  # six objects, relational questions; generated here
}
REQUIRED = ("NAME", "IMAGE_SIZE", "QUESTION_TYPES", "QUESTION_GROUPS", "MIRROR_SAFE", "SPLITS_NOTE", "load_split", "build_vocabulary", "information_bits")



@dataclass
class DataChoice:
    """The dataset a critic, judge or benchmark works on: `--data.name NAME`, as for training."""

    name: str = DEFAULT  # a registered dataset: "easyvqa" or "sort-of-clevr"


def dataset_names() -> tuple[str, ...]:
    return tuple(DATASETS)


def get_dataset(name: str) -> ModuleType:
    """The module behind a registered name; an unknown name is one clear error naming the choices."""
    if name not in DATASETS:
        raise VQAGanError(f"data.name: unknown dataset {name!r} (expected one of {', '.join(map(repr, DATASETS))})")
    module = importlib.import_module(DATASETS[name])
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing:
        raise VQAGanError(f"dataset {name!r} ({module.__name__}) lacks {', '.join(missing)}")
    return module
