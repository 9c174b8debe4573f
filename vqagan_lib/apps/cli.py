"""`python -m vqagan_lib COMMAND ...` (also installed as `vqagan`).

Each group of commands lives in its own module under `apps/commands/`, exposing `register(subparsers)`;
they are imported by name below, so a missing module is an ImportError, never a smaller CLI. Handlers
import their heavy optional dependencies (transformers, matplotlib, imagecodecs) lazily so `--help` stays instant.
Every user-facing problem is a VQAGanError, printed as one line with exit status 2.
"""
import argparse
import sys

from vqagan_lib.apps.commands import bench, codec, course, critic, data, ladder, train
from vqagan_lib.errors import VQAGanError

# Modules that register subcommands, in the order `--help` lists them.
COMMAND_MODULES = [data, codec, train, critic, bench, ladder, course]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vqagan", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in COMMAND_MODULES:
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
