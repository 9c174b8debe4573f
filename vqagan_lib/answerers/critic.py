"""The frozen VQA critic: a small CNN + question encoder that answers a dataset's questions.

    image (B,3,64,64) -> CNN -> v (B,D) --------\\
                                                 v * q -> MLP -> logits (B,13)
    question ids (B,L) -> embed -> GRU -> q (B,D)/

Trained once as a classifier, then frozen: the codec's VQA loss back-propagates its
cross-entropy through the critic into the decoder's pixels, never into the critic.
Fusion by elementwise product (as in the original VQA baselines) lets the question
pick which image features matter. That "pooled" head suffices for easy-VQA's one object; for
questions that relate objects (Sort-of-CLEVR) `head="relation"` finds the objects by colour and relates
them with a relation module (answerers/relation_critic.py).
Introduced in notebooks/04_vqa_critic.ipynb.
"""
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from vqagan_lib.answerers.relation_critic import ObjectEncoder, RelationHead
from vqagan_lib.answerers.vilt_critic import ViltCritic
from vqagan_lib.checkpoint import load_checkpoint, save_checkpoint
from vqagan_lib.config import from_dict, to_dict
from vqagan_lib.data.registry import DEFAULT, DataChoice, get_dataset
from vqagan_lib.data.split import encode_questions
from vqagan_lib.data.vocab import Vocabulary
from vqagan_lib.errors import VQAGanError
from vqagan_lib.runtime import seed_everything


@dataclass
class CriticConfig:
    data: DataChoice = field(default_factory=DataChoice)  # the dataset it answers: its questions, vocabulary and answers
    head: str = "pooled"  # "pooled": a CNN, global average + product fusion; "relation": objects found by colour + relation module
    channels: int = 32  # head "pooled": width of the first conv; doubles twice. Shapes and colours need little capacity
    dim: int = 128  # joint image/question feature size where the two are multiplied
    word_dim: int = 64  # word embedding size: the vocabulary has ~30 words
    hidden: int = 128  # MLP hidden size of the answer head
    dropout: float = 0.1  # light: the task is nearly noise-free, but codec images will not be
    epochs: int = 12  # passes over the training images (each pass sees every image's questions); a little past where test accuracy levels off
    images_per_batch: int = 16  # all questions of these images share one CNN pass (~10 each); small = more steps
    questions_per_image: int | None = None  # None: every question of each image in its step; k: k of them at random
    # The first warmup_steps ask only the questions of this group of the dataset's QUESTION_GROUPS: learning to
    # find the object a question names is quick on questions about that object alone, and slow when mixed
    # with questions that relate it to others; afterwards every question is asked. The warm-up is a run of its
    # own: its learning rate rises and anneals within it, and the mixed questions start a second cycle.
    warmup_group: str | None = None
    warmup_steps: int = 0
    lr: float = 3e-3  # AdamW, one-cycle schedule (warm-up, then annealed to ~0)
    weight_decay: float = 1e-4
    noise: float = 0.04  # std of Gaussian pixel noise in training: critic of reconstructions, not just originals
    # Up to this share of the pixels on objects' edges recoloured in training (`jitter_edges`): a reconstruction's
    # object may gain or lose an edge pixel and keep its shape, so the critic must not read shapes, or count
    # them, by their area.
    edge_jitter: float = 0.0
    seed: int = 0
    limit_images: int | None = None  # keep only the first N training images (QUICK runs)
    max_steps: int | None = None  # stop early after this many steps (QUICK runs and tests)


HEADS = ("pooled", "relation")


class ImageEncoder(nn.Module):
    """64x64 image -> (B,dim): four stride-2 convs then global average pooling."""

    def __init__(self, channels: int, dim: int):
        super().__init__()
        c = channels
        layers, cin = [], 3
        for cout in (c, 2 * c, 4 * c, 4 * c):
            # GELU, not ReLU: smoother gradients reach the pixels when the critic guides a codec
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.GELU()]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Linear(cin, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x * 2 - 1)  # (B,4c,H/16,W/16), pixels centred on 0
        return self.proj(h.mean(dim=(2, 3)))  # (B,dim)


class QuestionEncoder(nn.Module):
    """Word ids (B,L) -> (B,dim): embedding + GRU; the last real word's state summarises it.

    With `pick_word`, a second summary is appended, (B,2*dim) in all: one word's embedding, chosen by a
    learned attention over the words. A question that names an object ("... the RED object ...")
    then hands the relation head the name alone, the same whatever the template around it, so
    finding the red object is learned once for every kind of question about it.
    """

    def __init__(self, n_words: int, word_dim: int, dim: int, pick_word: bool = False):
        super().__init__()
        self.embed = nn.Embedding(n_words, word_dim, padding_idx=0)
        self.gru = nn.GRU(word_dim, dim, batch_first=True)
        self.word_score = nn.Linear(word_dim, 1) if pick_word else None
        self.word_proj = nn.Linear(word_dim, dim) if pick_word else None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        words = self.embed(ids)  # (B,L,word_dim)
        out, _ = self.gru(words)  # (B,L,dim)
        n = (ids != 0).sum(dim=1).clamp(min=1)  # (B,) real words (padding is at the end)
        summary = out[torch.arange(len(ids)), n - 1]  # (B,dim)
        if self.word_score is None:
            return summary
        scores = self.word_score(words).squeeze(2).masked_fill(ids == 0, float("-inf"))  # (B,L)
        picked = (torch.softmax(scores, dim=1)[:, :, None] * words).sum(dim=1)  # (B,word_dim)
        return torch.cat([summary, self.word_proj(picked)], dim=1)  # (B,2*dim)


