"""The shipped rate ladder and its ablations: one TrainConfig per checkpoint.

    base-48bit (plain codec, MSE only) ──fine-tune──> vqagan-6bit, -12bit, -24bit, -64bit  (full recipe)
                                        └─fine-tune──> ablation-plain-6bit   (MSE only)
                                        └─fine-tune──> ablation-vaegan-6bit  (VAE-GAN, no VQA term)

Every point starts from the same plain base codec, so the ablations differ from the full
recipe only in the terms switched off, at a matched rate. `python -m vqagan_lib train-ladder
NAME` rebuilds a point (and the base first, if it is not shipped) with the one engine in
train.py and copies it into the shipped checkpoints (runtime.CHECKPOINT_DIR) with a card saying how it was made.
Introduced in notebooks/05_combined_training.ipynb.
"""
import dataclasses
from dataclasses import dataclass

from vqagan_lib.checkpoint import copy_checkpoint, update_card
from vqagan_lib.config import apply_overrides
from vqagan_lib.errors import VQAGanError
from vqagan_lib.runtime import CHECKPOINT_DIR
from vqagan_lib.training.engine import TrainConfig, train

BASE = "base-48bit"


@dataclass(frozen=True)
class RatePoint:
    target_bits: float  # mean bits/image the rate term aims at (hinge: only the excess is penalised)
    role: str = "ours"  # "ours": the full recipe; "ablation": terms switched off; "base": the shared start
    gan: bool = True  # the VAE-GAN terms (Dis_l feature loss + adversarial loss)
    vqa: bool = True  # the frozen critic's term
    setting: str = ""  # one line for reports


LADDER = {
    BASE: RatePoint(48, "base", gan=False, vqa=False, setting="plain codec (MSE only), the shared starting point"),
    "vqagan-6bit": RatePoint(6, setting="full recipe, target 6 bits/image"),
    "vqagan-12bit": RatePoint(12, setting="full recipe, target 12 bits/image"),
    "vqagan-24bit": RatePoint(24, setting="full recipe, target 24 bits/image"),
    "vqagan-64bit": RatePoint(64, setting="full recipe, target 64 bits/image"),
    "ablation-plain-6bit": RatePoint(6, "ablation", gan=False, vqa=False, setting="plain codec (MSE only), target 6"),
    "ablation-vaegan-6bit": RatePoint(6, "ablation", gan=True, vqa=False, setting="VAE-GAN without VQA term, target 6"),
}
BASE_STEPS = 1500  # the base learns the images from scratch
DEFAULT_STEPS = 600  # each point fine-tunes the base; what one lane of a 2-core CPU affords in minutes
LOW_RATE = 24  # below this many bits the recipe squeezes harder (see ladder_config)
LOW_RATE_STEPS = 900


def ladder_config(name: str, steps: int | None = None, batch_size: int = 32, seed: int = 0) -> TrainConfig:
    """The recipe for one shipped point. `steps` is shortened only for tests and QUICK notebooks."""
    if name not in LADDER:
        raise VQAGanError(f"unknown ladder point '{name}' (known: {', '.join(LADDER)})")
    point = LADDER[name]
    low = point.target_bits < LOW_RATE
    steps = steps if steps is not None else (BASE_STEPS if name == BASE else LOW_RATE_STEPS if low else DEFAULT_STEPS)
    anneal = steps // 2
    start = 96.0 if name == BASE else 48.0  # fine-tunes start at the base's rate and squeeze from there
    return apply_overrides(TrainConfig(), [
        "--model.latent_dim", "16",
        # Low targets need a steeper hinge: at weight 1 the low-rate recipe settled far above its target,
        # where one more bit still bought more MSE and critic loss than it cost.
        "--rate.weight", str(4.0 if low else 1.0), "--rate.target", str(point.target_bits),
        "--rate.target_start", str(max(start, point.target_bits)), "--rate.anneal_steps", str(anneal),
        # D warms up for a sixth of the run: the decoder is already trained, so D can join early.
        "--gan.weight", str(0.5 if point.gan else 0.0), "--gan.disc_start", str(steps // 6),
        # A moderate critic weight: a large one drowns the pixel loss (lower PSNR, no accuracy gained).
        # At low rates the pixel loss can no longer pay for colour and shape, so the critic gets more.
        "--vqa.weight", str((5.0 if low else 3.0) if point.vqa else 0.0),
        "--optim.lr", "1e-3", "--optim.betas", "[0.5, 0.9]",
        "--steps", str(steps), "--batch_size", str(batch_size), "--seed", str(seed), "--name", name,
        "--log_every", "25", "--eval_every", str(max(steps // 4, 1)), "--save_every", str(max(steps // 4, 1)),
    ])


def ship(result, name: str) -> "object":
    """Copy a finished run's codec into the shipped checkpoints as NAME, with the ladder tag on its card."""
    point = LADDER[name]

    def tag(card):
        card["ladder"] = {"role": point.role, "target_bits": point.target_bits, "setting": point.setting}
        card["name"] = name

    dst = copy_checkpoint(result.checkpoint_path, CHECKPOINT_DIR / f"{name}.safetensors", tag)
    return dataclasses.replace(result, checkpoint_path=dst)


def train_point(name: str, steps: int | None = None, ship_it: bool = True, progress: bool = True,
                command: str | None = None, base=None):
    """Train one ladder point (from `base`, default the shipped base codec); optionally ship it."""
    cfg = ladder_config(name, steps=steps)
    init = None
    if name != BASE:
        init = base if base is not None else CHECKPOINT_DIR / f"{BASE}.safetensors"
        if base is None and not init.exists():
            train_point(BASE, progress=progress, command=f"python -m vqagan_lib train-ladder {BASE}")
    result = train(cfg, progress=progress, init_from=init, command=command)
    if init is not None:
        update_card(result.checkpoint_path, lambda card: card.update(init_from=str(getattr(init, "name", init))))
    return ship(result, name) if ship_it else result
