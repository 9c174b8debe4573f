"""The rule judge: answer easy-VQA questions from a hand-read (shape, colour).

It has no weights and never enters a training loss, so a decoder cannot learn to please
it: a reconstruction scores only if a plain geometric reading of the pixels finds the
right shape in the right colour. The easy-VQA templates, as found in the train questions:

    what color is the shape? / what is the color of the X?     -> colour
    what shape is present? / what is the X shape? ...           -> shape
    is there a X (shape)? / does the image contain a X? ...     -> yes / no
    is there not a X? / is no X present? / does ... not ...     -> negated yes / no

X is a colour, a shape, or "COLOUR shape". Introduced in notebooks/04_vqa_critic.ipynb.
"""
import torch

from vqagan_lib.data.easyvqa import COLORS, SHAPES
from vqagan_lib.answerers.shapes import describe_batch, segment
from vqagan_lib.data.vocab import tokenize

NEGATIONS = ("not", "no")  # "is there not a ...", "is no ... present", "does the image not contain ..."
FALLBACK_SHAPE = "circle"  # answered when no shape can be found at all (an empty reconstruction)
FALLBACK_COLOUR = "gray"


def question_kind(question: str) -> str:
    """'colour', 'shape' or 'yes/no', from the words of the question."""
    words = tokenize(question)
    if words and words[0] == "what":
        return "colour" if ("color" in words or "colour" in words) else "shape"
    return "yes/no"


def answer(question: str, shape: str | None, colour: str | None) -> str:
    """Answer one question about an image described as (shape, colour)."""
    words = tokenize(question)
    kind = question_kind(question)
    if kind == "colour":
        return colour or FALLBACK_COLOUR
    if kind == "shape":
        return shape or FALLBACK_SHAPE
    # yes/no: every named attribute must match; negation flips the answer.
    named_shapes = [w for w in words if w in SHAPES]
    named_colours = [w for w in words if w in COLORS]
    present = all(s == shape for s in named_shapes) and all(c == colour for c in named_colours)
    present = present and shape is not None
    negated = any(w in NEGATIONS for w in words)
    return "yes" if present != negated else "no"


class RuleJudge:
    """Answers from `shapes.describe`; reads each image once, however many questions it has."""

    def describe(self, images: torch.Tensor) -> list[tuple[str | None, str | None]]:
        """(B,3,H,W) uint8 or [0,1] float -> [(shape, colour), ...]."""
        return describe_batch(images)

    def object_masks(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) -> (B,1,H,W) bool: easy-VQA's one object, as the judge segments it."""
        return segment(images)[:, None]

    def answer_batch(self, images: torch.Tensor, questions: list[str]) -> list[str]:
        """One question per image row: (B,3,H,W), B questions -> B answers."""
        if len(images) != len(questions):
            raise ValueError(f"RuleJudge.answer_batch: {len(images)} images but {len(questions)} questions")
        return [answer(q, s, c) for q, (s, c) in zip(questions, self.describe(images))]

    def answer_split(self, images: torch.Tensor, questions: list[str], question_image: torch.Tensor) -> list[str]:
        """Images once per row, questions pointing at rows (a VQASplit's layout) -> one answer per question."""
        described = self.describe(images)
        return [answer(q, *described[int(r)]) for q, r in zip(questions, question_image)]
