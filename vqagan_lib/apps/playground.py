"""The playground: compress one image at a rate point, ask the critic and both judges, then fine-tune.

    image (test index | file | upload) --> codec --> .vqg bytes --> decoder --> reconstruction
                                                    (bits: the file)          |
                           question ---------------------------------------> critic / ViLT judge / rule judge

`Playground.pick` runs that path for real (compress -> bytes -> decompress) and reports every reader's
answer; `Playground.finetune` runs the training engine for a bounded number of steps from the nearest
shipped rate point with your changes to its recipe (dotted overrides, as `python -m vqagan_lib train`
takes them: {"vqa.weight": 2, "rate.target": 8}), writing only under runs/playground/, and judges the
result on a fixed slice of the test set with evaluation/measure.py; evaluation/figures.py draws the
pictures and the rate-accuracy plot. Notebook 07's widgets (apps/widgets.py) only call these, so the
logic is tested without Jupyter.
Introduced in notebooks/07_playground.ipynb.
"""
import math
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from vqagan_lib.answerers.critic import load_critic
from vqagan_lib.answerers.judge_vilt import load_judge
from vqagan_lib.answerers.judges import critic_name, judge_name, rule_judge
from vqagan_lib.checkpoint import list_checkpoints, load_card
from vqagan_lib.coding.bitstream import decode_images, encode_images, parse
from vqagan_lib.coding.images import load_image
from vqagan_lib.config import apply_overrides, as_flags, from_dict
from vqagan_lib.data.registry import DEFAULT, get_dataset
from vqagan_lib.errors import VQAGanError
from vqagan_lib.evaluation.measure import measure_codec
from vqagan_lib.models.codec import CODEC_KINDS, card_dataset, load_codec
from vqagan_lib.runtime import CHECKPOINT_DIR, work_dir
from vqagan_lib.training.engine import TrainConfig, train

PLAYGROUND_DIR = work_dir() / "runs" / "playground"  # the only place the playground writes
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a run name is one plain file name: no folders, no "..", no hidden files
# What a fine-tune changes unless you say otherwise: the whole codec end to end with every term on at once
# (a fresh discriminator from step 0, no rate annealing), so each knob acts from the first step.
FINETUNE_DEFAULTS = {"stage": "joint", "gan.disc_start": 0, "rate.target_start": None, "rate.anneal_steps": 0}


@dataclass
class Point:
    """One codec on the rate-accuracy plane."""

    name: str
    path: str  # the codec's .safetensors
    latent_dim: int
    nominal_bits: float | None = None  # the ladder's ceiling (card["ladder"]["nominal_bits"]); None for new codecs
    metrics: dict = field(default_factory=dict)  # stream_bits, file_bits, judge_rules, judge_vilt, critic when known
    source: str = "card"  # "card": benchmark numbers (full test set); "slice": measured here on a few test images
    message: str = ""  # what fine-tuning did, in words


@dataclass
class Answer:
    answer: str
    confidence: float | None  # softmax probability of the answer; None for the rule judge (it has no scores)
    reading: str = ""  # the rule judge's reading of the picture, e.g. "a teal triangle"


@dataclass
class PickResult:
    original: torch.Tensor  # (3,S,S) in [0,1]
    reconstruction: torch.Tensor  # (3,S,S) in [0,1], decoded from the .vqg bytes
    file_bits: int  # this image alone as a .vqg file, header and CRC included
    payload_bits: int  # the arithmetic-coded symbols alone
    question: str
    true_answer: str | None  # None for typed questions and uploaded images
    answers: dict  # reader name -> Answer on the reconstruction (empty when the question has unknown words)
    answers_original: dict  # reader name -> Answer on the original
    message: str = ""  # why there are no answers, in words
    point: str = ""


def _said(answer: Answer | None) -> str:
    if answer is None:
        return "-"
    return f"{answer.answer} ({answer.reading})" if answer.confidence is None else f"{answer.answer} ({answer.confidence:.0%})"


