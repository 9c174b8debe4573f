"""The learned judge: a tiny ViLT (transformers' ViltForQuestionAnswering) trained from scratch.

A second, *different* reader of reconstructions: a vision-language transformer over
16x16 pixel patches and question words (Kim et al. 2021, "ViLT"), not a CNN, trained with
another seed. It is never used in any training loss, so a decoder that merely learned
the critic's quirks is caught here.

    [CLS] question words ---\\
                             transformer (joint attention) -> pooled [CLS] -> logits (B,13)
    16 patches of 16x16 -----/

Our Vocabulary's ids are the token ids (0 = padding, so the attention mask is ids != 0),
plus one extra id for [CLS], whose final state the QA head reads.
Introduced in notebooks/04_vqa_critic.ipynb.
"""
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from vqagan_lib.answerers.critic import augment, freeze, one_cycle
from vqagan_lib.checkpoint import load_checkpoint, save_checkpoint
from vqagan_lib.config import to_dict
from vqagan_lib.data.registry import DataChoice, get_dataset
from vqagan_lib.data.split import encode_questions
from vqagan_lib.data.vocab import Vocabulary
from vqagan_lib.errors import VQAGanError
from vqagan_lib.runtime import seed_everything


@dataclass
class JudgeConfig:
    data: DataChoice = field(default_factory=DataChoice)  # the dataset it judges: its questions, vocabulary and answers
    hidden: int = 128  # transformer width; 768 in the public ViLT, far more than 13 answers need
    layers: int = 2  # depth: enough to relate one question word to one shape
    heads: int = 4
    patch_size: int = 16  # 16 patches on 64x64: 8 px patches were no more accurate and cost 4x the tokens
    dropout: float = 0.0  # as in ViLT; augmentation does the regularising
    epochs: int = 600  # passes over the training *images*, one question each; long, for yes/no (see train_judge)
    batch_size: int = 64  # small batches, more steps: on a CPU the step count is what buys accuracy
    lr: float = 1e-3  # AdamW, one-cycle: transformers from scratch want warm-up
    weight_decay: float = 0.01
    noise: float = 0.04  # same pixel-noise augmentation as the critic
    seed: int = 1  # not the critic's seed: an independent reader
    subtract_background: bool = True  # feed (image - its border median colour): background patches become ~0
    init_std: float = 0.02  # ViLT's weight init, made for width 768; at width 128 attention starts (and stays) near uniform
    sincos_positions: bool = False  # start the patch positions at 2-D sines and cosines (still learnt), not near zero
    warmup_fraction: float = 0.1  # share of the one-cycle schedule spent rising to lr
    shape_steps: int = 1000  # first N steps ask only "what shape" questions (see train_judge)
    open_fraction: float = 0.5  # afterwards, this share of draws is a "what shape / what colour" question
    # Before all of that, stages of pictures with fewer objects, "OBJECTS:TYPES:STEPS,...": TYPES are
    # question families or groups joined by "+"; families that relate objects need OBJECTS >= 2 (see object_stages).
    object_stages: str = ""
    limit_images: int | None = None  # keep only the first N training images (QUICK runs)
    max_steps: int | None = None  # stop early after this many steps (QUICK runs and tests)


def vilt_config(cfg: JudgeConfig, vocab: Vocabulary, image_size: int):
    """The transformers ViltConfig for our tiny judge (stored whole in the checkpoint card)."""
    from transformers import ViltConfig

    return ViltConfig(
        vocab_size=len(vocab.words) + 1,  # + [CLS]
        max_position_embeddings=max(16, vocab.max_len + 1),
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=4 * cfg.hidden,
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
        image_size=image_size,
        patch_size=cfg.patch_size,
        max_image_length=-1,  # use every patch (ViLT samples a subset of large images)
        initializer_range=cfg.init_std,
        id2label=dict(enumerate(vocab.answers)),
        label2id={a: i for i, a in enumerate(vocab.answers)},
    )


