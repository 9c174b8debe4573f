"""One split of a VQA dataset held in memory: the shape every dataset module returns.

Images are stored once; questions point at their image row, so an image with ten questions
is decoded (or reconstructed) once and asked ten times. `types` names each question's family
(the dataset's QUESTION_TYPES), so accuracy per family needs no knowledge of the dataset.
`truth` is what a rule judge is checked against, where the dataset has it (a generated scene's
object table); datasets read from disk leave it None.
Introduced in notebooks/00_data_tour.ipynb.
"""
from dataclasses import dataclass

import torch

from vqagan_lib.data.vocab import Vocabulary


@dataclass
class VQASplit:
    dataset: str  # the registry name of the dataset it came from (data/registry.py)
    images: torch.Tensor  # (N_img,3,H,W) uint8
    image_ids: list[int]  # the dataset's id of each image row
    questions: list[str]
    answers: list[str]
    question_image: torch.Tensor  # (N_q,) int64: row in `images` for each question
    types: list[str]  # (N_q,) the family of each question, one of the dataset's QUESTION_TYPES
    truth: torch.Tensor | None = None  # (N_img,...) the generator's ground truth per image, where one exists

    def __len__(self) -> int:
        return len(self.questions)

    def __post_init__(self):  # a split whose lists disagree would score the wrong answers silently
        if not (len(self.questions) == len(self.answers) == len(self.question_image) == len(self.types)):
            raise ValueError("VQASplit: questions, answers, question_image and types must have one entry per question")


def encode_questions(data: VQASplit, vocab: Vocabulary):
    """Question ids (N_q,L), answer indices (N_q,), and each image row's question indices (list of lists).

    Trainers that batch by image (one CNN pass shared by all of its questions) start from these.
    """
    ids = torch.stack([vocab.encode(q) for q in data.questions])  # (N_q, L)
    answers = torch.tensor([vocab.answer_index(a) for a in data.answers])  # (N_q,)
    by_image = [[] for _ in range(len(data.images))]
    for j, row in enumerate(data.question_image.tolist()):
        by_image[row].append(j)
    return ids, answers, by_image
