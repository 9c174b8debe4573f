"""One training engine for every model: rate + distortion [+ VAE-GAN terms] [+ frozen-critic VQA term].

    batch x ──> model ──> CodecOutput(x_hat, rate_bits, latent)
                  generator step:  rate.weight*bits + distortion.weight*MSE
                                   + feature_weight*||Dis_l(x)-Dis_l(x_hat)||^2 + lambda*gan.weight*g_adv
                                   + vqa.weight*CE(critic(x_hat, q), a)           -> Adam on the model
                  discriminator step: hinge(D(x), D(x_hat.detach()))              -> Adam on D
GAN off (gan.weight 0) and VQA off (vqa.weight 0) is the plain rate-distortion codec.
The same `train(cfg)` serves notebooks, the CLI and tests, on CPU, one GPU, or under
`torchrun` with DistributedDataParallel (WORLD_SIZE > 1).
Introduced in notebooks/03_vae_gan.ipynb.
"""
import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from vqagan_lib.runtime import progress_bar as tqdm  # plain text when a notebook runs headless

from vqagan_lib.answerers.critic import load_critic
from vqagan_lib.answerers.judges import critic_name
from vqagan_lib.checkpoint import load_card
from vqagan_lib.config import apply_overrides, from_dict, to_dict
from vqagan_lib.data.coco import CocoVQADataset
from vqagan_lib.data.registry import get_dataset
from vqagan_lib.errors import VQAGanError
from vqagan_lib.models.codec import CodecConfig, build_model, load_codec, save_codec
from vqagan_lib.models.discriminator import Discriminator
from vqagan_lib.runtime import work_dir
from vqagan_lib.training import distributed
from vqagan_lib.training.batches import COCO, Batch, DataConfig, TrainData, batch_indices
from vqagan_lib.training.log import RunLog
from vqagan_lib.training.stages import (STAGES, AnswerStageConfig, GeneratorStageConfig, answer_reader, answer_step, critic_targets, question_features,
                                        choose_exemplars, code_balanced_rows, fit_prior, freeze_answer_code, freeze_decoder_parts, merge_answer_cells, pixel_target, probe_ids,
                                        rows_by_code, start_generator, uses_exemplars)
from vqagan_lib.training.losses import GANConfig, generator_gan_loss, hinge_d_loss, pyramid_mse
from vqagan_lib.training.state import load_state, save_state


@dataclass
class RateConfig:
    # Loss per bit/image, against MSE*1000. Much weaker (0.1) lets the encoder inflate its latent until the
    # prior's likelihood floor (zero gradient) traps the rate at its maximum; 1.0 trains steadily downwards.
    weight: float = 1.0
    target: float | None = None  # bits/image; when set only the excess mean rate is penalised, so runs meet a rate
    # Annealing: the target starts at `target_start` and falls linearly to `target` over `anneal_steps`.
    # Squeezing from step 0 starves the codec before it has learnt what to keep; a falling target
    # lets it learn a representation first and then decide what to drop.
    target_start: float | None = None  # None: no annealing
    anneal_steps: int = 0


@dataclass
class DistortionConfig:
    weight: float = 1000.0  # on pixel MSE in [0,1]^2: MSE 0.01 (PSNR 20 dB) then costs as much as 1000 bits at rate 0.01
    # 1: MSE at full resolution only. k > 1: the mean MSE over the image and its k-1 successive 2x2 averages.
    # Coarse copies overlap where sharp ones do not, so a drawing far from its target still feels which
    # way to move (the layered decoder's box needs this before its shape lines up).
    scales: int = 1


@dataclass
class VQAConfig:
    weight: float = 0.0  # 0.0 = off; > 0 adds the frozen critic's loss on (x_hat, question)
    critic: str | None = None  # None: the dataset's shipped critic (critic-<data.name>); a name, a checkpoint path, or "vilt:/local/dir"
    # More frozen critics scoring x_hat beside `critic` (e.g. critic-easyvqa-noisy, trained on noisier images,
    # another seed): the VQA term is their mean, so a pattern that games one critic's quirks stops paying.
    extra_critics: tuple[str, ...] = ()
    mode: str = "true-answers"  # "true-answers": CE against the labels; "agree-with-original": CE against critic(x)
    # The critic sees x_hat through a random jitter (expectation over transformations): a pattern that
    # only fools it at one exact pixel position and noise level stops paying, a real shape still does.
    shift: float = 3.0  # random translation, pixels, per image (bilinear: also a slight blur)
    noise: float = 0.03  # std of Gaussian noise added to x_hat before the critic


