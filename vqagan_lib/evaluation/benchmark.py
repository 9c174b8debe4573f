"""The rate-accuracy benchmark: every codec, one run, real bytes on disk.

For each codec on a dataset's test set (`--data.name`; easy-VQA by default) it measures
  - bits per image from the size of files it wrote: one stream of all test images
    (header amortised) and one standalone file per image (header paid each time);
  - accuracy judged by the rule reader and the ViLT judge (neither ever trained against),
    beside the critic's own claim, overall and per question type;
  - PSNR and the IoU of each object's mask, as the rule judge segments it (is it in the right place and size?);
  - encode and decode throughput on one CPU core (and on the GPU when there is one).
Our ladder and its ablations come from the shipped checkpoints made for that dataset (their cards say
which); the classical codecs from
imagecodecs; the zero-bit floor from the questions alone.
Introduced in notebooks/06_evaluation.ipynb.
"""
import dataclasses
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from vqagan_lib.answerers.shapes import mask_iou
from vqagan_lib.answerers.vqa_eval import default_answerers, evaluate, table_columns
from vqagan_lib.checkpoint import list_checkpoints, load_card, update_card
from vqagan_lib.data.registry import DEFAULT, DataChoice, get_dataset
from vqagan_lib.data.floor import QuestionOnlyBaseline
from vqagan_lib.coding.bitstream import decode_pixels, encode_images
from vqagan_lib.data.pixels import as_float
from vqagan_lib.evaluation import report, speed
from vqagan_lib.evaluation.audit import audit_codes
from vqagan_lib.evaluation.baselines import classical_codecs, to_hwc_uint8
from vqagan_lib.evaluation.measure import Measurement, Scores, judge, measure_codec
from vqagan_lib.evaluation.report import CodecResult
from vqagan_lib.fileio import atomic_write_text
from vqagan_lib.models.codec import CODEC_KINDS, card_dataset, load_codec
from vqagan_lib.runtime import progress_bar as tqdm  # plain text when a notebook runs headless
from vqagan_lib.runtime import work_dir

ROLES = ("ours", "ablation")  # a shipped codec's card["ladder"]["role"]


@dataclass
class BenchmarkConfig:
    data: DataChoice = field(default_factory=DataChoice)  # the dataset whose test set is compressed and asked
    limit_images: int | None = None  # None: all 1,000 test images; QUICK runs take a slice
    codecs: tuple[str, ...] | None = None  # checkpoint names; None: every shipped codec with a ladder role
    classical: bool = True  # include JPEG, WebP, AVIF, JPEG 2000, JPEG XL
    classical_names: tuple[str, ...] | None = None  # keep only these classical codecs (None: all of them)
    out_dir: str = "runs/benchmark"  # results.md/.json and the plots; only README updates write the tracked reports/
    grid_images: int = 8  # originals shown in the reconstruction grid
    update_readme: bool = False  # rewrite README.md's results section from this run
    update_cards: bool = False  # write this run's numbers into the shipped codecs' cards (metrics.benchmark)
    progress: bool = True


@dataclass
class Reconstruction:
    images: torch.Tensor  # (N,3,S,S) float in [0,1]
    stream_bits: float
    file_bits: float
    encode_per_s: float
    decode_per_s: float


