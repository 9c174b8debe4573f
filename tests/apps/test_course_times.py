"""The README's course-map times are the stored runs' own, read from the notebooks' execution metadata."""
import json
from pathlib import Path

import pytest

from vqagan_lib.apps.cli import main
from vqagan_lib.apps.course_times import (COURSE_END, COURSE_START, format_duration, notebook_wall_seconds,
                                          update_course_block)
from vqagan_lib.errors import VQAGanError

ROOT = Path(__file__).resolve().parents[2]


def write_notebook(path: Path, stamps: list[tuple[str, str]]) -> Path:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# title"}]
    cells += [{"cell_type": "code", "metadata": {"execution": {"iopub.execute_input": a, "shell.execute_reply": b}},
               "source": "", "outputs": [], "execution_count": 1} for a, b in stamps]
    path.write_text(json.dumps({"cells": cells, "metadata": {"language_info": {"version": "3.11.7"}},
                                "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_wall_seconds_is_last_reply_minus_first_input(tmp_path):
    nb = write_notebook(tmp_path / "00_x.ipynb", [("2026-01-01T10:00:00.5Z", "2026-01-01T10:00:02Z"),
                                                  ("2026-01-01T10:00:03Z", "2026-01-01T10:02:00.5Z")])
    assert notebook_wall_seconds(nb) == pytest.approx(120.0)


def test_a_notebook_never_executed_is_an_error(tmp_path):
    with pytest.raises(VQAGanError, match="no execution timestamps"):
        notebook_wall_seconds(write_notebook(tmp_path / "00_x.ipynb", []))


def test_durations_read_in_seconds_then_minutes():
    assert [format_duration(s) for s in (5.2, 59.4, 61, 552)] == ["5 s", "59 s", "1.0 min", "9.2 min"]


def test_block_rewrites_times_and_names_overlapping_runs(tmp_path):
    write_notebook(tmp_path / "00_a.ipynb", [("2026-01-01T10:00:00Z", "2026-01-01T10:10:00Z")])
    write_notebook(tmp_path / "01_b.ipynb", [("2026-01-01T10:05:00Z", "2026-01-01T10:06:00Z")])
    write_notebook(tmp_path / "02_c.ipynb", [("2026-01-01T11:00:00Z", "2026-01-01T11:00:30Z")])
    readme = (f"intro\n{COURSE_START}\nold text\n\n| notebook | what | time |\n|---|---|---|\n"
              + "".join(f"| [{n}](notebooks/{n}.ipynb) | teaches {n} | ~1 min |\n" for n in ("00_a", "01_b", "02_c"))
              + f"{COURSE_END}\nafter\n")
    out = update_course_block(readme, tmp_path)
    assert out.startswith("intro\n") and out.endswith(f"{COURSE_END}\nafter\n") and "old text" not in out
    assert "| [00_a](notebooks/00_a.ipynb) | teaches 00_a | 10.0 min (ran beside 01) |" in out
    assert "| [01_b](notebooks/01_b.ipynb) | teaches 01_b | 1.0 min (ran beside 00) |" in out
    assert "| [02_c](notebooks/02_c.ipynb) | teaches 02_c | 30 s |" in out
    assert "Python 3.11.7" in out
    assert update_course_block(out, tmp_path) == out  # regenerating is a fixed point


def test_readme_times_are_the_stored_notebooks_times():
    readme = (ROOT / "README.md").read_text()
    assert readme == update_course_block(readme, ROOT / "notebooks"), \
        "README course times differ from the stored notebooks: run `python -m vqagan_lib course-times --update-readme`"


def test_command_prints_the_block(capsys, monkeypatch):
    monkeypatch.setenv("VQAGAN_WORKDIR", str(ROOT))
    assert main(["course-times"]) == 0
    assert "| [00_data_tour](notebooks/00_data_tour.ipynb)" in capsys.readouterr().out