class Critic(nn.Module):
    """forward(images [0,1] (B,3,H,W), question ids (B,L)) -> logits (B, n_answers)."""

    def __init__(self, cfg: CriticConfig, vocab: Vocabulary):
        super().__init__()
        if cfg.head not in HEADS:
            raise VQAGanError(f"critic head: unknown {cfg.head!r} (expected one of {', '.join(HEADS)})")
        self.cfg, self.vocab = cfg, vocab
        relation = cfg.head == "relation"  # built in this order either way, so a seed gives the same weights
        self.image = ObjectEncoder(cfg.dim) if relation else ImageEncoder(cfg.channels, cfg.dim)
        self.question = QuestionEncoder(len(vocab.words), cfg.word_dim, cfg.dim, pick_word=relation)
        if relation:
            self.head = RelationHead(cfg.dim, cfg.hidden, len(vocab.answers), cfg.dropout)
        else:
            self.head = nn.Sequential(
                nn.Linear(cfg.dim, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, len(vocab.answers))
            )

    def fuse(self, v: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Image features (one row per question) and question features -> logits (B,A)."""
        if self.cfg.head == "relation":
            return self.head(v, q)
        return self.head(torch.tanh(v) * torch.tanh(q))  # (B,A)

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.image(images), self.question(questions))


def freeze(model: nn.Module) -> nn.Module:
    """eval() + no parameter gradients. Gradients still flow to the *inputs*."""
    model.eval()
    model.requires_grad_(False)
    return model


def save_critic(model: Critic, path, card: dict) -> None:
    card = dict(card, kind="critic", config=to_dict(model.cfg), vocab=model.vocab.to_dict())
    save_checkpoint(path, model.state_dict(), card)


def load_critic(spec: str = "critic-easyvqa", vocab: Vocabulary | None = None) -> nn.Module:
    """A shipped name ('critic-easyvqa'), a checkpoint path, or 'vilt:/local/dir' -> frozen critic.

    A ViLT critic answers over the dataset's answers: pass that dataset's `vocab` (e.g. COCO's
    top-K answers); without one it maps onto the default dataset's answers.
    """
    spec = str(spec)
    if spec.startswith("vilt:"):
        vocab = vocab if vocab is not None else get_dataset(DEFAULT).build_vocabulary()
        return freeze(ViltCritic.from_pretrained(spec[len("vilt:"):], vocab))
    tensors, card = load_checkpoint(spec, expected_kind="critic")
    model = Critic(from_dict(CriticConfig, card.get("config", {}), f"{spec}: card config"), Vocabulary.from_dict(card["vocab"]))
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise VQAGanError(f"{spec}: critic weights do not match its card's config ({str(e).splitlines()[0]})") from None
    model.card = card
    return freeze(model)


def one_cycle(opt, cfg, n_images: int, batch: int, warmup_steps: int = 0, rising: float = 0.1):
    """(total steps, one-cycle LR schedule) for `cfg.epochs` passes over n_images, capped by cfg.max_steps.

    With `warmup_steps`, the schedule is returned for those steps alone; `lr_cycle` gives the rest its own."""
    steps_per_epoch = -(-n_images // batch)
    total = cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    return total, lr_cycle(opt, cfg, min(warmup_steps, total) if warmup_steps else total, rising)


def lr_cycle(opt, cfg, steps: int, rising: float = 0.1):
    """A one-cycle schedule over `steps` (rising for the `rising` share of them, then annealed to ~0); after a
    warm-up, the schedule of the steps that follow it (see CriticConfig.warmup_steps)."""
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1), pct_start=rising)


def augment(x: torch.Tensor, noise: float, generator: torch.Generator, flip: bool = True) -> torch.Tensor:
    """Left-right flips where the answers survive them (the dataset's MIRROR_SAFE) and Gaussian pixel noise."""
    flipped = torch.rand(len(x), generator=generator) < 0.5  # drawn either way: one random stream for both
    if flip:
        x = torch.where(flipped[:, None, None, None], x.flip(-1), x)
    sigma = noise * torch.rand(len(x), 1, 1, 1, generator=generator)  # per image, 0..noise
    return (x + sigma * torch.randn(x.shape, generator=generator)).clamp(0, 1)


def jitter_edges(x: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Images (B,3,H,W) in [0,1] -> the same with a random share (0..rate, per image) of their edge pixels
    recoloured: an object's pixel beside the background becomes background, a background pixel beside an
    object takes that object's colour. The background is each image's border median colour."""
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], dim=2)  # (B,3,4S)
    background = border.median(dim=2).values[:, :, None, None]  # (B,3,1,1)
    on = (x - background).abs().amax(dim=1, keepdim=True) > 0.1  # (B,1,H,W): object pixels
    h, w = x.shape[-2:]
    # Each pixel's four neighbours; beyond the border a pixel's neighbour is itself (no wrapping round).
    padded_on = F.pad(on.float(), (1, 1, 1, 1), mode="replicate") > 0.5
    padded_x = F.pad(x, (1, 1, 1, 1), mode="replicate")
    beside_background = torch.zeros_like(on)
    neighbour, has_neighbour = torch.zeros_like(x), torch.zeros_like(on)
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        window = (slice(None), slice(None), slice(1 + dy, 1 + dy + h), slice(1 + dx, 1 + dx + w))
        shifted_on = padded_on[window]
        beside_background |= ~shifted_on
        neighbour = torch.where(shifted_on & ~has_neighbour, padded_x[window], neighbour)
        has_neighbour |= shifted_on
    share = rate * torch.rand(len(x), 1, 1, 1, generator=generator)  # (B,1,1,1)
    chosen = torch.rand(on.shape, generator=generator) < share
    x = torch.where(chosen & on & beside_background, background, x)
    return torch.where(chosen & ~on & has_neighbour, neighbour, x)


def ask(questions: list[int], k: int | None, generator: torch.Generator) -> list[int]:
    """All of an image's questions, or k of them drawn at random: with 36 questions an image, a step's
    relation module then spends its passes on more images rather than on every question of few."""
    if k is None or k >= len(questions):
        return questions
    return [questions[i] for i in torch.randperm(len(questions), generator=generator)[:k].tolist()]


def warmup_questions(train, by_image: list[list[int]], data, group: str | None) -> list[list[int]]:
    """Each image's questions of the warm-up group (all of them when there is no group)."""
    if group is None:
        return by_image
    if group not in data.QUESTION_GROUPS:
        raise VQAGanError(f"warmup_group: {group!r} is not a question group of {data.NAME} "
                          f"(its groups: {', '.join(data.QUESTION_GROUPS) or 'none'})")
    kinds = set(data.QUESTION_GROUPS[group])
    return [[j for j in qs if train.types[j] in kinds] for qs in by_image]


def train_critic(cfg: CriticConfig, log_every: int = 50, log=print) -> tuple[Critic, dict]:
    """Train on the dataset's train split, return (frozen model, metrics).

    Batches are made of *images*: the CNN runs once per image and its feature is reused
    for all ~10 questions of that image, which makes training ~10x cheaper on a CPU.
    """
    seed_everything(cfg.seed)
    data = get_dataset(cfg.data.name)
    train = data.load_split("train", limit_images=cfg.limit_images)
    vocab = data.build_vocabulary()  # always from the full train split, so ids match the shipped models
    qids, answers, by_image = encode_questions(train, vocab)
    warmup = warmup_questions(train, by_image, data, cfg.warmup_group)
    model = Critic(cfg, vocab)
    if cfg.head == "relation":
        model.image.seed_prototypes(train.images[:512])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total, sched = one_cycle(opt, cfg, len(train.images), cfg.images_per_batch, cfg.warmup_steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, start = 0, time.time()
    model.train()
    while step < total:
        for rows in torch.randperm(len(train.images), generator=gen).split(cfg.images_per_batch):
            if step >= total:
                break
            x = train.images[rows].float() / 255.0  # (b,3,64,64)
            if cfg.edge_jitter > 0:  # drawn only when asked for, so runs without it keep their random stream
                x = jitter_edges(x, cfg.edge_jitter, gen)
            x = augment(x, cfg.noise, gen, flip=data.MIRROR_SAFE)
            pool = warmup if step < cfg.warmup_steps else by_image
            asked = [ask(pool[r], cfg.questions_per_image, gen) for r in rows.tolist()]  # question rows per image
            picked = torch.tensor([j for js in asked for j in js])
            which = torch.repeat_interleave(torch.arange(len(rows)), torch.tensor([len(js) for js in asked]))
            v = model.image(x)[which]  # (b_q,dim): one CNN pass per image
            logits = model.fuse(v, model.question(qids[picked]))  # (b_q,A)
            loss = F.cross_entropy(logits, answers[picked])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step == cfg.warmup_steps < total:
                sched = lr_cycle(opt, cfg, total - step)
            if log and (step % log_every == 0 or step == total):
                acc = (logits.argmax(1) == answers[picked]).float().mean()
                log(f"step {step}/{total}  loss {loss.item():.4f}  batch acc {acc:.3f}  {time.time() - start:.0f}s")
    freeze(model)
    return model, {"train_seconds": round(time.time() - start, 1), "steps": step}
