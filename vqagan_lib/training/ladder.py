"""The shipped rate ladder and its ablations: one recipe (dotted overrides, as the CLI takes them) per checkpoint.

    answers-8bit ──generator──> vqagan-32bit, -64bit             (+ a geometry code and the layered decoder)
                 └─generator──> ablation-exemplar-8bit           (no geometry: a conv decoder draws each code's exemplar)
    vqagan-32bit ──generator──> vqagan-16bit                     (fewer geometry bins, the same sprites)
                 └─no steps───> vqagan-8bit                      (no geometry: each sprite in its default box)
    vqagan-8bit  ──no steps───> vqagan-5bit                      (cells the critic answers alike merged: 32 symbols)
    answers-5bit ──generator──> ablation-grid-5bit               (a [6,5] grid trained directly; a conv decoder, exemplars)
    ablation-no-vqa-8bit        the same FSQ [8,6,5] code, a conv decoder, end to end, pixels and GAN only (no critic)
    ablation-no-stage1-8bit     the same, end to end from scratch, with the critic's term (no stage "answers")
    base-48bit ──fine-tune──> ablation-continuous-6bit          notebook 02's continuous codec, the previous design
    Sort-of-CLEVR (one joint stage from scratch on pixels alone, tuned with the VQA term, then re-binned):
    ablation-scenes-no-vqa-96bit ──joint──> scenes-96bit         (the pixels-only start, tuned with the VQA term)
                                 └─joint──> ablation-scenes-no-vqa-64bit   (re-binned as scenes-64bit, pixels only)
    scenes-96bit ──joint──> scenes-64bit                         (10 position bins a digit instead of 64, sprites kept)
                 └─joint──> ablation-scenes-non-relational-24bit (2 bins; the VQA term asks only about single objects)
    ablation-scenes-no-vqa-96bit ──joint──> ablation-scenes-no-vqa-24bit  (re-binned to 2 bins, pixels only)

A point's name says its budget: log2 of the number of codes it can send (its ceiling, the
`nominal_bits`) is at most that. What it really spends is the entropy of its code under the learnt
prior, measured in bytes on disk by the benchmark. `python -m vqagan_lib train-ladder NAME` rebuilds
a point (and what it starts from, if that is not shipped) with the one engine and copies it into
the shipped checkpoints (runtime.CHECKPOINT_DIR) with a card saying how it was made.
Introduced in notebooks/05_combined_training.ipynb.
"""
import dataclasses
import json
import time
from dataclasses import dataclass

from vqagan_lib.checkpoint import copy_checkpoint, update_card
from vqagan_lib.config import apply_overrides
from vqagan_lib.data.registry import DEFAULT, get_dataset
from vqagan_lib.errors import VQAGanError
from vqagan_lib.runtime import CHECKPOINT_DIR, machine_description
from vqagan_lib.training.engine import TrainConfig, train

ANSWERS_8 = ("--model.model", "fsq", "--model.answer_levels", "[8, 6, 5]")
ANSWERS_5 = ("--model.model", "fsq", "--model.answer_levels", "[6, 5]")
# Stage "answers": no pixels; the critic's answers on the originals, read from the code.
ANSWER_STAGE = ("--stage", "answers", "--steps", "6000", "--batch_size", "64", "--optim.lr", "2e-3",
                "--optim.schedule", "cosine")
# Stage "generator" without geometry: pixels toward each code's exemplar; a cosine schedule lets the
# decoder settle exactly on its few dozen targets.
EXEMPLAR_STAGE = ("--stage", "generator", "--steps", "3000", "--batch_size", "64", "--optim.lr", "2e-3",
                  "--optim.schedule", "cosine", "--rate.weight", "0")
# Stage "generator" with a geometry code: pixels toward the original, since the code now says where the
# shape is. The layered decoder draws one sprite in a box; the pixel loss is also taken on 2x2, 4x4 and
# 8x8 averages, so that a box far from its shape still feels which way to move. Batches are drawn evenly
# over the answer codes, so that the sprite of a code a handful of images use is learnt as well as any.
GEOMETRY_STAGE = ("--stage", "generator", "--steps", "6000", "--batch_size", "64", "--optim.lr", "2e-3",
                  "--optim.schedule", "cosine", "--rate.weight", "0", "--distortion.scales", "4",
                  "--model.decoder", "layered", "--model.channels", "32", "--generator.balance", "true")
