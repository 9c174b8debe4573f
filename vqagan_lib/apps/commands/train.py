"""Training command: `train [--config FILE.json] [--name NAME] [--a.b value ...]` and `train --resume RUN_DIR`.

Examples:
    python -m vqagan_lib train --name vaegan --gan.weight 0.5 --steps 3000
    python -m vqagan_lib train --config my_run.json --batch_size 32
    python -m vqagan_lib train --resume runs/vaegan --steps 6000
    python -m vqagan_lib train --init answers-8bit --stage generator --model.model fsq --steps 3000
"""
import json
import sys
from pathlib import Path

from vqagan_lib.config import apply_overrides, from_dict
from vqagan_lib.errors import VQAGanError
from vqagan_lib.training.engine import TrainConfig, resume, train


def register(subparsers) -> None:
    p = subparsers.add_parser("train",
                              description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="JSON file of TrainConfig fields (nested like the dataclasses)")
    p.add_argument("--name", help="run name: outputs go to runs/NAME")
    p.add_argument("--init", metavar="CHECKPOINT", help="start from this codec (a name or a .safetensors path): "
                   "stage 'generator' needs one, any other stage fine-tunes it")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to RUN_DIR/log.csv)")
    p.set_defaults(handler=run_train, accepts_overrides=True)


def load_config(path: Path | None):
    if path is None:
        return TrainConfig()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise VQAGanError(f"{path}: no such config file") from None
    except json.JSONDecodeError as e:
        raise VQAGanError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    try:
        return from_dict(TrainConfig, data)
    except TypeError as e:
        raise VQAGanError(f"{path}: not a TrainConfig ({e})") from None


def run_train(args) -> int:
    command = "python -m vqagan_lib " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else None
    if args.resume is not None:
        if args.config is not None or args.name is not None or args.init is not None:
            raise VQAGanError("--resume takes the config and start from RUN_DIR/state.json; pass only --field overrides with it")
        result = resume(args.resume, progress=not args.no_progress, overrides=args.overrides)
    else:
        cfg = load_config(args.config)
        if args.name is not None:
            cfg = apply_overrides(cfg, ["--name", args.name])
        cfg = apply_overrides(cfg, args.overrides)
        result = train(cfg, progress=not args.no_progress, init_from=args.init, command=command)
    shown = {k: round(v, 4) for k, v in result.logs.items() if k.startswith("val/") or k in ("train/rate_bits", "train/psnr")}
    print(f"saved {result.checkpoint_path}")
    print(json.dumps(shown))
    return 0
