"""The README is part of the product: its course map, commands and results markers must not rot."""
import re
import shlex
from pathlib import Path

from vqagan_lib.apps.cli import build_parser
from vqagan_lib.evaluation.report import README_END, README_START

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_course_map_lists_exactly_the_notebooks_in_order():
    listed = re.findall(r"\]\(notebooks/(\d\d_[a-z0-9_]+\.ipynb)\)", README)
    on_disk = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert listed == on_disk


def test_every_readme_command_parses():
    parser = build_parser()
    joined = README.replace("\\\n", " ")  # shell line continuations
    commands = [line.split("#")[0].strip() for line in joined.splitlines() if line.startswith("python -m vqagan_lib ")]
    assert len(commands) >= 7
    for command in commands:
        args, extra = parser.parse_known_args(shlex.split(command)[3:])
        assert extra == [] or getattr(args, "accepts_overrides", False), command


def test_results_section_has_its_markers():
    assert README.count(README_START) == 1 and README.count(README_END) == 1


def test_every_notebook_has_goals_summary_and_exercises():
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert "Goals" in nb.cells[0].source, path.name
        assert "## Summary" in text and "## Exercises" in text, path.name
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), path.name
