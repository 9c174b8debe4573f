"""`train-ladder NAME [NAME ...]`: reproduce a shipped rate point or ablation into the shipped checkpoints (vqagan_lib/checkpoints/)."""
import sys

from vqagan_lib.training.ladder import LADDER, train_point



def register(subparsers) -> None:
    p = subparsers.add_parser("train-ladder")
    p.add_argument("names", nargs="+", choices=list(LADDER) + ["all"], metavar="NAME",
                   help=f"one of: {', '.join(LADDER)}, or 'all'")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    p.add_argument("--no-ship", action="store_true", help="leave the result in runs/NAME instead of the shipped checkpoints")
    p.set_defaults(handler=run_train_ladder)


def run_train_ladder(args) -> int:
    names = list(LADDER) if "all" in args.names else args.names
    for name in names:
        command = f"python -m vqagan_lib train-ladder {name}" + (f" --steps {args.steps}" if args.steps else "")
        result = train_point(name, steps=args.steps, ship_it=not args.no_ship, command=command)
        print(f"{name}: saved {result.checkpoint_path}", file=sys.stderr)
    return 0
