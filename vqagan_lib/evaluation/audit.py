"""What a discrete code carries, measured two ways that need no test image at all.

1. Answers from the code alone: the critic's answer head reads the answer code (through the
   codec's `answer_head`) instead of an image. This is stage "answers"' own objective, scored
   against the true answers: an upper bound on what any decoder of this code can reach with the critic.
2. The exhaustive audit: at a few bits the decoder can draw at most prod(levels) distinct images,
   so we draw every code the encoder uses on the training images and let the rule judge read
   each one. A code passes when the judge reads the shape and colour that the training images
   under that code have (their majority, as the rule judge reads the originals: it scores 100%
   on them). A decoder that games the critic cannot hide here: every image it can ever output
   is looked at.

Introduced in notebooks/05_combined_training.ipynb.
"""
from collections import Counter
from dataclasses import dataclass, field

import torch

from vqagan_lib.answerers.judge_rules import RuleJudge
from vqagan_lib.data.split import VQASplit
from vqagan_lib.data.pixels import as_float
from vqagan_lib.models.discrete_codec import TABLE_LIMIT  # the codecs small enough to draw every code of



@dataclass
class CodeAudit:
    codes_used: int  # distinct codes among the training images
    codes_as_intended: int  # of those, drawn so that the rule judge reads the intended shape and colour
    images_as_intended: float  # share of training images whose code is drawn as intended
    failures: list = field(default_factory=list)  # (code, images, intended (shape, colour), read (shape, colour))

    @property
    def share(self) -> float:
        return self.codes_as_intended / max(self.codes_used, 1)


@torch.no_grad()
def codes_of(codec, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """Images (N,3,S,S) uint8 or float -> the codec's symbols (N, G)."""
    device = next(codec.parameters()).device
    return torch.cat([codec.compress(as_float(images[i:i + batch]).to(device)).cpu() for i in range(0, len(images), batch)])


@torch.no_grad()
def audit_codes(codec, train_images: torch.Tensor, judge=None, described: list | None = None) -> CodeAudit | None:
    """Draw every code the training images use and judge it; None when the code space is too large.

    `judge`: a rule judge that describes each image by one label (easy-VQA's (shape, colour); the default).
    `described`: that judge's label of each training original, if already read.
    """
    if getattr(codec, "code_space", TABLE_LIMIT + 1) > TABLE_LIMIT:
        return None
    judge = judge if judge is not None else RuleJudge()
    symbols = codes_of(codec, train_images)
    joint = codec.joint_index(symbols)  # (N,)
    described = described if described is not None else judge.describe(train_images)  # (shape, colour) of each original
    members: dict[int, Counter] = {}
    for code, label in zip(joint.tolist(), described):
        members.setdefault(code, Counter())[label] += 1
    used = sorted(members)
    drawn = codec.render_table()[torch.tensor(used)]  # (U, 3, S, S): the only images these codes can become
    read = judge.describe(drawn.cpu())
    ok, covered, failures = 0, 0, []
    for code, seen in zip(used, read):
        intended, count = members[code].most_common(1)[0]
        total = sum(members[code].values())
        if seen == intended:
            ok += 1
            covered += total
        else:
            failures.append((code, total, intended, seen))
    return CodeAudit(len(used), ok, covered / len(train_images), failures)


@torch.no_grad()
def answers_from_code(codec, critic, split: VQASplit, batch: int = 2048) -> float:
    """Accuracy of the critic's answer head reading the answer code instead of the image."""
    device = next(codec.parameters()).device
    images = as_float(split.images).to(device)
    code = torch.cat([codec.answer_code(images[i:i + 512]) for i in range(0, len(images), 512)])
    features = codec.answer_head(code)  # (N_img, D) in the critic's joint feature space
    vocab = critic.vocab
    correct = 0
    for start in range(0, len(split), batch):
        rows = split.question_image[start:start + batch].to(device)
        ids = torch.stack([vocab.encode(q) for q in split.questions[start:start + batch]]).to(device)
        logits = critic.fuse(features[rows], critic.question(ids))
        truth = torch.tensor([vocab.answer_index(a) for a in split.answers[start:start + batch]], device=device)
        correct += int((logits.argmax(-1) == truth).sum())
    return correct / max(len(split), 1)