class ViltJudge(nn.Module):
    """forward(images [0,1] (B,3,H,W), question ids (B,L)) -> logits (B, n_answers), like the critic."""

    def __init__(self, vilt, vocab: Vocabulary, subtract_background: bool = False):
        super().__init__()
        self.vilt, self.vocab, self.subtract_background = vilt, vocab, subtract_background
        self.cls_id = len(vocab.words)

    def embed_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,S,S) [0,1] -> (B,1+N,hidden): ViLT's own patch, position and [image CLS] embeddings.

        Equal to ViltEmbeddings.visual_embed for full, same-size images, without its per-image
        Python loops and random patch order (which attention ignores), so faster on a CPU.
        """
        emb = self.vilt.vilt.embeddings
        if self.subtract_background:
            border = torch.cat([images[:, :, 0], images[:, :, -1], images[:, :, :, 0], images[:, :, :, -1]], dim=2)  # (B,3,4S)
            images = images - border.median(dim=2).values[:, :, None, None] + 0.5  # background -> 0 after *2-1
        patches = emb.patch_embeddings(images * 2 - 1)  # (B,hidden,S/p,S/p); ViLT's normalisation, mean 0.5 std 0.5
        patches = patches.flatten(2).transpose(1, 2) + emb.position_embeddings[:, 1:]  # (B,N,hidden)
        cls = (emb.cls_token + emb.position_embeddings[:, :1]).expand(len(images), -1, -1)  # (B,1,hidden)
        return torch.cat([cls, patches], dim=1)

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        cls = torch.full((len(questions), 1), self.cls_id, dtype=questions.dtype, device=questions.device)
        ids = torch.cat([cls, questions], dim=1)  # (B,1+L)
        size = self.vilt.config.image_size
        if images.shape[-1] != size or images.shape[-2] != size:
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        image_embeds = self.embed_image(images)  # (B,1+N,hidden)
        image_mask = torch.ones(image_embeds.shape[:2], dtype=torch.long, device=images.device)  # every patch is real
        out = self.vilt(input_ids=ids, attention_mask=(ids != 0).long(), image_embeds=image_embeds, pixel_mask=image_mask)
        return out.logits  # (B,A)


def build_judge(cfg: JudgeConfig, vocab: Vocabulary) -> ViltJudge:
    from transformers import ViltForQuestionAnswering

    config = vilt_config(cfg, vocab, get_dataset(cfg.data.name).IMAGE_SIZE)
    model = ViltJudge(ViltForQuestionAnswering(config), vocab, cfg.subtract_background)
    if cfg.sincos_positions:
        with torch.no_grad():
            model.vilt.vilt.embeddings.position_embeddings[0, 1:] = sincos_positions(config.image_size // cfg.patch_size, cfg.hidden)
    return model


def sincos_positions(grid: int, width: int) -> torch.Tensor:
    """(grid*grid, width) embeddings of a patch grid, row-major: a quarter of the width each for sin x, cos x,
    sin y, cos y, at periods spaced geometrically from twice the grid down to two patches. Unit-sized,
    unlike ViLT's near-zero start, so where a patch lies is legible from the first step."""
    quarter = width // 4
    periods = 2.0 * grid * (1.0 / grid) ** (torch.arange(quarter, dtype=torch.float32) / max(quarter - 1, 1))
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32), indexing="ij")
    angles = [2 * torch.pi * v.flatten()[:, None] / periods for v in (xs, ys)]  # each (N,quarter)
    table = torch.cat([f(a) for a in angles for f in (torch.sin, torch.cos)], dim=1)  # (N,4*quarter)
    return torch.nn.functional.pad(table, (0, width - table.shape[1]))


def save_judge(model: ViltJudge, path, card: dict, cfg: JudgeConfig) -> None:
    card = dict(card, kind="judge-vilt", config=to_dict(cfg), vilt_config=model.vilt.config.to_dict(), vocab=model.vocab.to_dict())
    tensors = {k: v for k, v in model.vilt.state_dict().items()}
    # Tied weights share storage; safetensors refuses shared tensors, so store copies.
    seen = {}
    for k, v in tensors.items():
        key = v.data_ptr()
        tensors[k] = v.clone() if key in seen else v
        seen[key] = k
    save_checkpoint(path, tensors, card)


