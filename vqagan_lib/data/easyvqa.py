"""The easy-VQA dataset, offline from the `easy-vqa` package.

4,000 training and 1,000 test images (64x64 RGB, one shape on a light background),
38,575 / 9,673 questions, 13 answers. We carve a validation split from train *by
image*, so no image is in two splits.
Introduced in notebooks/00_data_tour.ipynb.
"""
import functools
import math
import random

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from vqagan_lib.data.split import VQASplit
from vqagan_lib.data.vocab import Vocabulary

NAME = "easyvqa"
SPLITS = ("train", "val", "test")
IMAGE_SIZE = 64  # every easy-VQA image is 64x64
SHAPES = ("circle", "rectangle", "triangle")
COLORS = ("red", "green", "blue", "yellow", "teal", "brown", "gray", "black")
QUESTION_TYPES = ("yes/no", "colour", "shape")
QUESTION_GROUPS: dict[str, tuple[str, ...]] = {}  # three families are already coarse
SPLITS_NOTE = "easy-VQA train split (3,600 images; 400 carved out as val by image, seed 0); metrics on the 1,000 test originals"
MIRROR_SAFE = True  # a left-right flip changes no answer (triangles stay upright): critics may train on flips


def question_type(answer: str) -> str:
    """The family of a question, read from its true answer: easy-VQA's answers name their family."""
    if answer in COLORS:
        return "colour"
    if answer in SHAPES:
        return "shape"
    return "yes/no"


def information_bits() -> float:
    """Every answer is a function of (shape, colour), drawn uniformly: log2(3 x 8) bits an image."""
    return math.log2(len(SHAPES) * len(COLORS))


@functools.lru_cache(maxsize=2)
def _load_raw(part: str):
    """'train' or 'test' as published: (images uint8, ids, questions, answers, question ids)."""
    import easy_vqa

    if part == "train":
        texts, answers, qids = easy_vqa.get_train_questions()
        paths = easy_vqa.get_train_image_paths()
    else:
        texts, answers, qids = easy_vqa.get_test_questions()
        paths = easy_vqa.get_test_image_paths()
    ids = sorted(paths)
    images = np.stack([np.asarray(Image.open(paths[i]).convert("RGB")) for i in ids])
    images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # (N, 3, 64, 64)
    return images, ids, list(texts), list(answers), list(qids)


def split_image_ids(train_ids: list[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic image-level split of the published train set into (train, val) ids."""
    ids = sorted(train_ids)
    val = set(random.Random(seed).sample(ids, round(len(ids) * val_fraction)))
    return [i for i in ids if i not in val], sorted(val)


def load_split(split: str, val_fraction: float = 0.1, seed: int = 0, limit_images: int | None = None) -> VQASplit:
    """Load 'train', 'val' or 'test'. `limit_images` keeps the first N images (QUICK runs)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    images, ids, texts, answers, qids = _load_raw("test" if split == "test" else "train")
    keep = ids
    if split != "test":
        train_ids, val_ids = split_image_ids(ids, val_fraction, seed)
        keep = train_ids if split == "train" else val_ids
    if limit_images is not None:
        keep = keep[:limit_images]
    row_of = {image_id: row for row, image_id in enumerate(ids)}
    new_row = {image_id: k for k, image_id in enumerate(keep)}
    picked = [j for j, q in enumerate(qids) if q in new_row]
    return VQASplit(
        dataset=NAME,
        images=images[[row_of[i] for i in keep]],
        image_ids=list(keep),
        questions=[texts[j] for j in picked],
        answers=[answers[j] for j in picked],
        question_image=torch.tensor([new_row[qids[j]] for j in picked], dtype=torch.long),
        types=[question_type(answers[j]) for j in picked],
    )


def answer_list() -> list[str]:
    """The 13 easy-VQA answers in the published order (answers.txt)."""
    import easy_vqa

    return list(easy_vqa.get_answers())


def build_vocabulary(train: VQASplit | None = None) -> Vocabulary:
    """Vocabulary from training questions; answers in the published order."""
    train = train if train is not None else load_split("train")
    return Vocabulary.build(train.questions, answer_list())


class VQADataset(Dataset):
    """Yields (image float32 (3,H,W) in [0,1], question ids (L,), answer index, image id)."""

    def __init__(self, data: VQASplit, vocab: Vocabulary):
        self.data = data
        self.vocab = vocab
        self._questions = torch.stack([vocab.encode(q) for q in data.questions]) if len(data) else torch.zeros(0, vocab.max_len, dtype=torch.long)
        self._answers = torch.tensor([vocab.answer_index(a) for a in data.answers], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        row = int(self.data.question_image[i])
        image = self.data.images[row].float() / 255.0
        return image, self._questions[i], self._answers[i], self.data.image_ids[row]


class ImageDataset(Dataset):
    """Images alone (for the codec, which never sees questions): float32 (3,H,W) in [0,1]."""

    def __init__(self, data: VQASplit):
        self.images = data.images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i].float() / 255.0


def make_loader(dataset: Dataset, batch_size: int = 64, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """A seeded loader: the same seed gives the same batches."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=False)