def answers_table(result: PickResult) -> str:
    """Each reader's answer on the original and on the reconstruction, as text (or why there are none)."""
    if result.message:
        return result.message
    lines = [f"Q: {result.question}   true answer: {result.true_answer or 'not known (typed or uploaded)'}",
             f"{'reader':12s} {'on the original':28s} on the reconstruction"]
    for name, answer in result.answers.items():
        lines.append(f"{name:12s} {_said(result.answers_original.get(name)):28s} {_said(answer)}")
    return "\n".join(lines)


def point_from_card(card: dict) -> Point:
    ladder = card.get("ladder") or {}
    # The benchmark writes its measurements under metrics.benchmark (python -m vqagan_lib benchmark --update-cards).
    measured = (card.get("metrics") or {}).get("benchmark") or {}
    metrics = {k: v for k, v in measured.items() if isinstance(v, (int, float))}
    nominal = ladder.get("nominal_bits", ladder.get("target_bits"))  # cards of the continuous ladder say target_bits
    return Point(card["name"], card.get("path") or str(card["name"]), int(card["config"].get("latent_dim", 0)),
                 nominal, metrics, "card" if "stream_bits" in metrics else "none")


def ladder_points(folder=CHECKPOINT_DIR, fallback: bool = False, dataset: str = DEFAULT) -> list[Point]:
    """The dataset's shipped codecs whose card says ladder role 'ours', by rate; with `fallback`, any of its codecs if none is."""
    cards = [c for c in list_checkpoints(folder) if c.get("kind") in CODEC_KINDS and card_dataset(c) == dataset]
    ours = [c for c in cards if (c.get("ladder") or {}).get("role") == "ours"]
    chosen = ours or (cards if fallback else [])
    return sorted((point_from_card(c) for c in chosen), key=lambda p: (p.nominal_bits is None, p.nominal_bits or 0, p.name))


