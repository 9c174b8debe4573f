"""A public pretrained ViLT as the critic: the COCO / VQA v2 path, from a local directory only.

    images [0,1] (B,3,H,W) -> resize to ViLT's size -> (x - mean) / std   (all in torch:
                                                         gradients reach the pixels)
    question ids -> our Vocabulary -> text -> ViLT's BERT tokenizer
    ViltForQuestionAnswering -> logits over its 3,129 VQA answers -> pick the dataset's answers

Answers the pretrained model lacks get a very low logit, so they are never predicted
and a cross-entropy toward them stays finite; `coverage` says how many were found.
Nothing here downloads: the user fetches the model once (it is ~470 MB) and points at it.
Introduced in notebooks/04_vqa_critic.ipynb.
"""
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from vqagan_lib.errors import VQAGanError
from vqagan_lib.data.vocab import Vocabulary

MODEL_ID = "dandelin/vilt-b32-finetuned-vqa"
MISSING_LOGIT = -1e4  # finite, so softmax and cross-entropy stay defined for answers ViLT lacks
REQUIRED = ("config.json", "model.safetensors")


def _check_directory(local_dir: Path) -> None:
    how = (
        f"download {MODEL_ID} there first, e.g. `huggingface-cli download {MODEL_ID} --local-dir {local_dir}` "
        "(weights must be model.safetensors; pickled .bin weights are not loaded)"
    )
    if not local_dir.is_dir():
        raise VQAGanError(f"{local_dir}: no such directory; {how}")
    missing = [name for name in REQUIRED if not (local_dir / name).exists()]
    # The hub repo has preprocessor_config.json; transformers 5 save_pretrained writes processor_config.json.
    if not ((local_dir / "preprocessor_config.json").exists() or (local_dir / "processor_config.json").exists()):
        missing.append("preprocessor_config.json")
    if not ((local_dir / "vocab.txt").exists() or (local_dir / "tokenizer.json").exists()):
        missing.append("vocab.txt or tokenizer.json")
    if missing:
        raise VQAGanError(f"{local_dir}: incomplete ViLT directory (missing {', '.join(missing)}); {how}")


class ViltCritic(nn.Module):
    """forward(images [0,1] (B,3,H,W), question ids (B,L)) -> logits (B, len(vocab.answers))."""

    def __init__(self, model, processor, vocab: Vocabulary):
        super().__init__()
        self.model, self.processor, self.vocab = model, processor, vocab
        label2id = {str(k).lower(): int(v) for k, v in model.config.label2id.items()}
        found = [label2id.get(a.lower(), -1) for a in vocab.answers]
        self.missing = [a for a, i in zip(vocab.answers, found) if i < 0]
        self.coverage = 1 - len(self.missing) / len(vocab.answers)
        self.register_buffer("answer_ids", torch.tensor([max(i, 0) for i in found]), persistent=False)  # (A,)
        self.register_buffer("answer_known", torch.tensor([i >= 0 for i in found]), persistent=False)  # (A,)
        image_processor = processor.image_processor
        mean = image_processor.image_mean if image_processor.do_normalize else [0.0, 0.0, 0.0]
        std = image_processor.image_std if image_processor.do_normalize else [1.0, 1.0, 1.0]
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        size = image_processor.size.get("shortest_edge", model.config.image_size) if image_processor.do_resize else model.config.image_size
        divisor = getattr(image_processor, "size_divisor", None) or model.config.patch_size
        # A square input's shortest edge becomes `size`, rounded down to the patch grid as ViLT's processor does.
        self.image_size = max(divisor, int(size) // divisor * divisor)

    @classmethod
    def from_pretrained(cls, local_dir, dataset_vocab: Vocabulary) -> "ViltCritic":
        """Load ViltForQuestionAnswering + ViltProcessor from `local_dir` (never from the network)."""
        from transformers import ViltForQuestionAnswering, ViltProcessor

        local_dir = Path(local_dir).expanduser()
        _check_directory(local_dir)
        try:
            processor = ViltProcessor.from_pretrained(str(local_dir), local_files_only=True)
            model = ViltForQuestionAnswering.from_pretrained(str(local_dir), local_files_only=True, use_safetensors=True)
        except (OSError, ValueError) as e:
            raise VQAGanError(f"{local_dir}: cannot load a ViLT model from it ({str(e).splitlines()[0]})") from None
        return cls(model, processor, dataset_vocab)

    def pixels(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) in [0,1] -> ViLT's normalised input (B,3,S,S), differentiable."""
        x = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    def tokens(self, questions: torch.Tensor) -> dict:
        texts = [self.vocab.decode(row) + "?" for row in questions.tolist()]
        max_len = self.model.config.max_position_embeddings
        enc = self.processor.tokenizer(texts, padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
        return {k: v.to(questions.device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        x = self.pixels(images)  # (B,3,S,S)
        mask = torch.ones(len(x), x.shape[-2], x.shape[-1], dtype=torch.long, device=x.device)
        logits = self.model(pixel_values=x, pixel_mask=mask, **self.tokens(questions)).logits  # (B, n_vqa_answers)
        picked = logits[:, self.answer_ids]  # (B,A)
        return torch.where(self.answer_known, picked, torch.full_like(picked, MISSING_LOGIT))