# Stage "generator" from a finished geometry point, with fewer bins: the encoder and the box are kept and
# fine-tuned to the coarser grid; the sprites and colours (what is drawn) stay exactly as learnt at the finer
# rate, since a box that cannot sit on its shape would otherwise teach the sprite a blurred blob.
REBIN_STAGE = ("--stage", "generator", "--steps", "1500", "--batch_size", "64", "--optim.lr", "5e-4",
               "--optim.schedule", "cosine", "--rate.weight", "0", "--distortion.scales", "4",
               "--model.decoder", "layered", "--model.channels", "32",
               "--generator.start", "codec", "--generator.frozen", '["sprite", "colour"]', "--generator.balance", "true")
# No geometry code at all: a finished geometry point with every digit dropped, so each sprite is drawn in its
# default box. Nothing is trained (0 steps): the prior is refitted on the answer code alone. Fine-tuning the
# boxes toward pixels here would shrink them (the pixel-optimal box for an unknown place is an empty one).
DROP_GEOMETRY = ("--stage", "generator", "--steps", "0", "--rate.weight", "0", "--model.decoder", "layered",
                 "--model.channels", "32", "--generator.start", "codec")
# Fewer answer symbols than cells: the 8-bit code spreads each answer over a few cells, so the cells whose
# training images the critic answers alike are sent as one symbol (stages.merge_answer_cells), drawn by the
# sprite of the most used one. A [6,5] grid trained directly to 30 cells does worse (ablation-grid-5bit):
# rounding moves an image only to a neighbouring cell, and two answers that settle in one cell stay merged.
MERGE_CELLS = DROP_GEOMETRY + ("--model.answer_symbols", "32")
# The geometry digits, in the layered decoder's order: x, y, size, aspect, then background red, green, blue.
GEOMETRY = {16: "[7, 7, 5]", 32: "[64, 64, 32, 16]", 64: "[128, 128, 64, 64, 32, 32, 32]"}
# The end-to-end ablations train the same answer code and a conv decoder from scratch, as one stage, with Larsen's
# Dis_l and adversarial terms switched on after a warm-up.
END_TO_END = ("--stage", "joint", "--steps", "2000", "--batch_size", "64", "--optim.lr", "1e-3", "--rate.weight", "0",
              "--gan.weight", "0.5", "--gan.disc_start", "500", "--optim.betas", "[0.5, 0.9]")
CONTINUOUS_BASE = ("--model.latent_dim", "16", "--rate.target", "48", "--rate.target_start", "96",
                   "--rate.anneal_steps", "750", "--steps", "1500", "--batch_size", "32", "--optim.betas", "[0.5, 0.9]")
CONTINUOUS_6 = ("--model.latent_dim", "16", "--rate.weight", "4", "--rate.target", "6", "--rate.target_start", "48",
                "--rate.anneal_steps", "450", "--gan.weight", "0.5", "--gan.disc_start", "150", "--vqa.weight", "5",
                "--steps", "900", "--batch_size", "32", "--optim.betas", "[0.5, 0.9]")

# Sort-of-CLEVR (notebook 08): six slots, each [appearance, x, y] sent digit by digit. Pixels first, end to end: the
# pixel loss alone finds the objects and both shapes, where the critic's term from the start can settle every slot
# on one shape; then the critic's term tunes what the pixels found. The pixel loss on coarse copies too, so a slot
# drawn away from its object feels which way to move.
SCENE = ("--data.name", "sort-of-clevr", "--model.model", "fsq", "--model.decoder", "slots", "--model.slots", "6",
         "--model.answer_coding", "digits", "--model.channels", "64", "--model.encoder_channels", "16")
SCENE_JOINT = ("--stage", "joint", "--batch_size", "32", "--optim.schedule", "cosine", "--rate.weight", "0",
               "--distortion.scales", "4", "--gan.weight", "0")
SCENE_PIXELS = SCENE_JOINT + ("--steps", "6000", "--optim.lr", "3e-3", "--vqa.weight", "0")
SCENE_TUNE = SCENE_JOINT + ("--steps", "1500", "--optim.lr", "5e-4", "--vqa.weight", "3")
# Fewer position bins from a finer point: everything copied, the sprites kept exactly (a slot that cannot sit on
# its object would otherwise teach them a blurred blob), the rest fine-tuned to the coarser grid. An even number
# of bins keeps a bin edge on the centre line, which the left/right and top/bottom questions ask about. A smaller
# step than the tuning run's: at that one, the appearance digits of some seeds drifted off the shapes.
SCENE_REBIN = SCENE_JOINT + ("--steps", "1500", "--optim.lr", "1e-4", "--vqa.weight", "3", "--generator.frozen", '["sprite"]')
SCENE_LEVELS = {96: "[" + ", ".join(["3, 64, 64"] * 6) + "]", 64: "[" + ", ".join(["3, 10, 10"] * 6) + "]",
                24: "[" + ", ".join(["3, 2, 2"] * 6) + "]"}
