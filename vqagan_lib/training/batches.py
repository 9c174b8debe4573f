"""Training batches that are a pure function of (seed, step, rank): resumable and DDP-shardable.

No DataLoader iterator state to save: batch `step` is the slice [step*B, (step+1)*B) of an
endless stream made of seeded permutations, one per epoch. Under DDP each rank takes its
own contiguous share of that global batch, so two processes see exactly the images one
process would, and a resumed run sees exactly the batches it would have seen.
Introduced in notebooks/03_vae_gan.ipynb.
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from vqagan_lib.data.coco import CocoVQADataset
from vqagan_lib.data.registry import DEFAULT, dataset_names, get_dataset
from vqagan_lib.errors import VQAGanError

COCO = "coco"  # the real-photo path: read question by question from a folder the user provides, not generated or packaged


@dataclass
class DataConfig:
    name: str = DEFAULT  # a registered dataset (data/registry.py: "easyvqa", "sort-of-clevr") or "coco" (COCO + VQA v2 from coco_root)
    coco_root: str | None = None  # folder laid out as coco.py describes; needed only for name="coco"
    coco_split: str = "val2014"  # the COCO/VQA v2 split on disk; its last val_images items are held out
    limit_images: int | None = None  # keep the first N images (questions for coco): tiny runs and tests
    val_images: int = 256  # fixed held-out images for the eval metrics: enough for a stable PSNR / rate
    # The question families (the dataset's QUESTION_TYPES) the VQA term asks; empty: every family. A code
    # trained on some families only shows what the questions make it keep.
    question_types: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class Batch:
    images: torch.Tensor  # (B,3,H,W) float in [0,1]
    questions: torch.Tensor | None  # (B,L) long, Vocabulary ids; None when no VQA term needs them
    answers: torch.Tensor | None  # (B,) long answer indices

    def to(self, device) -> "Batch":
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.images), move(self.questions), move(self.answers))


def batch_indices(n: int, batch_size: int, step: int, seed: int, rank: int = 0, world: int = 1) -> torch.Tensor:
    """Rows of batch `step` for this rank: global positions step*B + [rank*B/W, (rank+1)*B/W)."""
    per_rank = batch_size // world
    positions = step * batch_size + rank * per_rank + torch.arange(per_rank)  # (B/W,)
    epochs, offsets = positions // n, positions % n
    out = torch.empty_like(positions)
    for epoch in epochs.unique().tolist():
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))  # (n,)
        mask = epochs == epoch
        out[mask] = perm[offsets[mask]]
    return out


class TrainData:
    """Images (and, when a VQA term needs them, questions and answers) held in memory.

    Sampled by image when only the codec trains; by question when the VQA term is on,
    since each question is a separate (image, question, answer) example.
    """

    def __init__(self, cfg: DataConfig, image_size: int, vocab=None, split: str = "train"):
        self.cfg = cfg
        self.image_size = image_size  # the model's (TrainConfig.model.image_size): data has no size of its own
        self.by_question = vocab is not None
        if cfg.name == COCO:
            if cfg.question_types:
                raise VQAGanError("data.question_types: coco's questions have no families to choose from; leave it empty")
            self._load_coco(vocab, split)
            return
        if cfg.name not in dataset_names():
            raise VQAGanError(f"data.name: unknown dataset {cfg.name!r} (expected one of {', '.join(dataset_names() + (COCO,))})")
        data = get_dataset(cfg.name).load_split(split, limit_images=cfg.limit_images if split == "train" else cfg.val_images)
        self.images = data.images  # (N_img,3,64,64) uint8: 1 MB per 80 images, fits in memory
        self.question_image = data.question_image  # (N_q,)
        if self.by_question:
            missing = sorted({a for a in data.answers if not vocab.has_answer(a)})
            if missing:
                raise VQAGanError(f"data.name {cfg.name}: the critic cannot answer {', '.join(missing[:4])}; "
                                  "train with a critic of this dataset (vqa.critic)")
            self.questions = torch.stack([vocab.encode(q) for q in data.questions])  # (N_q, L)
            self.answers = torch.tensor([vocab.answer_index(a) for a in data.answers])  # (N_q,)
            if cfg.question_types:
                self._keep_families(cfg.question_types, data.types, get_dataset(cfg.name).QUESTION_TYPES)

    def _keep_families(self, families, types: list[str], known: tuple[str, ...]) -> None:
        unknown = [f for f in families if f not in known]
        if unknown:
            raise VQAGanError(f"data.question_types: {self.cfg.name} has no question family {unknown[0]!r} "
                              f"(expected some of {', '.join(known)})")
        keep = torch.tensor([t in families for t in types])  # (N_q,) bool
        self.question_image, self.questions, self.answers = self.question_image[keep], self.questions[keep], self.answers[keep]

    def _load_coco(self, vocab, split: str) -> None:
        if self.cfg.coco_root is None:
            raise VQAGanError("data.coco_root: set it to the folder holding COCO + VQA v2 (see data/README.md)")
        ds = CocoVQADataset(self.cfg.coco_root, self.cfg.coco_split, self.image_size, vocab=vocab, limit=self.cfg.limit_images)
        held_out = min(self.cfg.val_images, len(ds) // 2)
        rows = range(len(ds) - held_out, len(ds)) if split != "train" else range(len(ds) - held_out)
        items = [ds[i] for i in rows]
        self.images = torch.stack([(im * 255).round().to(torch.uint8) for im, *_ in items])  # (N,3,S,S)
        self.question_image = torch.arange(len(items))  # one row per question
        self.questions = torch.stack([q for _, q, _, _ in items])
        self.answers = torch.tensor([int(a) for _, _, a, _ in items])

    def __len__(self) -> int:
        return len(self.question_image) if self.by_question else len(self.images)

    def gather_images(self, image_rows: torch.Tensor) -> torch.Tensor:
        """Image rows -> (B,3,S,S) float in [0,1] at the model's size."""
        images = self.images[image_rows].float() / 255.0  # (B,3,H,W) in [0,1]
        if images.shape[-1] != self.image_size:
            images = F.interpolate(images, size=self.image_size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        return images

    def gather(self, rows: torch.Tensor) -> Batch:
        images = self.gather_images(self.question_image[rows] if self.by_question else rows)
        if self.by_question:
            return Batch(images, self.questions[rows], self.answers[rows])
        return Batch(images, None, None)

    def batch(self, step: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> Batch:
        return self.gather(batch_indices(len(self), batch_size, step, seed, rank, world))

    def first(self, n: int) -> Batch:
        """The first n examples in stored order: a fixed evaluation batch."""
        return self.gather(torch.arange(min(n, len(self))))
