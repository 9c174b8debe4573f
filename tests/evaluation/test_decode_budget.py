"""decode-budget: the README sentences it renders, the markers it rewrites, and how it measures a child.

The real measurement (two `decompress` runs on 67-megapixel files, a minute or two) is not run here.
"""
import sys
from pathlib import Path

import pytest

from vqagan_lib.apps.cli import main
from vqagan_lib.errors import VQAGanError
from vqagan_lib.evaluation import decode_budget
from vqagan_lib.evaluation.decode_budget import (README_END, README_START, DecodeBudgetRun, WorstFile, _child,
                                                 measure_decode_budget, render_section)
from vqagan_lib.evaluation.report import README_END as RESULTS_END
from vqagan_lib.evaluation.report import README_START as RESULTS_START
from vqagan_lib.evaluation.report import split_at_markers, update_readme

ROOT = Path(__file__).resolve().parents[2]


def _run() -> DecodeBudgetRun:
    return DecodeBudgetRun(model="vqagan-64bit", machine="a 2-core x86_64 CPU with 1 torch thread (load average 2.0 before the run)",
                           many=WorstFile(10_000, 82, 81, 255, 21.96, 864.4), one=WorstFile(1, 7071, 7071, 0, 3.71, 1935.2),
                           baseline_mb=813.6)


def test_section_states_model_machine_files_and_numbers():
    text = render_section(_run())
    assert "\n" not in text
    for part in ("vqagan-64bit model", "a 2-core x86_64 CPU with 1 torch thread (load average 2.0 before the run)",
                 "`python -m vqagan_lib decode-budget`", "10,000 images of 82x81 with 255-byte names",
                 "22.0 s and 864 MB peak memory", "one 7071x7071 image, 3.7 s and 1,935 MB", "alone peaks at 814 MB"):
        assert part in text, part


def test_only_the_decode_budget_block_is_rewritten(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"top\n{RESULTS_START}\ntable\n{RESULTS_END}\nmiddle\n{README_START}\nold\n{README_END}\nbottom\n")
    update_readme(readme, "new sentence\n", README_START, README_END)
    assert readme.read_text() == (f"top\n{RESULTS_START}\ntable\n{RESULTS_END}\nmiddle\n"
                                  f"{README_START}\nnew sentence\n{README_END}\nbottom\n")
    update_readme(readme, "new table")  # the results markers stay the default
    assert f"{RESULTS_START}\nnew table\n{RESULTS_END}" in readme.read_text()


@pytest.mark.parametrize("text", ["no markers", f"{README_END}\n{README_START}", f"{README_START}\n{README_START}\n{README_END}"])
def test_missing_doubled_or_reversed_markers_are_refused(text):
    with pytest.raises(VQAGanError, match="markers not found once each"):
        split_at_markers(text, README_START, README_END, "README.md")


def test_the_readme_holds_the_decode_budget_markers_once():
    text = (ROOT / "README.md").read_text()
    assert text.count(README_START) == 1 and text.count(README_END) == 1


def test_unknown_model_is_one_clear_error(capsys):
    with pytest.raises(VQAGanError, match="no-such-model"):
        measure_decode_budget("no-such-model")
    assert main(["decode-budget", "--model", "no-such-model"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vqagan: error: no-such-model") and "\n" not in err


def test_update_readme_without_markers_is_refused_before_measuring(tmp_path, monkeypatch, capsys):
    (tmp_path / "README.md").write_text("no markers here\n")
    monkeypatch.setenv("VQAGAN_WORKDIR", str(tmp_path))
    monkeypatch.setattr(decode_budget, "measure_decode_budget", lambda model: pytest.fail("measured anyway"))
    assert main(["decode-budget", "--update-readme"]) == 2
    assert "markers not found" in capsys.readouterr().err


def test_each_child_reports_its_own_peak_not_the_largest_so_far():
    big = _child("big", [sys.executable, "-c", "b = bytearray(200_000_000); b[::4096] = b'x' * len(b[::4096])"])
    small = _child("small", [sys.executable, "-c", "print('hi')"])
    assert big[1] > 200 and small[1] < 100 and small[2] == "hi\n"
    with pytest.raises(VQAGanError, match=r"boom failed \(bad\)"):
        _child("boom", [sys.executable, "-c", "raise SystemExit('bad')"])