NO_VQA = ("--vqa.weight", "0")
# The VQA term asks only the questions about one object (its shape, its side, its half), never a relation.
NON_RELATIONAL = ("--data.question_types", json.dumps(list(get_dataset("sort-of-clevr").QUESTION_GROUPS["non-relational"])))


@dataclass(frozen=True)
class RatePoint:
    role: str  # "ours": the full recipe; "ablation": a part switched off; "stage"/"base": what points start from
    nominal_bits: float  # log2 of the code space (FSQ) or the rate target (continuous): the ceiling, not the rate
    recipe: tuple[str, ...]  # dotted overrides of TrainConfig, exactly as `python -m vqagan_lib train` takes them
    init: str | None = None  # the point this one starts from
    setting: str = ""  # one line for reports
    against: str | None = None  # an ablation: the point it is measured beside (same data, matched rate)

    @property
    def dataset(self) -> str:
        """The dataset the recipe trains on: its --data.name, else the default one."""
        flags = list(self.recipe)
        return flags[flags.index("--data.name") + 1] if "--data.name" in flags else DEFAULT


LADDER = {
    "answers-5bit": RatePoint("stage", 4.9, ANSWERS_5 + ANSWER_STAGE, setting="stage 'answers' of the 5-bit code"),
    "answers-8bit": RatePoint("stage", 7.9, ANSWERS_8 + ANSWER_STAGE, setting="stage 'answers' of the 8-bit code"),
    "vqagan-5bit": RatePoint("ours", 5.0, ANSWERS_8 + MERGE_CELLS, "vqagan-8bit",
                             "vqagan-8bit's cells merged into 32 answer symbols, the same sprites"),
    "vqagan-8bit": RatePoint("ours", 7.9, ANSWERS_8 + DROP_GEOMETRY, "vqagan-32bit",
                             "FSQ [8,6,5] answer code, vqagan-32bit's sprites in their default boxes"),
    "vqagan-16bit": RatePoint("ours", 15.8, ANSWERS_8 + REBIN_STAGE + ("--model.geometry_levels", GEOMETRY[16]),
                              "vqagan-32bit", "8-bit answer code + [7,7,5] (x, y, size) geometry, vqagan-32bit's"
                              " sprites re-binned"),
    "vqagan-32bit": RatePoint("ours", 28.9, ANSWERS_8 + GEOMETRY_STAGE + ("--model.geometry_levels", GEOMETRY[32]),
                              "answers-8bit", "8-bit answer code + [64,64,32,16] (x, y, size, aspect) geometry,"
                              " layered decoder"),
    "vqagan-64bit": RatePoint("ours", 48.9, ANSWERS_8 + GEOMETRY_STAGE + ("--model.geometry_levels", GEOMETRY[64]),
                              "answers-8bit", "8-bit answer code + [128,128,64,64,32,32,32] (x, y, size, aspect,"
                              " tint) geometry, layered decoder"),
    "ablation-grid-5bit": RatePoint("ablation", 4.9, ANSWERS_5 + EXEMPLAR_STAGE, "answers-5bit",
                                    "FSQ [6,5] answer code trained directly, conv decoder toward each code's exemplar",
                                    against="vqagan-5bit"),
    "ablation-exemplar-8bit": RatePoint("ablation", 7.9, ANSWERS_8 + EXEMPLAR_STAGE, "answers-8bit",
                                        "FSQ [8,6,5] answer code, conv decoder trained toward each code's exemplar",
                                        against="vqagan-8bit"),
    "ablation-no-vqa-8bit": RatePoint("ablation", 7.9, ANSWERS_8 + END_TO_END,
                                      setting="FSQ [8,6,5] end to end, pixels + GAN, no VQA term", against="vqagan-8bit"),
    "ablation-no-stage1-8bit": RatePoint("ablation", 7.9, ANSWERS_8 + END_TO_END + ("--vqa.weight", "5"),
                                         setting="FSQ [8,6,5] end to end with the VQA term, no stage 1", against="vqagan-8bit"),
    "scenes-96bit": RatePoint("ours", 81.5, SCENE + SCENE_TUNE + ("--model.answer_levels", SCENE_LEVELS[96]),
                              "ablation-scenes-no-vqa-96bit",
                              setting="Sort-of-CLEVR: six slots of [3, 64, 64] (appearance, x, y), the pixels-only start tuned by the critic"),
    "scenes-64bit": RatePoint("ours", 49.4, SCENE + SCENE_REBIN + ("--model.answer_levels", SCENE_LEVELS[64]), "scenes-96bit",
                              setting="Sort-of-CLEVR: six slots of [3, 10, 10], scenes-96bit's sprites re-binned"),
    "ablation-scenes-no-vqa-96bit": RatePoint(
        "ablation", 81.5, SCENE + SCENE_PIXELS + ("--model.answer_levels", SCENE_LEVELS[96]),
        setting="scenes-96bit's start: pixels only, no critic's tuning", against="scenes-96bit"),
    "ablation-scenes-no-vqa-64bit": RatePoint(
        "ablation", 49.4, SCENE + SCENE_REBIN + ("--model.answer_levels", SCENE_LEVELS[64]) + NO_VQA, "ablation-scenes-no-vqa-96bit",
        setting="scenes-64bit's recipe without the VQA term, from the 96-bit one without it", against="scenes-64bit"),
    "ablation-scenes-non-relational-24bit": RatePoint(
        "ablation", 21.5, SCENE + SCENE_REBIN + ("--model.answer_levels", SCENE_LEVELS[24]) + NON_RELATIONAL, "scenes-96bit",
        setting="six slots of [3, 2, 2], the VQA term on the non-relational questions only", against="scenes-64bit"),
    "ablation-scenes-no-vqa-24bit": RatePoint(
        "ablation", 21.5, SCENE + SCENE_REBIN + ("--model.answer_levels", SCENE_LEVELS[24]) + NO_VQA, "ablation-scenes-no-vqa-96bit",
        setting="the 24-bit recipe without the VQA term, from the 96-bit one without it",
        against="ablation-scenes-non-relational-24bit"),
    "base-48bit": RatePoint("base", 48, CONTINUOUS_BASE, setting="continuous codec (MSE only), the shared start"),
    "ablation-continuous-6bit": RatePoint("ablation", 6, CONTINUOUS_6, "base-48bit",
                                          setting="notebook 02's continuous codec, full recipe, target 6", against="vqagan-5bit"),
}


