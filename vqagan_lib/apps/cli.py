"""`python -m vqagan_lib COMMAND ...` (also installed as `vqagan`).

Each group of commands lives in its own module under `apps/commands/`, exposing `register(subparsers)`,
which adds each command's arguments. COMMANDS below names every command, its module and its one-line
help: `vqagan --help` is built from it alone, importing no command module (so it does not pay for torch),
and a command imports its own module only. The full parser (`build_parser()`, as tests and docs use it)
imports every module, so a missing one is an ImportError, never a smaller CLI.

Every failure is one line on stderr, `vqagan: error: <file>: <problem>`, with exit status 2: a
VQAGanError as raised, and as a last resort an OSError or MemoryError that escaped a handler.
Control characters in names are escaped (`fileio.shown`), so a hostile file name cannot drive
the terminal. Ctrl-C (SIGINT), SIGTERM and SIGHUP, at any point after Python has started, unwind
through every `finally`, so staging folders are removed, then print `vqagan: interrupted` and exit
128 + the signal number. While the command modules (and torch) are imported, a signal is held until
the imports end, since one raised inside an extension module's start-up can abort the process.
"""
import argparse
import contextlib
import importlib
import signal
import sys
import threading

from vqagan_lib.errors import VQAGanError
from vqagan_lib.fileio import shown

# Every command, in the order `--help` lists them: (its module under apps/commands/, its one-line help).
COMMANDS = {
    "data-tour": ("data", "print a dataset's facts: sizes, answers, the zero-bit floor, the information limit"),
    "compress": ("codec", "compress images into one .vqg file"),
    "decompress": ("codec", "decode a .vqg file into PNGs"),
    "info": ("codec", "check a .vqg file and describe it: model, image count, bytes, bits per image"),
    "models": ("codec", "list the shipped checkpoints with their measured rate and accuracy"),
    "train": ("train", "train a codec (optionally as a VAE-GAN, optionally with the VQA critic)"),
    "train-critic": ("critic", "train the frozen CNN VQA critic of a dataset (--data.name; CPU minutes)"),
    "train-judge": ("critic", "train the tiny ViLT judge from scratch (never used in training losses)"),
    "evaluate-answerers": ("critic", "accuracy of critic, ViLT judge and rule judge on original images"),
    "benchmark": ("bench", "measure every codec on a dataset's test set: bits on disk, judged accuracy, PSNR, speed"),
    "demo": ("bench", "compress the test set at every shipped rate point, decode, judge, report (make demo)"),
    "decode-budget": ("bench", "time `decompress` and its peak memory on the default budget's worst files"),
    "train-ladder": ("ladder", "train shipped rate points / ablations (see vqagan_lib/training/ladder.py)"),
    "course-times": ("course", "print the course map with each notebook's stored run time (from its metadata)"),
}
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so cleanup code runs."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame):
    raise Stopped(signum)


class _Commands:
    """What a module's `register` is handed as `subparsers`: add_parser(name) gives back the parser made
    here for that command (its help comes from COMMANDS), or a throwaway one for a command not being built."""

    def __init__(self, parsers: dict):
        self.parsers = parsers

    def add_parser(self, name: str, **settings) -> argparse.ArgumentParser:
        if name not in COMMANDS:
            raise KeyError(f"command {name!r} is registered but not listed in apps/cli.py's COMMANDS")
        parser = self.parsers.get(name) or argparse.ArgumentParser(prog=name, add_help=False)
        for key, value in settings.items():  # description, formatter_class: plain attributes of a parser
            setattr(parser, key, value)
        return parser


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command`, only that command's module is imported and its arguments
    added (every command is still listed, so `--help` and a misspelt command read as usual)."""
    parser = argparse.ArgumentParser(prog="vqagan", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    parsers = {name: subparsers.add_parser(name, help=help_text) for name, (_, help_text) in COMMANDS.items()}
    modules = {module for name, (module, _) in COMMANDS.items() if command is None or name == command}
    for module in sorted(modules, key=[m for m, _ in COMMANDS.values()].index):
        wanted = {n: p for n, p in parsers.items() if command is None or n == command}
        importlib.import_module(f"vqagan_lib.apps.commands.{module}").register(_Commands(wanted))
    return parser


@contextlib.contextmanager
def _signals_held():
    """Ctrl-C, SIGTERM and SIGHUP that arrive inside the block are held, then raised as usual when it ends.
    The command modules import torch: an exception raised while an extension module initialises can abort
    the whole process (SIGABRT, no cleanup, no message) instead of unwinding, so the imports run under this."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived = []
    held = {s: signal.signal(s, lambda signum, frame: arrived.append(signum)) for s in (signal.SIGINT, *_STOP_SIGNALS)}
    try:
        yield
    finally:
        for s, handler in held.items():
            signal.signal(s, handler)
    if arrived:
        raise KeyboardInterrupt if arrived[0] == signal.SIGINT else Stopped(arrived[0])


def _command_of(argv: list[str]) -> str:
    """The command word of argv (the first word that is not an option), or "" when there is none yet."""
    return next((a for a in argv if not a.startswith("-")), "")


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
        argv = sys.argv[1:] if argv is None else list(argv)
        with _signals_held():
            parser = build_parser(_command_of(argv))
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
