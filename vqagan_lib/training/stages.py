"""The discrete codec's training stages: put the answers into the code first, then learn to draw them.

    stage "answers"   (no pixels):  x -> answer code a -> answer_head -> critic's answer head
                                    loss: CE against the critic's answers on the original x, for the
                                    image's own questions and a few probe questions asked of every image
    stage "generator" (code frozen): a (+ geometry code g) -> decoder -> x_hat
                                    loss: pixels toward a target + [Dis_l + GAN] + [critic through jitter]
    stage "joint":    the engine's usual end-to-end step (the "no stage 1" ablation, or a fine-tune from a checkpoint)
    merged cells:     stage "generator" from a finished point with model.answer_symbols (the ladder: 0 steps): its
                      cells that the critic answers alike become one symbol (merge_answer_cells), so the rate pays per answer

Why stage "answers" first: a code trained end to end from pixels collapses (every image, one
code) before the critic's gradient has anything to push through the rounding, and a pixel loss
spends a handful of bits on position, not on colour and shape. Distilling the critic's answers
into the code needs no decoder, so it is cheap; the critic is frozen and the judges never see it.

Why an exemplar target in stage "generator" when the code holds no geometry: the pixel-optimal
image for a code that says "red circle" but not where is the average of all red circles, a
wash. The code's exemplar is one real training image of that code (the member whose pictures
the critic answers best on all the code's questions), so the decoder is asked to draw one crisp,
real shape that the code implies. When a geometry code is present the target is the original.

Introduced in notebooks/05_combined_training.ipynb.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vqagan_lib.answerers.critic import QuestionEncoder
from vqagan_lib.errors import VQAGanError
from vqagan_lib.training.batches import Batch, TrainData

STAGES = ("joint", "answers", "generator")


@dataclass
class AnswerStageConfig:
    # Asked of every image besides its own questions: the two answers everything else follows from.
    probe_questions: tuple[str, ...] = ("what shape is in the image?", "what color is the shape?")
    flip: bool = True  # left-right flips: the answers survive them, the code should not depend on side


@dataclass
class GeneratorStageConfig:
    target: str = "auto"  # "exemplar", "original", or "auto": exemplar when the code holds no geometry
    exemplar_candidates: int = 64  # members of a code scored by the critic when choosing its exemplar
    # What the --init checkpoint gives: "answer_code" (a stage 'answers' checkpoint: the decoder starts new),
    # or "codec" (a finished point with as many geometry digits or more: everything, its first digits kept).
    start: str = "answer_code"
    frozen: tuple[str, ...] = ()  # decoder parts kept exactly as copied (here, or in any run from --init), e.g. ("sprite", "colour")
    # Batches drawn uniformly over the answer codes (always so toward exemplars): a geometry point learns
    # one sprite per code, and a code few training images use would otherwise be drawn from little practice.
    balance: bool = False


class AnswerStudent(nn.Module):
    """For critics without a separate question encoder and answer head (ViLT): our own small ones."""

    def __init__(self, n_words: int, n_answers: int, dim: int):
        super().__init__()
        self.question = QuestionEncoder(n_words, 64, dim)
        self.head = nn.Sequential(nn.Linear(dim, 256), nn.GELU(), nn.Linear(256, n_answers))

    def fuse(self, v: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(v) * torch.tanh(q))


def answer_reader(critic, model) -> nn.Module | None:
    """None when the critic's own question encoder and head can read the code; else a student to train."""
    if hasattr(critic, "fuse") and hasattr(critic, "question"):
        if getattr(critic.cfg, "dim", None) != model.cfg.answer_head_dim:
            raise VQAGanError(f"model.answer_head_dim is {model.cfg.answer_head_dim} but the critic's joint "
                              f"features have {critic.cfg.dim} dims: set --model.answer_head_dim {critic.cfg.dim}")
        return None
    return AnswerStudent(len(critic.vocab.words), len(critic.vocab.answers), model.cfg.answer_head_dim)