def load_judge(spec: str = "judge-vilt-easyvqa") -> ViltJudge:
    """A shipped name or checkpoint path -> the frozen ViLT judge (same call signature as the critic)."""
    from transformers import ViltConfig, ViltForQuestionAnswering

    tensors, card = load_checkpoint(spec, expected_kind="judge-vilt")
    config = ViltConfig.from_dict(card["vilt_config"])
    vilt = ViltForQuestionAnswering(config)
    try:
        vilt.load_state_dict(tensors)
    except RuntimeError as e:
        raise VQAGanError(f"{spec}: judge weights do not match its card's ViltConfig ({str(e).splitlines()[0]})") from None
    model = ViltJudge(vilt, Vocabulary.from_dict(card["vocab"]), bool(card["config"].get("subtract_background", False)))
    model.card = card
    return freeze(model)


def question_pools(types: list[str], by_image: list[list[int]]) -> dict[str, list[list[int]]]:
    """Each image's question indices: all of them, the "shape" ones, the open (not yes/no) ones."""
    return {"all": by_image,
            "shape": [[j for j in qs if types[j] == "shape"] for qs in by_image],
            "open": [[j for j in qs if types[j] != "yes/no"] for qs in by_image]}


def pick_questions(rows: list[int], pools: dict, gen: torch.Generator, shapes_only: bool = False,
                   open_fraction: float = 0.0) -> torch.Tensor:
    """One question index per image row: a shape question while `shapes_only`, else an open one
    with probability `open_fraction`, else any; an image without such a question gives any of its own."""
    pick = torch.randint(0, 1 << 30, (len(rows),), generator=gen).tolist()
    # Draw nothing more when unused, so runs without the curriculum keep their random stream.
    use_open = (torch.rand(len(rows), generator=gen) < open_fraction).tolist() if open_fraction > 0 else [False] * len(rows)
    chosen = []
    for r, k, o in zip(rows, pick, use_open):
        pool = (pools["shape"][r] if shapes_only else pools["open"][r] if o else []) or pools["all"][r]
        chosen.append(pool[k % len(pool)])
    return torch.tensor(chosen)


@dataclass(frozen=True)
class ObjectStage:
    objects: int  # objects drawn in each picture: the asked one and others picked at random
    types: frozenset  # the question families asked
    steps: int