def _sizes_on_disk(blobs: list[bytes], folder: Path, suffix: str) -> list[int]:
    """Write each blob to its own file and read the sizes back from the file system."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = []
    for i, blob in enumerate(blobs):
        path = folder / f"{i:06d}{suffix}"
        path.write_bytes(blob)
        sizes.append(path.stat().st_size)
    return sizes


# Throughput is the fastest of this many runs of the same work, for every codec alike: one run of a table decode
# (a few milliseconds for the whole test set) is doubled by a stray page fault or interrupt.
TIMED_RUNS = 3


def _one_core(fn, runs: int = 1):
    """Time `fn` on one CPU thread, so our numbers compare with single-threaded libwebp: (its result, the
    fastest of `runs` runs in seconds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = float("inf")
        for _ in range(runs):
            start = time.perf_counter()
            result = fn()
            best = min(best, time.perf_counter() - start)
        return result, best
    finally:
        torch.set_num_threads(threads)


def _timed_runs(fn):
    return _one_core(fn, TIMED_RUNS)


def run_ours(codec, images: torch.Tensor, scratch: Path, split, answerers) -> Measurement:
    """Compress the 8-bit images (N,3,S,S) as one stream and as one file per image on disk, decode the stream
    from disk, judge."""
    return measure_codec(codec, images, split, answerers, files=True, scratch=scratch, timer=_timed_runs)


def our_latency(codec, images: torch.Tensor) -> dict:
    """One image at a time through compress and decompress, in process: 8-bit pixels -> a one-image .vqg
    -> 8-bit pixels."""
    return _one_core(lambda: speed.latency(lambda x: encode_images(codec, as_float(x[None])),
                                           lambda blob: decode_pixels(codec, blob),
                                           images[:speed.LATENCY_IMAGES]))[0]


def run_classical(codec, x: torch.Tensor, scratch: Path) -> Reconstruction:
    pixels = to_hwc_uint8(x)
    blobs, t_enc = _timed_runs(lambda: [codec.encode(np.ascontiguousarray(p)) for p in pixels])
    sizes = _sizes_on_disk(blobs, scratch / "files", ".bin")
    decoded, t_dec = _timed_runs(lambda: [codec.decode(b) for b in blobs])
    images = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).float() / 255.0
    bits = 8 * sum(sizes) / len(x)  # no container for many images: a "stream" is the files side by side
    return Reconstruction(images, bits, bits, len(x) / t_enc, len(x) / t_dec)


def classical_latency(codec, x: torch.Tensor) -> dict:
    pixels = [np.ascontiguousarray(p) for p in to_hwc_uint8(x[:speed.LATENCY_IMAGES])]
    return _one_core(lambda: speed.latency(codec.encode, codec.decode, pixels))[0]


def score(name: str, kind: str, setting: str, rec: Reconstruction | Measurement, x: torch.Tensor, split, answerers,
          original_masks: torch.Tensor) -> CodecResult:
    judged = rec if isinstance(rec, Scores) else judge(x, rec.images, split, answerers)  # ours: measured and judged
    acc = judged.accuracy
    masks = answerers["judge_rules"].object_masks(rec.images)  # (N,K,H,W): each object, as the rule judge reads it
    return CodecResult(
        name=name, kind=kind, setting=setting, stream_bits=rec.stream_bits, file_bits=rec.file_bits,
        judge_rules=acc["judge_rules"], judge_vilt=acc.get("judge_vilt", float("nan")), critic=acc["critic"],
        psnr=judged.psnr, iou=float(mask_iou(original_masks, masks).mean()),
        encode_per_s=rec.encode_per_s, decode_per_s=rec.decode_per_s,
        per_type=dict(judged.per_type["judge_rules"]), per_type_vilt=dict(judged.per_type.get("judge_vilt", {})),
        per_type_critic=dict(judged.per_type["critic"]))


def nominal_bits(card: dict) -> float:
    """A shipped point's ceiling from its card (older cards called it target_bits)."""
    ladder = card.get("ladder", {})
    return float(ladder.get("nominal_bits", ladder.get("target_bits", float("nan"))))


def shipped_ladder(names=None, dataset: str = DEFAULT) -> list[dict]:
    """Cards of the dataset's codecs to benchmark: ours first (by rate), then the ablations."""
    cards = [load_card(n) for n in names] if names else [c for c in list_checkpoints() if c.get("kind") in CODEC_KINDS]
    cards = [c for c in cards if (c.get("ladder", {}).get("role") in ROLES and card_dataset(c) == dataset) or names]
    return sorted(cards, key=lambda c: (ROLES.index(c.get("ladder", {}).get("role", "ours")), nominal_bits(c)))


