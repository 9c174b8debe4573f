"""`python -m vqagan_lib COMMAND ...` (also installed as `vqagan`).

Each group of commands lives in its own module under `apps/commands/`, exposing `register(subparsers)`;
they are imported by name in `build_parser`, so a missing module is an ImportError, never a smaller CLI.
Handlers import their heavy optional dependencies (transformers, matplotlib, imagecodecs) lazily so
`--help` stays quick.

Every failure is one line on stderr, `vqagan: error: <file>: <problem>`, with exit status 2: a
VQAGanError as raised, and as a last resort an OSError or MemoryError that escaped a handler.
Control characters in names are escaped (`fileio.shown`), so a hostile file name cannot drive
the terminal. Ctrl-C (SIGINT), SIGTERM and SIGHUP, at any point after Python has started (the
command modules and torch are imported under the same guard), unwind through every `finally`,
so staging folders are removed, then print `vqagan: interrupted` and exit 128 + the signal number.
"""
import argparse
import importlib
import signal
import sys
import threading

from vqagan_lib.errors import VQAGanError
from vqagan_lib.fileio import shown

# Modules under apps/commands/ that register subcommands, in the order `--help` lists them.
COMMAND_MODULES = ["data", "codec", "train", "critic", "bench", "ladder", "course"]
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so cleanup code runs."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame):
    raise Stopped(signum)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vqagan", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"vqagan_lib.apps.commands.{name}").register(subparsers)
    return parser


def _subject(args) -> str:
    """The file a failure is about, for errors that do not name one themselves."""
    for attr in ("input", "output"):
        if getattr(args, attr, None):
            return shown(getattr(args, attr))
    return "vqagan"


def main(argv=None) -> int:
    handlers = {}
    if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
        handlers = {s: signal.signal(s, _stop) for s in _STOP_SIGNALS}
    args = None
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "accepts_overrides", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = extra
        return int(args.handler(args) or 0)
    except VQAGanError as e:
        print(f"vqagan: error: {shown(e)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"vqagan: error: {_subject(args)}: out of memory", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"vqagan: error: {shown(e.filename or _subject(args))}: {shown(e.strerror or e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print("vqagan: interrupted", file=sys.stderr)
        return 128 + (e.signum if isinstance(e, Stopped) else signal.SIGINT)
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    raise SystemExit(main())
