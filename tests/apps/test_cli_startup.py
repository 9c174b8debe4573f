"""The command line starts quickly: `--help` lists every command without importing a command module."""
import subprocess
import sys

from vqagan_lib.apps.cli import COMMANDS, build_parser

HELP_IN_A_FRESH_PROCESS = """
import sys
from vqagan_lib.apps.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print("torch imported:", "torch" in sys.modules)
"""


def _commands(parser):
    return next(a for a in parser._actions if a.dest == "command").choices


def test_help_lists_every_command_without_importing_torch():
    out = subprocess.run([sys.executable, "-c", HELP_IN_A_FRESH_PROCESS], capture_output=True, text=True,
                         check=True).stdout
    assert all(name in out for name in COMMANDS)
    assert out.strip().endswith("torch imported: False")


def test_the_full_parser_gives_every_listed_command_its_handler():
    commands = _commands(build_parser())
    assert list(commands) == list(COMMANDS)
    assert all(p.get_default("handler") is not None for p in commands.values())


def test_one_command_builds_its_own_arguments_only():
    commands = _commands(build_parser("models"))
    assert commands["models"].get_default("handler") is not None
    assert commands["compress"].get_default("handler") is None  # listed for --help, not built