def run_benchmark(cfg: BenchmarkConfig) -> dict:
    dataset = get_dataset(cfg.data.name)
    train, split = dataset.load_split("train"), dataset.load_split("test", limit_images=cfg.limit_images)
    x = split.images.float() / 255.0  # (N,3,S,S)
    answerers = default_answerers(cfg.data.name, without_missing_judge=True)
    rules = answerers["judge_rules"]
    masks = rules.object_masks(x)  # (N,K,H,W)
    floor = QuestionOnlyBaseline(train.questions, train.answers).accuracy(split.questions, split.answers)
    nan = float("nan")
    results = [CodecResult("zero-bit floor", "floor", "answer from the question alone", 0.0, 0.0, floor, floor, nan,
                           nan, nan, nan, nan)]
    jobs = [(c["name"], c["ladder"].get("role", "ours") if "ladder" in c else "ours", c["ladder"].get("setting", "") if "ladder" in c else "", c)
            for c in shipped_ladder(cfg.codecs, cfg.data.name)]
    if cfg.classical:
        jobs += [(c.name, "classical", c.setting, c) for c in classical_codecs()
                 if cfg.classical_names is None or c.name in cfg.classical_names]
    grid = {}
    # What the audit expects each code to be drawn as; only a judge that names one description per image can audit.
    train_labels = rules.describe(train.images) if hasattr(rules, "describe") else None
    out_dir = Path(cfg.out_dir) if Path(cfg.out_dir).is_absolute() else work_dir() / cfg.out_dir
    scratch_root = Path(tempfile.mkdtemp(prefix="vqagan-bench-"))
    try:
        for name, kind, setting, spec in tqdm(jobs, desc="benchmark", disable=not cfg.progress):
            scratch = scratch_root / name.replace(" ", "_")
            scratch.mkdir()
            if kind == "classical":
                rec = run_classical(spec, x, scratch)
                result = score(name, kind, setting, rec, x, split, answerers, masks)
                if name == speed.SPEED_REFERENCE:
                    result = dataclasses.replace(result, latency=classical_latency(spec, x))
            else:
                codec = load_codec(name)
                rec = run_ours(codec, split.images, scratch, split, answerers)
                audit = audit_codes(codec, train.images, rules, train_labels) if train_labels is not None else None
                result = dataclasses.replace(score(name, kind, setting, rec, x, split, answerers, masks),
                                             audit=audit.share if audit else float("nan"),
                                             nominal_bits=nominal_bits(spec),
                                             table_decoded=bool(getattr(codec, "decodes_by_table", False)),
                                             latency=our_latency(codec, split.images),
                                             against=spec.get("ladder", {}).get("against", ""))
            results.append(result)
            if kind != "classical" or name == speed.SPEED_REFERENCE:
                grid[name] = rec.images[: cfg.grid_images]
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)
    originals = {k: v for k, v in default_answerers_accuracy(x, split, answerers).items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    table = report.markdown_table(results)
    meta = {"dataset": cfg.data.name, "images": len(x), "questions": len(split), "torch": torch.__version__,
            "device": "cuda" if torch.cuda.is_available() else "cpu", "originals": originals,
            "information_bits": dataset.information_bits(), "reports": report_folder(out_dir),
            "start_up_seconds": {"vqagan --help": round(speed.start_up_seconds(), 3)}}
    report.write_json(results, out_dir / "results.json", meta)
    report.plot_rate_accuracy(results, out_dir / "rate_accuracy.png", floor=floor)
    report.plot_grid(x[: cfg.grid_images], grid, out_dir / "grid.png")
    summary = results_markdown(table, meta, results)
    # results.md sits beside the plots, so its image links drop the folder the README needs.
    atomic_write_text(out_dir / "results.md", summary.replace(f"]({meta['reports']}/", "](") + "\n")
    if cfg.update_readme:
        report.update_readme(work_dir() / "README.md", summary, *report.readme_markers(cfg.data.name))
    if cfg.update_cards:
        write_card_metrics([r for r in results if r.kind in ROLES], meta)
    return {"results": results, "meta": meta, "markdown": summary, "out_dir": out_dir}


def write_card_metrics(results: list[CodecResult], meta: dict) -> None:
    """Record each shipped codec's benchmark numbers in its card: the card's claims come from a measurement."""
    for r in results:
        measured = {**{k: v for k, v in asdict(r).items() if k not in ("name", "kind", "setting")},
                    "images": meta["images"], "command": f"python -m vqagan_lib benchmark --data.name {meta['dataset']} --update-cards"}
        update_card(r.name, lambda card, measured=measured: card.setdefault("metrics", {}).update(benchmark=measured))


def default_answerers_accuracy(x, split, answerers) -> dict:
    acc = evaluate(x, split, answerers)
    return {k: acc[k] for k in answerers}


def report_folder(out_dir: Path) -> str:
    """How the README links the run's plots: the folder relative to the work folder (absolute when outside it)."""
    try:
        return Path(out_dir).resolve().relative_to(work_dir().resolve()).as_posix()
    except ValueError:
        return Path(out_dir).resolve().as_posix()


# The project's targets on each dataset's test set, checked against this run only: (what, rate bound,
# which rate, accuracy both judges must reach, mask IoU needed, a group of question types and the accuracy
# both judges must reach on it).
TARGETS = (
    ("at most 8 bits/image (stream): both judges >= 97%", 8.0, "stream_bits", 0.97, None, None, None),
    ("at most 32 bits/image (stream): both judges >= 99% and shape IoU >= 0.8", 32.0, "stream_bits", 0.99, 0.8, None, None),
    ("a standalone .vqg of at most 8 bytes: both judges >= 97%", 64.0, "file_bits", 0.97, None, None, None),
)
SCENE_TARGETS = (
    ("at most 48 bits/image (stream): both judges >= 95% overall and >= 92% on the relational questions",
     48.0, "stream_bits", 0.95, None, "relational", 0.92),
    ("at most 128 bits/image (stream): both judges >= 98% and object-mask IoU >= 0.8", 128.0, "stream_bits", 0.98, 0.8,
     None, None),
)
TARGETS_BY_DATASET = {"easyvqa": TARGETS, "sort-of-clevr": SCENE_TARGETS}
MAX_CRITIC_GAP = 0.01  # the critic may claim at most 1 point more than either judge reads
MIN_AUDIT = 0.99  # share of used codes the rule judge must read as intended
FEWER_BITS_THAN_WEBP = 20  # Sort-of-CLEVR: the point of ours that reaches WebP q0's accuracy, in at least 20x fewer bits


def both(a: float, b: float) -> float:
    """The weaker of two judges' readings; NaN when either is missing (Python's min would return the other)."""
    return float("nan") if a != a or b != b else min(a, b)


def _judged(r: CodecResult, group: str | None = None) -> float:
    """The weaker of the two judges (on a group of question types, if named): a target holds only if both agree."""
    if group is None:
        return both(r.judge_rules, r.judge_vilt)
    return both(r.per_type.get(group, float("nan")), r.per_type_vilt.get(group, float("nan")))


def _reading(r: CodecResult, group: str | None = None) -> float:
    """Both judges' weaker reading, or the rule judge's alone where no ViLT judge is shipped: what ranks points."""
    judged = _judged(r, group)
    return judged if judged == judged else (r.judge_rules if group is None else r.per_type.get(group, float("nan")))


def _meets(r: CodecResult, needed: float, iou, group, group_needed) -> bool:
    return (_judged(r) >= needed and (iou is None or r.iou >= iou)
            and (group is None or _judged(r, group) >= group_needed))


def target_lines(results: list[CodecResult], dataset: str = DEFAULT) -> list[str]:
    """One line per target: met or missed, by how much, from this run's measurements."""
    ours = [r for r in results if r.kind == "ours"]
    lines = []
    for what, bound, rate_key, needed, iou, group, group_needed in TARGETS_BY_DATASET.get(dataset, ()):
        within = [r for r in ours if getattr(r, rate_key) <= bound]
        if not within:
            lines.append(f"- {what}: **missed**, no rate point of ours is within the bound.")
            continue
        best = max(within, key=lambda r: (_meets(r, needed, iou, group, group_needed), _reading(r)))
        # Without a ViLT judge the shortfall is the rule judge's alone, and says so.
        judge = "" if best.judge_vilt == best.judge_vilt else " (rule judge)"
        short = ["no ViLT judge to read it"] if judge else []
        short += [f"by {100 * (needed - _reading(best)):.1f} points{judge}"] if _reading(best) < needed else []
        short += [f"IoU {best.iou:.2f} < {iou}"] if iou is not None and not best.iou >= iou else []
        if group is not None and _reading(best, group) < group_needed:
            short += [f"{group} by {100 * (group_needed - _reading(best, group)):.1f} points{judge}"]
        verdict = f"**missed** ({', '.join(short)})" if short else "**met**"
        lines.append(f"- {what}: {verdict}; best {best.name}: {getattr(best, rate_key):.1f} bits, rules "
                     f"{best.judge_rules:.1%}, ViLT " + (f"{best.judge_vilt:.1%}" if best.judge_vilt == best.judge_vilt else "not shipped")
                     + (f", IoU {best.iou:.2f}" if iou else "")
                     + (f", {group} {_reading(best, group):.1%}" if group else "") + ".")
    if ours:
        gaps = {r.name: r.critic - min(x for x in (r.judge_rules, r.judge_vilt) if x == x) for r in ours}
        worst = max(gaps, key=gaps.get)
        verdict = "**met**" if gaps[worst] <= MAX_CRITIC_GAP else f"**missed** by {100 * (gaps[worst] - MAX_CRITIC_GAP):.1f} points"
        lines.append(f"- the critic claims at most 1 point more than either judge, at every point of ours: {verdict} "
                     f"(largest: {worst}, {100 * gaps[worst]:+.1f} points).")
        audited = [r for r in ours if r.audit == r.audit]
        if audited:
            low = min(audited, key=lambda r: r.audit)
            verdict = "**met**" if low.audit >= MIN_AUDIT else f"**missed** by {100 * (MIN_AUDIT - low.audit):.1f} points"
            lines.append(f"- every used code drawn as intended (exhaustive audit >= 99%): {verdict} "
                         f"(lowest: {low.name}, {low.audit:.1%}).")
    lines += speed.speed_lines(results)
    webp = next((r for r in results if r.name == speed.SPEED_REFERENCE), None)
    if dataset != DEFAULT and webp is not None:
        lines.append(webp_line(ours, webp))
    return lines


def webp_line(ours: list[CodecResult], webp: CodecResult) -> str:
    """Our cheapest point that answers as well as WebP q0 (both judges), and how many times fewer bits it spends."""
    what = f"a point of ours at WebP q0's accuracy in at least {FEWER_BITS_THAN_WEBP}x fewer bits"
    if webp.judge_vilt != webp.judge_vilt:
        what += " (rule judge alone: no ViLT judge is shipped)"
    level = _reading(webp)
    matching = [r for r in ours if _reading(r) >= level]
    if not matching:
        return f"- {what}: **missed**, no point of ours reaches WebP q0's {level:.1%} (both judges)."
    best = min(matching, key=lambda r: r.stream_bits)
    ratio = webp.stream_bits / max(best.stream_bits, 1e-9)
    verdict = "**met**" if ratio >= FEWER_BITS_THAN_WEBP else "**missed**"
    return (f"- {what}: {verdict}; {best.name} {best.stream_bits:.1f} bits against WebP q0's {webp.stream_bits:.0f} "
            f"({ratio:.0f}x fewer) at {_reading(best):.1%} against {level:.1%}.")


def per_type_table(results: list[CodecResult], dataset: str = DEFAULT) -> str:
    """Rule-judge accuracy per question type (and group of types) of every codec that was judged."""
    columns = table_columns(dataset)
    rows = ["| codec | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for r in results:
        if r.per_type:
            rows.append(f"| {r.name} | " + " | ".join(f"{r.per_type.get(k, float('nan')):.1%}" for k in columns) + " |")
    return "\n".join(rows)


def ablation_table(results: list[CodecResult], dataset: str = DEFAULT) -> str:
    """Each ablation beside the point it is matched with: bits and rule-judge accuracy per group of question types."""
    by_name = {r.name: r for r in results}
    groups = ["all"] + [g for g in get_dataset(dataset).QUESTION_GROUPS if g != "all"]
    rows = ["| ablation | bits | " + " | ".join(groups) + " | against | bits | " + " | ".join(groups) + " |",
            "|---|---|" + "---|" * len(groups) + "---|---|" + "---|" * len(groups)]

    def cells(r: CodecResult) -> str:
        return f"{r.stream_bits:.1f} | " + " | ".join(f"{r.per_type.get(g, float('nan')):.1%}" for g in groups)

    for r in results:
        match = by_name.get(r.against)
        if r.kind == "ablation" and match is not None:
            rows.append(f"| {r.name} | {cells(r)} | {match.name} | {cells(match)} |")
    return "\n".join(rows)


def critic_gap_table(results: list[CodecResult], dataset: str = DEFAULT) -> str:
    """Per question type, the critic's claim minus each judge's reading, in points: where a decoder could be
    pleasing the critic rather than keeping what is asked (the check that stands in for the audit above 12 bits)."""
    columns = table_columns(dataset)
    rows = ["| codec | judge | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    nan = float("nan")
    for r in results:
        if r.kind in ROLES and r.per_type_critic:
            for judge_name, table in (("rules", r.per_type), ("ViLT", r.per_type_vilt)) if r.per_type_vilt else (("rules", r.per_type),):
                gaps = [100 * (r.per_type_critic.get(k, nan) - table.get(k, nan)) for k in columns]
                rows.append(f"| {r.name} | {judge_name} | " + " | ".join(f"{g:+.1f}" for g in gaps) + " |")
    return "\n".join(rows)


def results_markdown(table: str, meta: dict, results: list[CodecResult]) -> str:
    o = meta["originals"]
    dataset = meta.get("dataset", DEFAULT)
    folder = meta.get("reports", "reports")
    info = meta.get("information_bits")
    lines = [
        f"Measured by `python -m vqagan_lib benchmark{'' if dataset == DEFAULT else ' --data.name ' + dataset}` on "
        f"{meta['images']} {DATASET_TITLES.get(dataset, dataset)} test images "
        f"({meta['questions']} questions), torch {meta['torch']}, {meta['device']}. "
        f"On the original images the rule judge scores {o['judge_rules']:.1%}, "
        + (f"the ViLT judge {o['judge_vilt']:.1%}, " if "judge_vilt" in o else
           "the ViLT judge is not shipped for this dataset (so no target that needs both judges can be met), ")
        + f"the critic {o['critic']:.1%}."
        + (f" The answers carry about {info:.1f} bits of information an image." if info is not None else "")
        + f" Throughput is measured on one CPU core, the fastest of {TIMED_RUNS} runs of the same work for every codec.",
        "",
        table,
        "",
        "Rule-judge accuracy per question type:",
        "",
        per_type_table(results, dataset),
        "",
    ]
    ablations = ablation_table(results, dataset)
    if ablations.count("\n") > 1:
        lines += ["Each ablation beside the point it is matched with (stream bits, rule-judge accuracy):", "", ablations, ""]
    gaps = critic_gap_table(results, dataset)
    if gaps.count("\n") > 1:
        lines += ["The critic's claim minus each judge's reading, per question type (points):", "", gaps, ""]
    speeds = speed.speed_table(results)
    if speeds:
        start_up = meta.get("start_up_seconds", {})
        lines += ["Speed against WebP q0 on one CPU core, in this run: throughput ratios (the table above), and one "
                  "image at a time through compress and decompress in process (8-bit pixels in memory to bytes and "
                  "back), as WebP is timed:", "", speeds, ""]
        lines += [f"Start-up of `{cmd}` in a fresh process: {sec:.2f} s (median of {speed.START_UP_RUNS})."
                  for cmd, sec in start_up.items()] + ([""] if start_up else [])
    lines += [
        "Targets, checked against this run:",
        "",
        *target_lines(results, dataset),
        "",
        f"![rate vs accuracy]({folder}/rate_accuracy.png)",
        "",
        f"![originals and reconstructions]({folder}/grid.png)",
    ]
    return "\n".join(lines)


DATASET_TITLES = {"easyvqa": "easy-VQA", "sort-of-clevr": "Sort-of-CLEVR"}


def rerender(results_json, update_readme: bool = True) -> str:
    """Rebuild the Markdown (and the README section) from a saved results.json of an earlier run."""
    data = json.loads(Path(results_json).read_text())
    results = [CodecResult.from_json(r) for r in data["results"]]
    summary = results_markdown(report.markdown_table(results), data, results)
    if update_readme:
        report.update_readme(work_dir() / "README.md", summary, *report.readme_markers(data.get("dataset", DEFAULT)))
    return summary