def ladder_config(name: str, steps: int | None = None, seed: int = 0) -> TrainConfig:
    """The recipe for one shipped point. `steps` is shortened only for tests and QUICK notebooks."""
    if name not in LADDER:
        raise VQAGanError(f"unknown ladder point '{name}' (known: {', '.join(LADDER)})")
    cfg = apply_overrides(TrainConfig(), list(LADDER[name].recipe) + ["--seed", str(seed), "--name", name])
    steps = cfg.steps if steps is None else steps
    disc_start = min(cfg.gan.disc_start, steps // 4)  # short runs (tests, QUICK) still reach the GAN
    return apply_overrides(cfg, ["--steps", str(steps), "--gan.disc_start", str(disc_start),
                                 "--log_every", "25", "--eval_every", str(max(steps // 4, 1)),
                                 "--save_every", str(max(steps // 4, 1))])


def recipe_command(name: str, steps: int | None = None) -> str:
    return f"python -m vqagan_lib train-ladder {name}" + (f" --steps {steps}" if steps is not None else "")


def ship(result, name: str) -> "object":
    """Copy a finished run's codec into the shipped checkpoints as NAME, with the ladder tag on its card."""
    point = LADDER[name]

    def tag(card):
        card["ladder"] = {"role": point.role, "nominal_bits": point.nominal_bits, "setting": point.setting}
        if point.against is not None:
            card["ladder"]["against"] = point.against
        card["name"] = name

    dst = copy_checkpoint(result.checkpoint_path, CHECKPOINT_DIR / f"{name}.safetensors", tag)
    return dataclasses.replace(result, checkpoint_path=dst)


def train_point(name: str, steps: int | None = None, ship_it: bool = True, progress: bool = True,
                command: str | None = None, init=None):
    """Train one ladder point (from `init`, default its shipped start point, trained first if missing)."""
    cfg = ladder_config(name, steps=steps)
    start = LADDER[name].init
    if start is not None and init is None:
        init = CHECKPOINT_DIR / f"{start}.safetensors"
        if not init.exists():
            train_point(start, progress=progress, command=recipe_command(start))
    began = time.time()
    result = train(cfg, progress=progress, init_from=init, command=command or recipe_command(name, steps))
    seconds = time.time() - began

    def record(card):
        card["training"] = {"wall_seconds": round(seconds, 1), "steps": cfg.steps, "machine": machine_description()}
        if cfg.steps:  # a 0-step point (a finer one with its geometry dropped) has no speed to report
            card["training"]["steps_per_second"] = round(cfg.steps / max(seconds, 1e-9), 2)
        if init is not None:
            card["init_from"] = str(getattr(init, "stem", init))

    update_card(result.checkpoint_path, record)
    return ship(result, name) if ship_it else result