@dataclass
class OptimConfig:
    lr: float = 1e-3  # Adam on the codec: small 64x64 models tolerate a large step
    betas: tuple[float, float] = (0.9, 0.999)  # Adam defaults; (0.5, 0.9) is steadier once a GAN term moves the target
    weight_decay: float = 0.0  # none: the rate term already regularises the latent
    grad_clip: float | None = None  # no clipping: Adam is scale-free; set e.g. 10.0 if the GAN's first steps spike
    schedule: str = "constant"  # or "cosine": lr falls to 0 over the run, so a decoder settles on its targets


@dataclass
class TrainConfig:
    # The model: model.model = "codec" (notebook 02 on) or "vae" (notebook 01); one field says which, not two.
    model: CodecConfig = field(default_factory=CodecConfig)
    rate: RateConfig = field(default_factory=RateConfig)
    distortion: DistortionConfig = field(default_factory=DistortionConfig)
    gan: GANConfig = field(default_factory=GANConfig)
    vqa: VQAConfig = field(default_factory=VQAConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # What this run trains (training/stages.py): "joint" = the whole model end to end (notebooks 02-05's
    # engine); "answers" and "generator" = the discrete codec's two stages (model.model "fsq").
    stage: str = "joint"
    answers: AnswerStageConfig = field(default_factory=AnswerStageConfig)
    generator: GeneratorStageConfig = field(default_factory=GeneratorStageConfig)
    steps: int = 2000  # about 35 epochs of easy-VQA's 3,600 training images at batch 64
    batch_size: int = 64  # global batch: under DDP each of W processes takes batch_size / W
    seed: int = 0  # model init, data order and the relaxation noise all follow from it
    device: str = "auto"  # "auto": the GPU when there is one
    name: str = "codec"  # run name: folder runs/NAME and the saved codec's card name
    out_dir: str | None = None  # None -> runs/NAME under runtime.work_dir() (git-ignored)
    log_every: int = 10  # steps between log.csv / TensorBoard rows
    eval_every: int = 500  # steps between held-out rate / PSNR measurements
    save_every: int = 500  # steps between resumable state checkpoints


@dataclass
class TrainResult:
    checkpoint_path: Path  # the saved model: runs/NAME/codec.safetensors (a codec or a VAE)
    logs: dict  # the last logged row: train/... and val/... scalars
    history: list[dict]  # every logged row, as in log.csv
    run_dir: Path
    model: torch.nn.Module | None = None  # the trained model (tables frozen for a codec), ready to use
    disc: torch.nn.Module | None = None  # the discriminator, when the GAN was on


def run_dir_of(cfg: TrainConfig) -> Path:
    path = Path(cfg.out_dir) if cfg.out_dir else Path("runs") / cfg.name
    return path if path.is_absolute() else work_dir() / path


def last_layer(model: torch.nn.Module) -> torch.nn.Parameter | None:
    """The decoder's output weight, where the adaptive GAN weight compares gradients."""
    if getattr(model, "last_layer", None) is not None:
        return model.last_layer
    weights = [p for p in model.decoder.parameters() if p.ndim >= 2]
    return weights[-1] if weights else None


def rate_target(cfg: RateConfig, step: int) -> float | None:
    """The target in force at `step` (annealed from target_start down to target)."""
    if cfg.target is None or cfg.target_start is None or cfg.anneal_steps <= 0:
        return cfg.target
    frac = min(step / cfg.anneal_steps, 1.0)
    return cfg.target_start + frac * (cfg.target - cfg.target_start)


def rate_loss(rate_bits: torch.Tensor, cfg: RateConfig, step: int = 0) -> torch.Tensor:
    mean_bits = rate_bits.mean()
    target = rate_target(cfg, step)
    if target is not None:
        return cfg.weight * F.relu(mean_bits - target)  # only the rate above the target costs
    return cfg.weight * mean_bits


def jitter(images: torch.Tensor, shift: float, noise: float) -> torch.Tensor:
    """Random per-image sub-pixel translation (up to `shift` px) plus Gaussian noise; differentiable."""
    if shift <= 0 and noise <= 0:
        return images
    b, _, h, _ = images.shape
    theta = torch.zeros(b, 2, 3, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = (torch.rand(b, 2, device=images.device) * 2 - 1) * (2 * shift / h)  # px -> [-1, 1] units
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, padding_mode="border", align_corners=False)  # (B,3,H,W)
    return (moved + noise * torch.randn_like(moved)).clamp(0, 1)


def vqa_loss(critic, x: torch.Tensor, x_hat: torch.Tensor, batch: Batch, cfg: VQAConfig) -> tuple[torch.Tensor, dict]:
    mode = cfg.mode
    logits = critic(jitter(x_hat, cfg.shift, cfg.noise), batch.questions)  # (B, A): gradients reach x_hat
    if mode == "true-answers":
        loss = F.cross_entropy(logits, batch.answers)
    elif mode == "agree-with-original":
        with torch.no_grad():
            target = critic(x, batch.questions).softmax(-1)  # (B, A) what the critic says on the original
        loss = -(target * logits.log_softmax(-1)).sum(-1).mean()  # = KL(target || p) + const
    else:
        raise VQAGanError(f"vqa.mode: unknown {mode!r} (expected 'true-answers' or 'agree-with-original')")
    acc = (logits.argmax(-1) == batch.answers).float().mean()
    return loss, {"train/vqa": loss.detach(), "train/vqa_acc": acc.detach()}


def load_extra_critic(name: str, critic, cfg: TrainConfig):
    """One of vqa.extra_critics: it reads the batch's question ids and answers by index, so its vocabulary
    must be the main critic's."""
    extra = load_critic(name, vocab=dataset_vocabulary(cfg.data, cfg.model.image_size))
    if (extra.vocab.words, extra.vocab.answers) != (critic.vocab.words, critic.vocab.answers):
        raise VQAGanError(f"vqa.extra_critics: {name} has another vocabulary than vqa.critic {critic_spec(cfg)}")
    return extra


def critic_spec(cfg: TrainConfig) -> str:
    """vqa.critic, or the shipped critic of the run's dataset."""
    if cfg.vqa.critic is not None:
        return cfg.vqa.critic
    if cfg.data.name == COCO:
        raise VQAGanError("vqa.critic: COCO has no shipped critic; name one (a checkpoint or vilt:/local/dir)")
    return critic_name(cfg.data.name)


def dataset_vocabulary(cfg: DataConfig, image_size: int):
    """The vocabulary a critic must answer in: the dataset's own, or for COCO its top-K answers."""
    if cfg.name != COCO:
        return get_dataset(cfg.name).build_vocabulary()
    if cfg.coco_root is None:
        raise VQAGanError("data.coco_root: set it to the folder holding COCO + VQA v2 (see data/README.md)")
    return CocoVQADataset(cfg.coco_root, cfg.coco_split, image_size, limit=cfg.limit_images).vocab


def generator_step(model, disc, critics: list, batch: Batch, cfg: TrainConfig, opt, gan_on: bool, step: int = 0,
                   exemplars=None):
    """One update of the model (encoder, entropy model, decoder); D is frozen throughout.

    `critics`: the frozen critics of the VQA term (empty when it is off), each through its own jitter.

    `exemplars` (stage "generator" without a geometry code): the pixel and Dis_l terms compare the
    output with its code's exemplar instead of the original (see training/stages.py).
    """
    raw = distributed.unwrap(model)
    out = model(batch.images)
    x = batch.images if exemplars is None else pixel_target(raw, batch.images, out.latent, exemplars)  # (B,3,H,W)
    mse = F.mse_loss(out.x_hat, x)
    recon = cfg.distortion.weight * pyramid_mse(out.x_hat, x, cfg.distortion.scales)  # scales 1: the MSE itself
    rate = rate_loss(out.rate_bits, cfg.rate, step)
    loss = rate + recon
    logs = {"train/rate_bits": out.rate_bits.detach().mean(), "train/mse": mse.detach(),
            "train/psnr": -10 * torch.log10(mse.detach().clamp_min(1e-10)), "train/rate": rate.detach(),
            "train/distortion": recon.detach()}
    if gan_on:
        disc.requires_grad_(False)  # the generator step must leave D exactly as it was
        gan, gan_logs = generator_gan_loss(disc, x, out.x_hat, recon, last_layer(raw), cfg.gan)
        disc.requires_grad_(True)
        loss = loss + gan
        logs.update(gan_logs)
    if critics:
        terms = [vqa_loss(critic, x, out.x_hat, batch, cfg.vqa) for critic in critics]
        vqa = torch.stack([term for term, _ in terms]).mean()
        loss = loss + cfg.vqa.weight * vqa
        logs.update(terms[0][1])  # the main critic's term and accuracy
        if len(terms) > 1:
            logs["train/vqa_extra"] = torch.stack([term.detach() for term, _ in terms[1:]]).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.optim.grad_clip is not None:
        logs["train/grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip).detach()
    opt.step()
    logs["train/loss"] = loss.detach()
    return out.x_hat.detach(), logs


def discriminator_step(disc, x: torch.Tensor, x_hat: torch.Tensor, opt) -> dict:
    """One update of D on originals vs the generator step's (detached) reconstructions."""
    logits, _ = disc(torch.cat([x, x_hat.detach()]))  # (2B,): one pass, GroupNorm is per image
    loss, logs = hinge_d_loss(logits[: x.shape[0]], logits[x.shape[0]:])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return logs


@torch.no_grad()
def evaluate(model, batch: Batch) -> dict:
    """Held-out rate (eval mode: the quantised latent) and distortion."""
    model.eval()
    out = model(batch.images)
    model.train()
    mse = F.mse_loss(out.x_hat, batch.images)
    return {"val/rate_bits": out.rate_bits.mean().item(), "val/mse": mse.item(),
            "val/psnr": (-10 * torch.log10(mse.clamp_min(1e-10))).item()}


def check_stage(cfg: TrainConfig, init_from) -> None:
    if cfg.stage not in STAGES:
        raise VQAGanError(f"stage: unknown {cfg.stage!r} (expected one of {', '.join(STAGES)})")
    if cfg.stage != "joint" and cfg.model.model != "fsq":
        raise VQAGanError(f"stage {cfg.stage!r} trains the discrete codec: add --model.model fsq")
    if cfg.stage == "generator" and init_from is None:
        raise VQAGanError("stage 'generator' starts from a checkpoint (a stage 'answers' point, or a finished one): pass --init NAME")
    if cfg.model.answer_symbols and init_from is None:
        raise VQAGanError("model.answer_symbols: a merged answer code starts from a finished point (--init NAME)")


def trainable_parameters(model, cfg: TrainConfig) -> list:
    """Stage "answers": the answer encoder and head only; stage "generator": all but those."""
    if cfg.stage == "answers":
        return list(model.answer_encoder.parameters()) + list(model.answer_head.parameters())
    if cfg.stage == "generator":
        freeze_answer_code(model)
    return [p for p in model.parameters() if p.requires_grad]


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The generator's learning rate at `step`: a pure function of the step, so a resumed run matches."""
    if cfg.optim.schedule == "constant":
        return cfg.optim.lr
    if cfg.optim.schedule == "cosine":
        return cfg.optim.lr * 0.5 * (1 + math.cos(math.pi * min(step / max(cfg.steps, 1), 1.0)))
    raise VQAGanError(f"optim.schedule: unknown {cfg.optim.schedule!r} (expected 'constant' or 'cosine')")


def train(cfg: TrainConfig, progress: bool = True, init_from=None, resume: bool = False, command: str | None = None) -> TrainResult:
    """Train `cfg` from scratch, from a codec checkpoint (`init_from`), or `resume` its run folder."""
    if cfg.gan.disc_start < 0 or cfg.steps < 0 or cfg.batch_size < 1:
        raise VQAGanError("config: steps and gan.disc_start must be >= 0 and batch_size >= 1")
    check_stage(cfg, init_from)
    if not 1 <= cfg.distortion.scales <= int(math.log2(cfg.model.image_size)) + 1:
        raise VQAGanError(f"distortion.scales: {cfg.distortion.scales} is outside 1 to "
                          f"{int(math.log2(cfg.model.image_size)) + 1} (each scale halves the {cfg.model.image_size}-pixel image)")
    ctx = distributed.setup(cfg.device)
    if cfg.batch_size % ctx.world:
        raise VQAGanError(f"batch_size {cfg.batch_size} must divide evenly among {ctx.world} processes")
    run_dir = run_dir_of(cfg)
    answers_stage = cfg.stage == "answers"
    gan_on, vqa_on = cfg.gan.weight > 0 and not answers_stage, cfg.vqa.weight > 0 and not answers_stage
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
    model = build_model(cfg.model).to(ctx.device)
    # D looks at the codec's images, whatever their size (64 on easy-VQA, 128+ on COCO).
    disc = Discriminator(cfg.gan.disc, image_size=cfg.model.image_size).to(ctx.device) if gan_on else None
    merging = False  # fill a merged answer code's tables, unless the start point has them for this alphabet
    if init_from is not None:
        source = load_codec(init_from, kinds=(cfg.model.model,))
        merging = bool(cfg.model.answer_symbols) and source.cfg.answer_symbols != cfg.model.answer_symbols
        if merging and not (cfg.stage == "generator" and cfg.generator.start == "codec"):
            raise VQAGanError(f"model.answer_symbols: {init_from} has no tables for {cfg.model.answer_symbols} symbols; "
                              "cells are merged by --stage generator --generator.start codec")
        if cfg.stage == "generator":
            start_generator(model, source, cfg.generator)
        else:
            state = source.state_dict()
            if cfg.model.answer_coding == "digits":  # a re-binned code (fewer levels a digit) refits its prior
                state = {k: v for k, v in state.items() if not k.startswith("entropy_model.")}
                state.update({k: v for k, v in model.state_dict().items() if k.startswith("entropy_model.")})
            try:
                model.load_state_dict(state)
            except RuntimeError as e:  # torch lists every mismatched tensor; its first one says enough
                mismatch = next((line.strip() for line in str(e).splitlines()[1:] if line.strip()), str(e))
                raise VQAGanError(f"{init_from}: its weights do not fit this run's model config ({mismatch})") from None
            freeze_decoder_parts(model, cfg.generator.frozen)
    exemplar_stage = cfg.stage == "generator" and uses_exemplars(model, cfg.generator)
    critic = None
    if vqa_on or answers_stage or exemplar_stage or merging:
        critic = load_critic(critic_spec(cfg), vocab=dataset_vocabulary(cfg.data, cfg.model.image_size)).to(ctx.device)
    vqa_critics = [critic] + [load_extra_critic(name, critic, cfg).to(ctx.device) for name in cfg.vqa.extra_critics] if vqa_on else []
    student = answer_reader(critic, model) if answers_stage else None  # ViLT critics: our own question reader
    student = student.to(ctx.device) if student is not None else None
    params = trainable_parameters(model, cfg) + (list(student.parameters()) if student is not None else [])
    opt_g = torch.optim.Adam(params, lr=cfg.optim.lr, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.gan.lr, betas=cfg.gan.betas) if gan_on else None
    start, history = 0, []
    if resume:
        card = load_state(run_dir, model, disc, opt_g, opt_d, ctx.device)
        start, history = card["step"], card.get("history", [])
    data = TrainData(cfg.data, cfg.model.image_size, vocab=critic.vocab if critic is not None else None)
    if init_from is None and not resume and hasattr(model, "seed_from_data"):
        model.seed_from_data(data.images[:512])
    val = TrainData(cfg.data, cfg.model.image_size, split="val").first(cfg.data.val_images).to(ctx.device) if ctx.rank == 0 else None
    exemplars = choose_exemplars(model, critic, data, cfg.generator.exemplar_candidates) if exemplar_stage else None
    balanced = exemplars.question_rows if exemplars is not None else None
    if cfg.stage == "generator" and cfg.generator.balance and exemplars is None:
        balanced = rows_by_code(model, data)
    merged = merge_answer_cells(model, critic, data, probe_ids(critic, cfg.answers, ctx.device)) if merging else {}
    probes = probe_ids(critic, cfg.answers, ctx.device) if answers_stage else None
    targets = critic_targets(critic, data, probes) if answers_stage else None
    cached = answers_stage and student is None  # the frozen critic reads the questions: encode them once
    own_features = question_features(critic, data.questions.to(ctx.device)) if cached else None
    probe_features = question_features(critic, probes) if cached else None
    model_ddp, disc_ddp = distributed.wrap(model, ctx), distributed.wrap(disc, ctx) if gan_on else None
    log = RunLog(run_dir, history, enabled=ctx.rank == 0)
    card = {"name": cfg.name, "config": to_dict(cfg), "seed": cfg.seed, "command": command or " ".join(sys.argv)}
    save = lambda step: save_state(run_dir, step, model, disc, opt_g, opt_d, dict(card, history=log.history))  # noqa: E731
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress or ctx.rank != 0, desc=cfg.name)
    for step in bar:
        torch.manual_seed((cfg.seed * 1_000_003 + step) * 1024 + ctx.rank)  # noise depends on (seed, step, rank) only
        for group in opt_g.param_groups:
            group["lr"] = learning_rate(cfg, step)
        if balanced is not None:  # uniform over the codes: rare codes are drawn as carefully as common ones
            rows = code_balanced_rows(balanced, cfg.batch_size, cfg.seed, step, ctx.rank, ctx.world)
        else:
            rows = batch_indices(len(data), cfg.batch_size, step, cfg.seed, ctx.rank, ctx.world)
        batch = data.gather(rows).to(ctx.device)
        if answers_stage:
            own, probe = targets[0][rows], targets[1][data.question_image[rows]]
            features = None
            if cached:
                features = torch.cat([own_features[rows.to(ctx.device)]] + [f.expand(len(rows), -1) for f in probe_features])
            logs = answer_step(model, critic, student, batch, own, probe, cfg.answers, probes, opt_g, features)
        else:
            gan_now = gan_on and step >= cfg.gan.disc_start
            x_hat, logs = generator_step(model_ddp, disc, vqa_critics, batch, cfg, opt_g, gan_now, step, exemplars)
            if gan_now:
                logs.update(discriminator_step(disc_ddp, batch.images, x_hat, opt_d))
        done = step + 1
        if ctx.rank == 0 and (done % cfg.log_every == 0 or done == cfg.steps):
            row = {"step": done, **{k: float(v) for k, v in logs.items()}}
            if done % cfg.eval_every == 0 or done == cfg.steps:
                row.update(evaluate(model, val))
            log.write(row)
            shown = ("train/agree_with_critic", "agree") if answers_stage else ("train/psnr", "psnr")
            bar.set_postfix({shown[1]: f"{row[shown[0]]:.3f}"})
        if ctx.rank == 0 and (done % cfg.save_every == 0 or done == cfg.steps):
            save(done)
    result_path = run_dir / "state.safetensors"
    if ctx.rank == 0 and (cfg.steps > start or not resume):  # a 0-step run from --init saves its start, refitted
        code_usage = dict(merged, **fit_prior(model, data)) if cfg.model.model == "fsq" else {}
        result_path = save_final_model(model, val, cfg, dict(card, code=code_usage) if code_usage else card, log)
    log.close()
    distributed.teardown(ctx)
    return TrainResult(result_path, log.history[-1] if log.history else {}, log.history, run_dir, model, disc)


def save_final_model(model, val: Batch, cfg: TrainConfig, card: dict, log) -> Path:
    """A codec: freeze its integer tables, measure the exact held-out rate; save runs/NAME/codec."""
    if hasattr(model, "freeze_tables"):
        model.freeze_tables()
    metrics = dict(log.history[-1] if log.history else {}, **evaluate(model, val))
    path = run_dir_of(cfg) / "codec"
    data = {"name": cfg.data.name, "split": "train", "limit_images": cfg.data.limit_images}
    # save_codec writes the model's own config as `config`; the run's config travels as `train_config`.
    save_codec(model, path, dict(card, train_config=card["config"], data=data, metrics=metrics))
    return path.with_suffix(".safetensors")


def resume(run_dir, progress: bool = True, overrides: list[str] | None = None) -> TrainResult:
    """Continue the run in `run_dir` from its last state (overrides such as ['--steps', '4000'] apply)."""
    card = load_card(Path(run_dir) / "state.safetensors")
    cfg = apply_overrides(from_dict(TrainConfig, card["config"]), list(overrides or []))
    cfg = dataclasses.replace(cfg, out_dir=str(Path(run_dir).resolve()))
    return train(cfg, progress=progress, resume=True, command=card.get("command"))
