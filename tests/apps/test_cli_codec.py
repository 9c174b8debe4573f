import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from codec_helpers import tiny_codec
from PIL import Image

from vqagan_lib.apps.cli import main
from vqagan_lib.models.codec import save_codec


ROOT = Path(__file__).resolve().parents[2]


def vqagan(*args):
    """Run the real command line in a fresh process: (exit code, stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "vqagan_lib", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    model = save_codec(tiny_codec(), root / "tiny", {"name": "tiny"})
    other = save_codec(tiny_codec(seed=1), root / "other", {"name": "other"})
    rgba = np.zeros((70, 50, 4), np.uint8)
    rgba[10:40, 10:30] = (0, 0, 255, 255)  # a blue block on a transparent background
    Image.fromarray(rgba, "RGBA").save(root / "shape.png")
    Image.fromarray(np.linspace(0, 65535, 33 * 17, dtype=np.uint16).reshape(17, 33)).save(root / "grey16.png")
    Image.fromarray(np.full((64, 64), 90, np.uint8), "L").save(root / "grey.jpg")
    (root / "notes.png").write_text("hello")
    return root, model, other


def test_compress_two_images_info_and_decompress_restores_sizes(setup):
    root, model, _ = setup
    code, out, err = vqagan("compress", root / "shape.png", root / "grey16.png", "--model", model, "-o", root / "two.vqg")
    assert code == 0, err
    size = (root / "two.vqg").stat().st_size
    assert f"{size} bytes" in out
    code, out, err = vqagan("info", root / "two.vqg")
    assert code == 2 and "no shipped codec checks out" in err  # made by a model that is not shipped
    code, out, err = vqagan("info", root / "two.vqg", "--model", model)
    assert code == 0 and "images:       2" in out and f"bytes:        {size}" in out and "model:        tiny" in out
    code, out, err = vqagan("decompress", root / "two.vqg", "--model", model, "-o", root / "dec")
    assert code == 0, err
    assert sorted(p.name for p in (root / "dec").iterdir()) == ["000000.png", "000001.png"]
    assert Image.open(root / "dec" / "000000.png").size == (50, 70)
    assert Image.open(root / "dec" / "000001.png").size == (33, 17)


def test_missing_file_is_one_clear_line_and_writes_nothing(setup):
    root, model, _ = setup
    code, out, err = vqagan("compress", root / "nope.png", "--model", model, "-o", root / "nope.vqg")
    assert code == 2 and err.strip() == f"vqagan: error: {root / 'nope.png'}: no such file"
    assert not (root / "nope.vqg").exists()


def test_in_process_errors_name_the_file(setup, capsys):
    root, model, other = setup
    assert main(["compress", str(root / "grey.jpg"), str(root / "notes.png"), "--model", str(model),
                 "-o", str(root / "bad.vqg")]) == 2
    assert "notes.png: not a readable image" in capsys.readouterr().err and not (root / "bad.vqg").exists()
    assert main(["compress", str(root / "grey.jpg"), "--model", str(model), "-o", str(root / "one.vqg")]) == 0
    assert (root / "one.vqg").stat().st_size <= 10  # 5 bytes of header and check + payload
    assert main(["decompress", str(root / "one.vqg"), "--model", str(other), "-o", str(root / "x")]) == 2
    assert "does not check out with other" in capsys.readouterr().err and not (root / "x").exists()
    assert main(["decompress", str(root / "one.vqg"), "-o", str(root / "x")]) == 2
    assert "no shipped codec checks out" in capsys.readouterr().err
    assert main(["decompress", str(root / "notes.png"), "--model", str(model), "-o", str(root / "x")]) == 2
    assert "notes.png: not a valid .vqg file" in capsys.readouterr().err
    assert main(["compress", str(root / "grey.jpg"), "--model", str(model), "-o", str(root / "grey.jpg")]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["compress", str(root / "grey.jpg"), "--model", str(root / "nomodel"), "-o", str(root / "y.vqg")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_keep_names_round_trip_and_models_json(setup, capsys):
    root, model, _ = setup
    assert main(["compress", str(root / "grey.jpg"), str(root / "shape.png"), "--model", str(model),
                 "-o", str(root / "named.vqg"), "--keep-names"]) == 0
    assert main(["decompress", str(root / "named.vqg"), "--model", str(model), "-o", str(root / "named")]) == 0
    assert sorted(p.name for p in (root / "named").iterdir()) == ["grey.png", "shape.png"]
    capsys.readouterr()
    assert main(["models", "--json"]) == 0
    out = capsys.readouterr().out

    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    rows = json.loads(out, parse_constant=refuse)  # strict, as jq and JavaScript read it: NaN is refused
    assert isinstance(rows, list) and all({"name", "kind", "path"} <= set(r) for r in rows)
    # A shipped codec without an audit (one above the audit's 12 bits) says so with null.
    assert any(r["metrics"].get("benchmark", {}).get("audit", 0) is None for r in rows)


def test_models_lists_a_point_whose_dataset_has_no_vilt_judge(capsys):
    """A Sort-of-CLEVR point's card holds null for the ViLT judge (none is shipped for that world yet)."""
    assert main(["models"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("scenes-96bit"))
    assert "ViLT judge not measured" in line and "rule judge" in line and "bits/image" in line


def test_training_stages_are_listed_as_stages_and_refused_by_compress(setup, capsys):
    root, _, _ = setup
    capsys.readouterr()
    assert main(["models", "--json"]) == 0
    kinds = {r["name"]: r["kind"] for r in json.loads(capsys.readouterr().out)}
    assert kinds["answers-8bit"] == "stage" and kinds["vqagan-8bit"] == "fsq"
    code, out, err = vqagan("compress", root / "shape.png", "--model", "answers-8bit", "-o", root / "stage.vqg")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "a training stage" in err
    assert not (root / "stage.vqg").exists()
