"""Word-level vocabularies for questions and answers.

Built from training questions only, saved as JSON beside every model that reads
questions, so a later run maps words to the same ids.
Introduced in notebooks/00_data_tour.ipynb.
"""
import json
import re
from collections import Counter
from dataclasses import dataclass, field

import torch

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9']+")


def tokenize(text: str) -> list[str]:
    """Lower-case words; punctuation is dropped ('What is the shape?' -> what, is, the, shape)."""
    return _WORD.findall(text.lower())


@dataclass
class Vocabulary:
    """Question words -> ids (0 is padding, 1 is unknown) and answers -> class indices."""

    words: list[str]
    answers: list[str]
    max_len: int
    _word_ids: dict = field(init=False, repr=False)
    _answer_ids: dict = field(init=False, repr=False)

    def __post_init__(self):
        self._word_ids = {w: i for i, w in enumerate(self.words)}
        self._answer_ids = {a: i for i, a in enumerate(self.answers)}

    @classmethod
    def build(cls, questions: list[str], answers: list[str], min_count: int = 1) -> "Vocabulary":
        counts = Counter(w for q in questions for w in tokenize(q))
        words = [PAD, UNK] + sorted(w for w, c in counts.items() if c >= min_count)
        max_len = max(len(tokenize(q)) for q in questions)
        return cls(words=words, answers=list(answers), max_len=max_len)

    def unknown_words(self, question: str) -> list[str]:
        return [w for w in tokenize(question) if w not in self._word_ids]

    def encode(self, question: str) -> torch.Tensor:
        """Question -> (max_len,) int64 ids, padded with 0 and cut at max_len."""
        ids = [self._word_ids.get(w, 1) for w in tokenize(question)][: self.max_len]
        return torch.tensor(ids + [0] * (self.max_len - len(ids)), dtype=torch.long)

    def decode(self, ids) -> str:
        return " ".join(self.words[i] for i in ids if i != 0)

    def answer_index(self, answer: str) -> int:
        return self._answer_ids[answer]

    def has_answer(self, answer: str) -> bool:
        return answer in self._answer_ids

    def to_dict(self) -> dict:
        return {"words": self.words, "answers": self.answers, "max_len": self.max_len}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        return cls(words=list(data["words"]), answers=list(data["answers"]), max_len=int(data["max_len"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "Vocabulary":
        return cls.from_dict(json.loads(text))
