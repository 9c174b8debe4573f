"""Benchmark commands: `benchmark` (the full rate-accuracy comparison), `demo` (make demo) and `decode-budget`."""
import json
import time
from pathlib import Path

from vqagan_lib.data.registry import DEFAULT, DataChoice, dataset_names
from vqagan_lib.errors import VQAGanError
from vqagan_lib.evaluation import decode_budget, speed
from vqagan_lib.evaluation.benchmark import BenchmarkConfig, rerender, run_benchmark, shipped_ladder, target_lines
from vqagan_lib.evaluation.report import split_at_markers, update_readme
from vqagan_lib.fileio import atomic_write_text
from vqagan_lib.runtime import CHECKPOINT_DIR, is_quick, work_dir



def register(subparsers) -> None:
    p = subparsers.add_parser("benchmark")
    _add_common(p)
    p.add_argument("--update-readme", action="store_true", help="rewrite README.md's results section from this run")
    p.add_argument("--update-cards", action="store_true", help="write this run's numbers into the shipped codecs' cards")
    p.add_argument("--from-json", default=None, metavar="RESULTS_JSON",
                   help="measure nothing: re-render results.md (and, with --update-readme, the README) from a saved run")
    p.set_defaults(handler=run_benchmark_command)
    d = subparsers.add_parser("demo")
    _add_common(d)
    d.set_defaults(handler=run_demo)
    b = subparsers.add_parser("decode-budget")
    b.add_argument("--model", default=decode_budget.DEFAULT_MODEL, help=f"codec to measure (default {decode_budget.DEFAULT_MODEL})")
    b.add_argument("--update-readme", action="store_true", help="rewrite README.md's decode-budget sentences from this run")
    b.set_defaults(handler=run_decode_budget)


def _add_common(p) -> None:
    p.add_argument("--data.name", dest="data_name", default=DEFAULT, choices=dataset_names(),
                   help=f"the dataset whose test set is compressed and asked (default {DEFAULT})")
    p.add_argument("--limit-images", type=int, default=None, help="use the first N test images (default: all 1,000; QUICK: 100)")
    p.add_argument("--codecs", default=None, help="comma-separated checkpoint names (default: every shipped ladder codec)")
    p.add_argument("--no-classical", action="store_true", help="skip JPEG / WebP / AVIF / JPEG 2000 / JPEG XL")
    p.add_argument("--out", default=None,
                   help="output folder (default: runs/benchmark/, or reports/ with --update-readme; demo: runs/demo/; "
                        "another dataset than the default adds a folder of its name)")


def _config(args, default_out: str, **extra):
    """Only `benchmark --update-readme` writes the tracked reports/: every other run writes under runs/."""
    limit = args.limit_images if args.limit_images is not None else (100 if is_quick() else None)
    codecs = tuple(args.codecs.split(",")) if args.codecs else None
    default_out = default_out if args.data_name == DEFAULT else f"{default_out}/{args.data_name}"
    return BenchmarkConfig(data=DataChoice(args.data_name), limit_images=limit, codecs=codecs,
                           classical=not args.no_classical, out_dir=args.out or default_out, **extra)


def run_benchmark_command(args) -> int:
    if args.from_json:
        summary = rerender(args.from_json, update_readme=args.update_readme)
        folder = json.loads(Path(args.from_json).read_text()).get("reports", "reports")
        atomic_write_text(Path(args.from_json).with_name("results.md"), summary.replace(f"]({folder}/", "](") + "\n")
        print(summary)
        return 0

    default_out = "reports" if args.update_readme else "runs/benchmark"
    out = run_benchmark(_config(args, default_out, update_readme=args.update_readme, update_cards=args.update_cards))
    _print_summary(out, args.data_name)
    print(f"\nwrote {out['out_dir']}/results.md, results.json, rate_accuracy.png, grid.png")
    return 0


def _print_summary(out: dict, dataset: str) -> None:
    """The results table, the speed ratios against WebP q0, and every target met or missed."""
    print(out["markdown"].split("\n\n")[1])
    speeds = speed.speed_table(out["results"])
    if speeds:
        print(f"\n{speeds}")
    print("\n" + "\n".join(target_lines(out["results"], dataset)))


def run_demo(args) -> int:
    if not shipped_ladder(dataset=args.data_name):
        raise VQAGanError(f"{CHECKPOINT_DIR}: no shipped ladder codec found (see README: Checkpoints)")
    start = time.perf_counter()
    # The demo keeps WebP q0 as the one classical reference: the full set (AVIF and JPEG XL are slow
    # encoders) is `benchmark`'s job, and the demo should finish in a few minutes on a CPU.
    out = run_benchmark(_config(args, "runs/demo", classical_names=("WebP q0",)))
    _print_summary(out, args.data_name)
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; report in {out['out_dir']}/")
    return 0


def run_decode_budget(args) -> int:
    readme = work_dir() / "README.md"
    if args.update_readme:  # a README without the markers is refused before the minutes of measuring
        split_at_markers(readme.read_text(), decode_budget.README_START, decode_budget.README_END, str(readme))
    section = decode_budget.render_section(decode_budget.measure_decode_budget(args.model))
    print(section)
    if args.update_readme:
        update_readme(readme, section, decode_budget.README_START, decode_budget.README_END)
        print(f"\nwrote {readme}")
    return 0