def answers_from_code(model, critic, student, code: torch.Tensor, questions: torch.Tensor,
                      question_features: torch.Tensor | None = None) -> torch.Tensor:
    """Logits (B, A) of the critic's answer head (or the student's) reading the code instead of the image.

    `question_features`: the frozen critic's encodings of `questions`, when already computed.
    """
    reader = student if student is not None else critic
    if question_features is None or student is not None:
        question_features = reader.question(questions)
    return reader.fuse(model.answer_head(code), question_features)


@torch.no_grad()
def question_features(critic, questions: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """The frozen critic's question encodings (N, D), computed once: its GRU is the slow part of a step."""
    return torch.cat([critic.question(questions[i:i + batch]) for i in range(0, len(questions), batch)])


def probe_ids(critic, cfg: AnswerStageConfig, device) -> torch.Tensor:
    """The probe questions as word ids (P, L) in the critic's vocabulary."""
    if not cfg.probe_questions:
        return torch.zeros(0, critic.vocab.max_len, dtype=torch.long, device=device)
    return torch.stack([critic.vocab.encode(q) for q in cfg.probe_questions]).to(device)


def critic_logits(critic, images: torch.Tensor, questions: torch.Tensor, image_index: torch.Tensor) -> torch.Tensor:
    """The critic's logits (Q, A) for questions[i] about images[image_index[i]]. A critic with its own image
    encoder (the CNN critic) sees each image once, however many questions it is asked."""
    if hasattr(critic, "image") and hasattr(critic, "fuse"):
        return critic.fuse(critic.image(images)[image_index], critic.question(questions))
    return critic(images[image_index], questions)


@torch.no_grad()
def critic_targets(critic, data: TrainData, probes: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """What the critic answers on the original training images, computed once before stage "answers":
    to every question row (N_q,), and to every probe question about every image (N_img, P)."""
    device = probes.device
    own, probe = [], []
    for start in range(0, len(data.images), batch):
        rows = torch.arange(start, min(start + batch, len(data.images)))
        x = data.gather_images(rows).to(device)
        asked = torch.isin(data.question_image, rows).nonzero().flatten()  # this chunk's question rows, in order
        where = (data.question_image[asked] - start).to(device)
        own.append(critic_logits(critic, x, data.questions[asked].to(device), where).argmax(-1).cpu())
        every = torch.arange(len(x), device=device)
        answers = [critic_logits(critic, x, p.expand(len(x), -1), every).argmax(-1).cpu() for p in probes]
        probe.append(torch.stack(answers, 1) if answers else torch.zeros(len(x), 0, dtype=torch.long))
    return torch.cat(own), torch.cat(probe)


def answer_step(model, critic, student, batch: Batch, own: torch.Tensor, probe: torch.Tensor,
                cfg: AnswerStageConfig, probes: torch.Tensor, opt, features: torch.Tensor | None = None) -> dict:
    """One update of the answer encoder and head (and student): the critic's answers, read from the code.

    `own` (B,) and `probe` (B, P) are the critic's answers on the batch's original images (critic_targets);
    `features` the critic's encodings of the batch's questions then the probes, (B*(1+P), D), if cached.
    """
    x = batch.images
    if cfg.flip:  # the answers survive a left-right flip, so the targets do too
        flip = torch.rand(len(x), device=x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    b = len(x)
    questions = torch.cat([batch.questions] + [p.expand(b, -1) for p in probes])  # (B*(1+P), L), question-major
    targets = torch.cat([own] + [probe[:, k] for k in range(probe.shape[1])]).to(x.device)
    code = model.answer_code(x).repeat(1 + len(probes), 1)
    logits = answers_from_code(model, critic, student, code, questions, features)
    loss = F.cross_entropy(logits, targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    agree = (logits.argmax(-1) == targets).float().mean()
    truth = (logits[:b].argmax(-1) == batch.answers).float().mean()
    return {"train/answer_loss": loss.detach(), "train/agree_with_critic": agree.detach(), "train/answer_acc": truth.detach()}


@torch.no_grad()
def training_codes(model, data: TrainData, batch: int = 512) -> torch.Tensor:
    """Symbols (N_img, G) of every training image: what the prior is fitted on."""
    device = next(model.parameters()).device
    rows = []
    for start in range(0, len(data.images), batch):
        images = data.gather_images(torch.arange(start, min(start + batch, len(data.images)))).to(device)
        rows.append(model.symbols_of(model.code(images)).cpu())
    return torch.cat(rows)


@torch.no_grad()
def training_cells(model, data: TrainData, batch: int = 512) -> torch.Tensor:
    """The answer grid's cell (N_img,) of every training image: what exemplars, balanced batches and the
    merge are keyed by (a merged code's symbols stand for several cells)."""
    device = next(model.parameters()).device
    return torch.cat([model.answer_fsq.to_index(model.answer_code(data.gather_images(rows).to(device))).cpu()
                      for rows in torch.arange(len(data.images)).split(batch)])


@torch.no_grad()
def fit_prior(model, data: TrainData) -> dict:
    """Fit the categorical prior on the training codes; returns the code's usage for the card."""
    symbols = training_codes(model, data)
    model.entropy_model.fit(symbols)
    answer_symbols = len(model.cfg.answer_levels) if model.cfg.answer_coding == "digits" else 1
    used = len(torch.unique(symbols[:, :answer_symbols], dim=0))
    return {"answer_codes_used": used, "prior_entropy_bits": round(model.entropy_model.entropy_bits(), 3)}


@torch.no_grad()
def merge_answer_cells(model, critic, data: TrainData, probes: torch.Tensor) -> dict:
    """Fill a merged answer code's tables (CodecConfig.answer_symbols) from the training images: the cell
    each one lands in, and what the critic answers about it to the probe questions. See merge_tables."""
    cells = training_cells(model, data)  # (N_img,)
    _, answers = critic_targets(critic, data, probes)  # (N_img, P): the critic's answers on the originals
    grid = model.answer_fsq.from_index(torch.arange(model.answer_fsq.size))
    symbol_of_cell, cell_of_symbol, usage = merge_tables(cells, answers, grid, model.cfg.answer_symbols)
    model.symbol_of_cell.copy_(symbol_of_cell)
    model.cell_of_symbol.copy_(cell_of_symbol)
    return usage


def merge_tables(cells: torch.Tensor, answers: torch.Tensor, grid: torch.Tensor, symbols: int):
    """Images' cells (N,) and answers (N, P), the cells' codes (K, d) -> symbol_of_cell (K,), cell_of_symbol (S,), usage.

    A code trained with room to spare spreads one answer over several cells (the 8-bit code uses a few
    cells for each easy-VQA class), and each extra cell costs rate. Each used cell is labelled by the
    answers most of its images get; cells with one label become one symbol, drawn as that label's most
    used cell; symbols go to labels from the most used down. Labels beyond the alphabet (the rarest)
    join the kept label that shares most of their answers; cells no image uses, their nearest used cell.
    """
    count = torch.bincount(cells, minlength=len(grid))
    label_of_cell = {}
    for cell in torch.unique(cells).tolist():
        tally = {}
        for row in map(tuple, answers[cells == cell].tolist()):
            tally[row] = tally.get(row, 0) + 1
        label_of_cell[cell] = max(tally, key=tally.get)
    members = {}
    for cell, label in label_of_cell.items():
        members.setdefault(label, []).append(cell)
    labels = sorted(members, key=lambda label: -int(count[members[label]].sum()))  # most used first
    kept = labels[:symbols]
    symbol_of_label = {label: s for s, label in enumerate(kept)}
    for label in labels[len(kept):]:
        shared = [sum(a == b for a, b in zip(label, other)) for other in kept]
        symbol_of_label[label] = max(range(len(kept)), key=lambda s: (shared[s], -s))  # ties: the more used
    used = torch.tensor(sorted(label_of_cell))
    nearest = used[torch.cdist(grid, grid[used]).argmin(1)]  # (K,): every cell's nearest used cell
    symbol_of_cell = torch.tensor([symbol_of_label[label_of_cell[int(cell)]] for cell in nearest])
    most_used = int(count.argmax())  # a symbol no label has is never sent; any cell will do
    cell_of_symbol = torch.tensor([max(members[kept[s]], key=lambda c: int(count[c])) if s < len(kept) else most_used
                                   for s in range(symbols)])
    usage = {"answer_cells_used": len(label_of_cell), "answer_labels": len(labels), "answer_labels_kept": len(kept)}
    return symbol_of_cell, cell_of_symbol, usage


@dataclass
class Exemplars:
    """One real training image per answer code, and where it lives in the training data."""
    images: torch.Tensor  # (K, 3, S, S): the exemplar of each answer code (zeros where no training image has it)
    known: torch.Tensor  # (K,) bool: codes some training image has
    question_rows: dict  # code -> (Q,) rows of the exemplar image's questions in the training data


@torch.no_grad()
def choose_exemplars(model, critic, data: TrainData, candidates: int = 64) -> Exemplars:
    """For each answer code: the training image whose pictures the critic answers best on the
    questions of all the code's training images."""
    device = next(model.parameters()).device
    index = training_cells(model, data)  # (N_img,)
    size = model.answer_fsq.size
    table = torch.zeros(size, 3, model.cfg.image_size, model.cfg.image_size)
    known = torch.zeros(size, dtype=torch.bool)
    question_rows = {}
    for code in torch.unique(index).tolist():
        members = (index == code).nonzero().flatten()
        questions = torch.isin(data.question_image, members).nonzero().flatten()  # rows of all members' questions
        q_ids, answers = data.questions[questions].to(device), data.answers[questions].to(device)
        pool = members[:candidates]
        images = data.gather_images(pool).to(device)
        # Each candidate is scored on the same questions: encode candidates and questions once, then pair them
        # (critic_logits would encode the questions again for every candidate).
        split_critic = hasattr(critic, "image") and hasattr(critic, "fuse")
        if split_critic:
            v, q = critic.image(images), critic.question(q_ids)
        scores = []
        for k, image in enumerate(images):
            logits = critic.fuse(v[k].expand(len(q), -1), q) if split_critic else critic(image.expand(len(q_ids), -1, -1, -1), q_ids)
            scores.append(logits.log_softmax(-1).gather(1, answers[:, None]).sum())  # log-likelihood of the true answers
        best = int(torch.stack(scores).argmax())
        table[code], known[code] = images[best].cpu(), True
        question_rows[code] = (data.question_image == pool[best]).nonzero().flatten()
    return Exemplars(table, known, question_rows)


@torch.no_grad()
def rows_by_code(model, data: TrainData) -> dict:
    """Answer cell -> the data's rows (question rows, or image rows when no critic asks questions) of all its
    training images: what generator.balance draws from."""
    index = training_cells(model, data)  # (N_img,)
    if data.by_question:
        index = index[data.question_image]  # (N_q,): each question row's image's code
    return {code: (index == code).nonzero().flatten() for code in torch.unique(index).tolist()}


def code_balanced_rows(code_rows: dict, batch_size: int, seed: int, step: int, rank: int = 0, world: int = 1) -> torch.Tensor:
    """Rows of a batch drawn uniformly over the codes (`code_rows`: code -> its rows of the data), one row each.

    Drawn by training image, a code that three images share would be seen a hundred times less
    often than a common one, and the decoder would draw the rare codes badly; every code the
    decoder can be sent deserves the same care. A pure function of (seed, step): resumable.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    codes = sorted(code_rows)
    picked = torch.randint(len(codes), (batch_size,), generator=generator).tolist()
    rows = torch.stack([code_rows[codes[k]][torch.randint(len(code_rows[codes[k]]), (1,), generator=generator)][0]
                        for k in picked])
    share = batch_size // world
    return rows[rank * share:(rank + 1) * share]


def pixel_target(model, x: torch.Tensor, code: torch.Tensor, exemplars: Exemplars | None) -> torch.Tensor:
    """What the decoder's output is compared with: the code's exemplar, or the original itself."""
    if exemplars is None:
        return x
    index = model.answer_fsq.to_index(code[:, :len(model.cfg.answer_levels)].detach()).cpu()
    target = exemplars.images[index].to(x.device)
    return torch.where(exemplars.known[index].to(x.device)[:, None, None, None], target, x)


def start_generator(model, source, cfg: GeneratorStageConfig) -> None:
    """Copy what stage "generator" starts from (see GeneratorStageConfig.start) and freeze what it keeps."""
    if cfg.start == "answer_code":
        copy_answer_code(model, source)
    elif cfg.start == "codec":
        copy_codec(model, source)
    else:
        raise VQAGanError(f"generator.start: unknown {cfg.start!r} (expected 'answer_code' or 'codec')")
    freeze_decoder_parts(model, cfg.frozen)


def uses_exemplars(model, cfg: GeneratorStageConfig) -> bool:
    if cfg.target not in ("auto", "exemplar", "original"):
        raise VQAGanError(f"generator.target: unknown {cfg.target!r} (expected 'auto', 'exemplar' or 'original')")
    return cfg.target == "exemplar" or (cfg.target == "auto" and not model.cfg.geometry_levels)


def copy_answer_code(model, source) -> None:
    """Start stage "generator" from a stage "answers" checkpoint: its answer encoder and head only
    (the decoder and any geometry code are new, so their shapes need not match)."""
    if tuple(source.cfg.answer_levels) != tuple(model.cfg.answer_levels):
        raise VQAGanError(f"the stage 'answers' checkpoint has answer_levels {source.cfg.answer_levels}, "
                          f"this run {model.cfg.answer_levels}: they must match")
    model.answer_encoder.load_state_dict(source.answer_encoder.state_dict())
    model.answer_head.load_state_dict(source.answer_head.state_dict())


# Tensors with one row per geometry digit: a point with fewer digits keeps the first rows (the layered
# decoder's digits are in a fixed order of jobs, so the first ones mean the same in both).
PER_DIGIT = ("geometry_encoder.head.weight", "geometry_encoder.head.bias", "decoder.digit_scale")
MERGE_TABLES = ("symbol_of_cell", "cell_of_symbol")  # a merged answer code's (CodecConfig.answer_symbols)


def copy_codec(model, source) -> None:
    """Start stage "generator" from a finished point: its answer code, decoder and geometry encoder.

    The geometry quantiser may be coarser than the source's: FSQ's grid is fixed and every digit
    lands in [-1, 1] whatever its levels, so the same encoder output is simply rounded to fewer
    bins. The prior is not copied; the stage refits it on the new code.
    """
    if tuple(source.cfg.answer_levels) != tuple(model.cfg.answer_levels) or source.cfg.decoder != model.cfg.decoder:
        raise VQAGanError(f"generator.start 'codec': the checkpoint has answer_levels {source.cfg.answer_levels} and a "
                          f"{source.cfg.decoder} decoder, this run {model.cfg.answer_levels} and {model.cfg.decoder}: they must match")
    if len(source.cfg.geometry_levels) < len(model.cfg.geometry_levels):
        raise VQAGanError(f"generator.start 'codec': the checkpoint has {len(source.cfg.geometry_levels)} geometry digits, "
                          f"this run {len(model.cfg.geometry_levels)}: a point can only keep digits it is given")
    own, theirs = model.state_dict(), source.state_dict()
    for name, tensor in theirs.items():
        if name.startswith("entropy_model.") or name not in own:
            continue
        if name in MERGE_TABLES and source.cfg.answer_symbols != model.cfg.answer_symbols:
            continue  # another alphabet: merge_answer_cells fills this run's tables
        copied = tensor[:len(own[name])] if name in PER_DIGIT else tensor
        if copied.shape != own[name].shape:  # e.g. a conv decoder, whose first layer reads every digit at once
            raise VQAGanError(f"generator.start 'codec': {name} is {tuple(tensor.shape)} in the checkpoint and "
                              f"{tuple(own[name].shape)} here; only the layered decoder can drop geometry digits")
        own[name] = copied
    model.load_state_dict(own)


def freeze_decoder_parts(model, parts) -> None:
    """Keep the named decoder parts (e.g. the layered decoder's "sprite") exactly as copied."""
    for part in parts:
        module = getattr(model.decoder, part, None)
        if not isinstance(module, nn.Module):
            raise VQAGanError(f"generator.frozen: the {model.cfg.decoder} decoder has no part {part!r}")
        module.requires_grad_(False)


def freeze_answer_code(model) -> None:
    """Stage "generator" keeps the answer code exactly as stage "answers" left it."""
    for part in (model.answer_encoder, model.answer_head):
        part.requires_grad_(False)
        part.eval()