def check_name(name: str) -> str:
    """A fine-tune's name becomes a folder under runs/playground/: refuse anything but one plain file name."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise VQAGanError(f"run name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, no '/' and "
                          "not starting with '.'); the playground writes only under runs/playground/NAME")
    return name


def default_name(changes: dict) -> str:
    """ft-vqa_weight2-rate_target8 and the like: the changes, in a name `check_name` accepts."""
    parts = [f"{k.replace('.', '_')}{v:g}" if isinstance(v, (int, float)) else k.replace(".", "_") for k, v in changes.items()]
    return re.sub(r"[^A-Za-z0-9_.-]", "", "-".join(["ft", *parts]))[:64]


def guard_output(path) -> Path:
    """Refuse any output inside the shipped checkpoints: shipped checkpoints are only made by their commands."""
    resolved = Path(path).resolve()
    shipped = CHECKPOINT_DIR.resolve()
    if resolved == shipped or shipped in resolved.parents:
        raise VQAGanError(f"{resolved}: inside {shipped}; the playground writes only under runs/playground/")
    return resolved


def _rate_of(point: Point) -> float | None:
    return point.nominal_bits if point.nominal_bits is not None else point.metrics.get("stream_bits")


def nearest_point(points: list[Point], changes: dict) -> tuple[Point | None, str]:
    """The start of a fine-tune: the same latent size (when `changes` sets model.latent_dim), nearest in
    rate (log scale) to rate.target (without one: the lowest-rate one). No codec of that size: the first
    point, to train from scratch."""
    latent_dim, target = changes.get("model.latent_dim"), changes.get("rate.target")
    same = [p for p in points if latent_dim is None or p.latent_dim == latent_dim]
    if not same:
        sizes = sorted({p.latent_dim for p in points})
        return (points[0] if points else None), (
            f"no shipped codec has latent size {latent_dim} (they have {sizes or 'none'}): training from scratch")
    if target is None or not any(_rate_of(p) for p in same):
        return same[0], f"started from {same[0].name}"
    best = min((p for p in same if _rate_of(p)), key=lambda p: abs(math.log2(_rate_of(p)) - math.log2(max(target, 0.5))))
    return best, f"started from {best.name} (nearest rate to {target:g} bits)"


class Playground:
    """The test split, the codecs, the critic and the judges, loaded once; the callbacks of notebook 07."""

    def __init__(self, points: list[Point] | None = None, critic=None, judges: dict | None = None,
                 eval_images: int = 100, out_root=PLAYGROUND_DIR, train_images: int | None = None,
                 batch_size: int = 32, critic_spec: str | None = None, judge_spec: str | None = None,
                 device: str = "auto", dataset: str = DEFAULT):
        data = get_dataset(dataset)
        self.dataset, self.image_size = dataset, data.IMAGE_SIZE
        self.points = ladder_points(fallback=True, dataset=dataset) if points is None else list(points)
        critic_spec = critic_spec or critic_name(dataset)
        if critic is None:
            critic = load_critic(critic_spec)
        if judges is None:
            judges = {"judge_vilt": load_judge(judge_spec or judge_name(dataset)), "judge_rules": rule_judge(dataset)}
        self.answerers = {"critic": critic, **judges}  # critic first: the one the codec was trained against
        self.vocab = critic.vocab
        self.test = data.load_split("test")
        self.slice = data.load_split("test", limit_images=eval_images)  # the fixed slice every new codec is judged on
        self.out_root, self.train_images, self.batch_size = Path(out_root), train_images, batch_size
        self.critic_spec, self.device = critic_spec, device
        self._codecs = {}

    # ----- picking -----
    def codec(self, point=None):
        """A Point, a point's name, a checkpoint path, or a Codec -> the loaded Codec (cached)."""
        if isinstance(point, torch.nn.Module):
            return point
        if point is None:
            if not self.points:
                raise VQAGanError(f"{CHECKPOINT_DIR}: no shipped codec yet; pass a codec or a checkpoint path")
            point = self.points[0]
        if isinstance(point, str):
            point = next((p for p in self.points if p.name == point), point)
        path = point.path if isinstance(point, Point) else str(point)
        if path not in self._codecs:
            self._codecs[path] = load_codec(path).eval()
        return self._codecs[path]

    def image(self, source, image_size: int | None = None) -> tuple[torch.Tensor, list[str], list[str]]:
        """Test index | image file path | uploaded bytes -> ((3,S,S) in [0,1], its questions, their answers)."""
        image_size = image_size if image_size is not None else self.image_size
        if isinstance(source, int):
            if not 0 <= source < len(self.test.images):
                raise VQAGanError(f"test image {source}: out of range (0 to {len(self.test.images) - 1})")
            rows = (self.test.question_image == source).nonzero().flatten().tolist()
            x = self.test.images[source].float() / 255.0  # (3,S,S)
            return x, [self.test.questions[r] for r in rows], [self.test.answers[r] for r in rows]
        if isinstance(source, (bytes, bytearray, memoryview)):
            with tempfile.TemporaryDirectory(prefix="vqagan-upload-") as folder:  # load_image reads files
                path = Path(folder) / "upload"
                path.write_bytes(bytes(source))
                x, _ = load_image(path, image_size)
            return x, [], []
        x, _ = load_image(source, image_size)
        return x, [], []

    @torch.no_grad()
    def ask(self, image: torch.Tensor, question: str) -> dict:
        """Every reader's answer about one (3,S,S) image; confidence = softmax probability for learned ones."""
        out = {}
        for name, reader in self.answerers.items():
            if not isinstance(reader, torch.nn.Module):  # a rule judge: no weights, so no confidence
                reading = ""
                if hasattr(reader, "describe"):  # easy-VQA's judge names what it saw
                    shape, colour = reader.describe(image[None])[0]
                    reading = f"a {colour} {shape}" if shape else "no shape"
                out[name] = Answer(reader.answer_batch(image[None], [question])[0], None, reading)
            else:
                device = next(reader.parameters()).device
                ids = reader.vocab.encode(question)[None].to(device)  # (1,L)
                probs = reader(image[None].to(device), ids).softmax(-1)[0]  # (A,)
                k = int(probs.argmax())
                out[name] = Answer(reader.vocab.answers[k], float(probs[k]))
        return out

    def unknown_words(self, question: str) -> list[str]:
        readers = [r for r in self.answerers.values() if hasattr(r, "vocab")]
        return sorted({w for r in readers for w in r.vocab.unknown_words(question)})

    def pick(self, source, question: str | None = None, point=None) -> PickResult:
        """Compress `source` for real with `point`'s codec and ask every reader `question` about it."""
        codec = self.codec(point)
        x, questions, answers = self.image(source, codec.cfg.image_size)
        question = (question or "").strip() or (questions[0] if questions else "")
        if not question:
            raise VQAGanError("no question: an uploaded image comes without questions, so type one")
        data = encode_images(codec, x[None])  # the bytes of this image as a standalone .vqg file
        recon = decode_images(codec, data)[0][0]  # (3,S,S): decoded from those bytes only
        name = point.name if isinstance(point, Point) else codec.card.get("name", "codec")
        result = PickResult(x, recon, 8 * len(data), 8 * len(parse(data).payload), question,
                            answers[questions.index(question)] if question in questions else None, {}, {}, point=name)
        unknown = self.unknown_words(question)
        if unknown:
            result.message = (f"unknown word{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
                              f"The readers know only easy-VQA's words: {', '.join(self.vocab.words[2:])}")
        else:
            result.answers, result.answers_original = self.ask(recon, question), self.ask(x, question)
        return result

    # ----- fine-tuning -----
    def evaluate_codec(self, codec) -> dict:
        """Rate from real bytes (one stream, and one file per image) and judged accuracy on the fixed slice."""
        m = measure_codec(codec, self.slice.images, self.slice, self.answerers)
        return {"stream_bits": m.stream_bits, "file_bits": m.file_bits, **m.accuracy, "psnr": m.psnr,
                "images": len(m.images)}

    def evaluate_point(self, point: Point) -> Point:
        """The same point with metrics measured here on the slice (for ladders without benchmark numbers)."""
        return replace(point, metrics=self.evaluate_codec(self.codec(point)), source="slice")

    def finetune_config(self, changes: dict, steps: int, name: str, start: Point | None) -> TrainConfig:
        """The start point's own recipe (its card), then FINETUNE_DEFAULTS, then `changes`, then the
        playground's bounds (steps, data, where it writes), which no change can move."""
        card = load_card(start.path) if start is not None else {}
        base = from_dict(TrainConfig, card["train_config"]) if "train_config" in card else TrainConfig()
        if "config" in card:
            base = replace(base, model=from_dict(type(base.model), card["config"]))
        bounds = {"vqa.critic": self.critic_spec, "data.name": self.dataset, "data.limit_images": self.train_images,
                  "data.val_images": 32, "steps": steps, "batch_size": self.batch_size, "name": name,
                  "out_dir": str(guard_output(self.out_root / name)), "device": self.device,
                  "log_every": max(1, steps // 10), "eval_every": steps, "save_every": steps}
        return apply_overrides(base, as_flags({**FINETUNE_DEFAULTS, **changes, **bounds}))

    def finetune(self, changes: dict | None = None, steps: int = 50, progress: bool = True, start: Point | None = None,
                 name: str | None = None, max_steps: int = 2000) -> Point:
        """A bounded engine run from the nearest shipped point with `changes` to its recipe, as dotted
        overrides ({"vqa.weight": 2, "gan.weight": 0.1, "rate.target": 8}); returns the new, judged point."""
        changes = dict(changes or {})
        if not 1 <= steps <= max_steps:
            raise VQAGanError(f"fine-tune steps: {steps} is outside 1 to {max_steps} (the playground runs short jobs)")
        name = check_name(name if name is not None else default_name(changes))
        message = f"started from {start.name}" if start is not None else ""
        if start is None:
            start, message = nearest_point(self.points, changes)
        cfg = self.finetune_config(changes, steps, name, start)
        init_from = start.path if start is not None and start.latent_dim == cfg.model.latent_dim else None
        command = " ".join(["vqagan_lib.apps.playground.finetune", *as_flags(changes), f"(from {init_from or 'scratch'})"])
        result = train(cfg, progress=progress, init_from=init_from, command=command)
        path = guard_output(result.checkpoint_path)
        metrics = self.evaluate_codec(self.codec(str(path)))
        return Point(name, str(path), cfg.model.latent_dim, changes.get("rate.target"), metrics, "slice",
                     f"{message}; {steps} steps -> {path.parent}")
