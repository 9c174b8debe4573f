"""The real-photo path: COCO images with VQA v2 questions, read from the user's disk.

Nothing is downloaded here. Expected layout under a root folder (see data/README.md):

    ROOT/images/SPLIT/                         COCO images, e.g. COCO_val2014_000000000042.jpg
    ROOT/annotations/instances_SPLIT.json      COCO image index (read with pycocotools)
    ROOT/vqa/v2_OpenEnded_mscoco_SPLIT_questions.json
    ROOT/vqa/v2_mscoco_SPLIT_annotations.json

Each question is labelled with its most frequent answer (VQA v2's
`multiple_choice_answer`); only questions whose answer is among the top-K answers
are kept. Images are resized to a square of `image_size` pixels.
Introduced in notebooks/00_data_tour.ipynb.
"""
import contextlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from vqagan_lib.errors import VQAGanError
from vqagan_lib.data.vocab import Vocabulary

WHAT_TO_GET = {
    "images": "the COCO images of this split (cocodataset.org, e.g. val2014.zip), unpacked into",
    "index": "the COCO annotations of this split (cocodataset.org, annotations_trainval2014.zip: instances_SPLIT.json), placed at",
    "questions": "the VQA v2 questions (visualqa.org, v2_Questions_*_mscoco.zip), placed at",
    "annotations": "the VQA v2 annotations (visualqa.org, v2_Annotations_*_mscoco.zip), placed at",
}


def coco_paths(root, split: str = "val2014") -> dict[str, Path]:
    root = Path(root)
    return {
        "images": root / "images" / split,
        "index": root / "annotations" / f"instances_{split}.json",
        "questions": root / "vqa" / f"v2_OpenEnded_mscoco_{split}_questions.json",
        "annotations": root / "vqa" / f"v2_mscoco_{split}_annotations.json",
    }


def check_paths(paths: dict[str, Path]) -> None:
    """One clear error naming the first missing piece and what to download."""
    for key, path in paths.items():
        if not path.exists():
            raise VQAGanError(f"{path}: missing; download {WHAT_TO_GET[key]} {path} (see data/README.md)")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise VQAGanError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def _image_index(index_path: Path) -> dict[int, str]:
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco = COCO(str(index_path))
    return {int(i): info["file_name"] for i, info in coco.imgs.items()}


def answer_vocabulary(annotations: list[dict], top_k: int) -> list[str]:
    """The top-K most frequent labels; ties broken alphabetically so the list is stable."""
    counts = Counter(a["multiple_choice_answer"] for a in annotations)
    return [a for a, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]]


class CocoVQADataset(Dataset):
    """Yields (image float32 (3,S,S) in [0,1], question ids (L,), answer index, image id).

    Pass the training set's `vocab` when building val/test so ids agree; without one,
    a vocabulary is built from this split (words and top-K answers).
    """

    def __init__(self, root, split: str = "val2014", image_size: int = 128, top_k: int = 1000,
                 vocab: Vocabulary | None = None, limit: int | None = None):
        self.paths = coco_paths(root, split)
        check_paths(self.paths)
        self.image_size = image_size
        files = _image_index(self.paths["index"])
        questions = {q["question_id"]: q for q in _read_json(self.paths["questions"])["questions"]}
        annotations = _read_json(self.paths["annotations"])["annotations"]
        if vocab is None:
            answers = answer_vocabulary(annotations, top_k)
            texts = [questions[a["question_id"]]["question"] for a in annotations]
            vocab = Vocabulary.build(texts, answers)
        self.vocab = vocab
        self.items = []  # (question text, answer, image id, file name)
        for a in annotations:
            if not vocab.has_answer(a["multiple_choice_answer"]) or a["image_id"] not in files:
                continue
            q = questions[a["question_id"]]
            self.items.append((q["question"], a["multiple_choice_answer"], int(a["image_id"]), files[a["image_id"]]))
            if limit is not None and len(self.items) >= limit:
                break
        if not self.items:
            raise VQAGanError(f"{self.paths['annotations']}: no question has an answer in the vocabulary and an image in {self.paths['images']}")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def questions(self) -> list[str]:
        return [item[0] for item in self.items]

    @property
    def answers(self) -> list[str]:
        return [item[1] for item in self.items]

    def load_image(self, file_name: str) -> torch.Tensor:
        path = self.paths["images"] / file_name
        try:
            with Image.open(path) as im:
                im = im.convert("RGB").resize((self.image_size, self.image_size), Image.BICUBIC)
        except FileNotFoundError:
            raise VQAGanError(f"{path}: image listed in {self.paths['index'].name} is missing") from None
        except OSError as e:
            raise VQAGanError(f"{path}: not a readable image ({e})") from None
        return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255.0

    def __getitem__(self, i):
        text, answer, image_id, file_name = self.items[i]
        return self.load_image(file_name), self.vocab.encode(text), self.vocab.answer_index(answer), image_id
