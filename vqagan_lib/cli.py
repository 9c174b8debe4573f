"""`python -m vqagan_lib COMMAND ...` (also installed as `vqagan`).

Each group of commands lives in its own `cli_*.py` module exposing `register(subparsers)`;
handlers import their heavy dependencies lazily so `--help` stays instant.
Every user-facing problem is a VQAGanError, printed as one line with exit status 2.
"""
import argparse
import importlib
import sys

from vqagan_lib.errors import VQAGanError

# Modules that register subcommands, in the order `--help` lists them.
COMMAND_MODULES = [
    "vqagan_lib.cli_data",
    "vqagan_lib.cli_codec",
    "vqagan_lib.cli_train",
    "vqagan_lib.cli_critic",
    "vqagan_lib.cli_bench",
    "vqagan_lib.cli_ladder",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vqagan", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # a real missing dependency, not a module still to be written
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    try:
        return int(args.handler(args) or 0)
    except VQAGanError as e:
        print(f"vqagan: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vqagan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