def object_stages(spec: str, data) -> list[ObjectStage]:
    """JudgeConfig.object_stages parsed and checked against the dataset ([] for "")."""
    if not spec:
        return []
    missing = [name for name in ("SINGLE_OBJECT_TYPES", "asked_object", "render", "answer") if not hasattr(data, name)]
    if missing:
        raise VQAGanError(f"object_stages: {data.NAME} cannot draw pictures with fewer objects (it has no {', '.join(missing)})")
    stages = []
    for part in spec.split(","):
        try:
            objects, names, steps = part.split(":")
            objects, steps = int(objects), int(steps)
        except ValueError:
            raise VQAGanError(f"object_stages: {part!r} is not OBJECTS:TYPES:STEPS") from None
        types = {kind for name in names.split("+") for kind in data.QUESTION_GROUPS.get(name, (name,))}
        unknown = sorted(types - set(data.QUESTION_TYPES))
        relating = sorted(types - set(data.SINGLE_OBJECT_TYPES))  # these need a second object in the picture
        if unknown or objects < 1 or steps < 0 or (relating and objects < 2):
            raise VQAGanError(f"object_stages: {part!r} needs known question families ({', '.join(data.QUESTION_TYPES)}), "
                              f"steps >= 0 and at least one object, two for {', '.join(relating) or 'families that relate objects'}"
                              + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        stages.append(ObjectStage(objects, frozenset(types), steps))
    return stages


def stage_at(stages: list[ObjectStage], step: int) -> ObjectStage | None:
    """The stage that `step` falls in, or None once they are all done."""
    for stage in stages:
        if step < stage.steps:
            return stage
        step -= stage.steps
    return None


def keep_objects(asked: torch.Tensor, objects: int, n_objects: int, gen: torch.Generator) -> torch.Tensor:
    """(B,) asked rows -> (B,n_objects) bool: the asked object and objects - 1 others at random."""
    scores = torch.rand(len(asked), n_objects, generator=gen)
    scores[torch.arange(len(asked)), asked] = 2.0  # above every random score: always kept
    return scores.argsort(dim=1, descending=True).argsort(dim=1) < objects


def train_judge(cfg: JudgeConfig, log_every: int = 50, log=print) -> tuple[ViltJudge, dict]:
    """Train the tiny ViLT on the dataset's train questions; return (frozen model, metrics)."""
    seed_everything(cfg.seed)
    data = get_dataset(cfg.data.name)
    train = data.load_split("train", limit_images=cfg.limit_images)
    vocab = data.build_vocabulary()
    qids, answers, by_image = encode_questions(train, vocab)
    # Trained on all questions from the start, the tiny ViLT learns colours and the answer priors
    # but hardly shapes (not far above chance), so its first steps ask about shapes alone; then
    # oversampling the open questions keeps both skills. Yes/no (compare the question's word with
    # the image) is learned last and slowest, which is why the defaults run long. Drawing yes/no
    # questions answered "yes" half the time made it worse.
    # Notebook 04 (and its Exercise 6) shows the run without the curriculum.
    pools = question_pools(train.types, by_image)
    # A transformer reading six objects must learn which one a question names before any answer pays,
    # and from whole scenes it stayed at chance in every run we tried. Pictures of the asked object
    # alone teach reading one object; adding the others a few at a time then teaches which one is asked.
    stages = object_stages(cfg.object_stages, data)
    if stages:
        asked_of = torch.tensor([data.asked_object(q) for q in train.questions])  # (N_q,)
        stage_pools = {stage.types: [[j for j in qs if train.types[j] in stage.types] for qs in by_image] for stage in stages}
    model = build_judge(cfg, vocab)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total, sched = one_cycle(opt, cfg, len(train.images), cfg.batch_size, rising=cfg.warmup_fraction)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, start = 0, time.time()
    model.train()
    while step < total:
        # One random question per image and step: the hard part is seeing the shape, so spend
        # the (costly) transformer passes on many images rather than on every question of few.
        for rows in torch.randperm(len(train.images), generator=gen).split(cfg.batch_size):
            if step >= total:
                break
            stage = stage_at(stages, step)
            if stage is None:
                batch = pick_questions(rows.tolist(), pools, gen, step < cfg.shape_steps, cfg.open_fraction)
                images = train.images[train.question_image[batch]]  # (b,3,S,S) uint8
                targets = answers[batch]
            else:
                batch = pick_questions(rows.tolist(), {"all": stage_pools[stage.types]}, gen)
                scenes = train.truth[train.question_image[batch]]
                keep = keep_objects(asked_of[batch], stage.objects, train.truth.shape[1], gen)
                images = data.render(scenes, keep)
                # A relation ranges over the objects in the picture: its answer there is not the scene's.
                targets = torch.tensor([vocab.answer_index(data.answer(train.questions[j], scene, present))
                                        for j, scene, present in zip(batch.tolist(), scenes.tolist(), keep.tolist())])
            x = augment(images.float() / 255.0, cfg.noise, gen, flip=data.MIRROR_SAFE)  # (b,3,S,S)
            logits = model(x, qids[batch])  # (b,A)
            loss = F.cross_entropy(logits, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if log and (step % log_every == 0 or step == total):
                acc = (logits.argmax(1) == targets).float().mean()
                log(f"step {step}/{total}  loss {loss.item():.4f}  batch acc {acc:.3f}  {time.time() - start:.0f}s")
    freeze(model)
    return model, {"train_seconds": round(time.time() - start, 1), "steps": step}
