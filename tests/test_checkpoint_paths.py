"""Where models are found and where outputs go: names vs paths, VQAGAN_MODELS, VQAGAN_WORKDIR, the installed package."""
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from vqagan_lib import runtime
from vqagan_lib.apps.cli import main
from vqagan_lib.checkpoint import (copy_checkpoint, is_path, list_checkpoints, load_checkpoint, resolve_checkpoint,
                                   save_checkpoint, update_card)
from vqagan_lib.errors import VQAGanError

SHIPPED_CODEC = runtime.CHECKPOINT_DIR / "vqagan-8bit.safetensors"


def tiny(path: Path, name: str, kind: str = "codec") -> Path:
    return save_checkpoint(path, {"w": torch.zeros(2)}, {"name": name, "kind": kind})


def test_shipped_models_live_in_the_package():
    assert runtime.CHECKPOINT_DIR == Path(runtime.__file__).resolve().parent / "checkpoints"
    assert SHIPPED_CODEC.is_file() and (runtime.CHECKPOINT_DIR / "critic-easyvqa.json").is_file()
    assert not (Path(runtime.__file__).resolve().parent.parent / "data" / "checkpoints").exists()


@pytest.mark.parametrize("text, path", [("vqagan-8bit", False), ("my.model-2", False), ("./vqagan-8bit", True),
                                        ("runs/x/codec", True), ("vqagan-8bit.safetensors", True), ("m.json", True)])
def test_a_path_is_a_path_and_a_name_is_a_name(text, path):
    assert is_path(text) is path
    assert is_path(Path(text))  # a Path object is always a path


def test_a_shipped_name_is_never_shadowed_by_the_current_folder(tmp_path, monkeypatch):
    """Issue #15 item 7: `--model vqagan-8bit` with a vqagan-8bit.safetensors here still loads the shipped model."""
    monkeypatch.chdir(tmp_path)
    decoy = tiny(tmp_path / "vqagan-8bit", "decoy")
    assert resolve_checkpoint("vqagan-8bit") == SHIPPED_CODEC
    assert load_checkpoint("vqagan-8bit")[1]["name"] == "vqagan-8bit"
    assert resolve_checkpoint("./vqagan-8bit").resolve() == decoy  # as a path, the local file
    assert resolve_checkpoint("vqagan-8bit.safetensors").resolve() == decoy


def test_a_local_file_is_not_found_by_bare_name_and_the_error_says_how(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny(tmp_path / "mine", "mine")
    with pytest.raises(VQAGanError, match=r"no such model .*pass it as a path"):
        resolve_checkpoint("mine")


def test_models_folder_from_the_environment(tmp_path, monkeypatch):
    course = tmp_path / "course"
    tiny(course / "course-12bit", "course-12bit")
    tiny(course / "vqagan-8bit", "imposter")
    monkeypatch.setenv(runtime.MODELS_ENV, str(course))
    assert resolve_checkpoint("course-12bit") == course / "course-12bit.safetensors"
    assert resolve_checkpoint("vqagan-8bit") == SHIPPED_CODEC  # shipped names stay shipped
    names = [Path(c["path"]).stem for c in list_checkpoints()]
    assert "course-12bit" in names and names.count("vqagan-8bit") == 1 and "critic-easyvqa" in names
    monkeypatch.setenv(runtime.MODELS_ENV, str(tmp_path / "missing"))
    with pytest.raises(VQAGanError, match="VQAGAN_MODELS=.*no such folder"):
        resolve_checkpoint("course-12bit")


@pytest.mark.parametrize("model", [".", "", "..", "./", "/", "-", "a b", "x\x1b[31m"])
def test_a_model_that_is_neither_name_nor_checkpoint_is_one_line_exit_2(model, tmp_path, monkeypatch, capsys):
    """Issue #15 item 8: `--model .` or '' gave a traceback."""
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    with pytest.raises(VQAGanError):
        resolve_checkpoint(model)
    assert main(["compress", "a.png", "--model", model, "-o", str(tmp_path / "o.vqg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vqagan: error: ") and err.count("\n") == 1 and "\x1b" not in err
    assert "a folder" in err or "not a model name" in err
    assert not (tmp_path / "o.vqg").exists()


def test_a_folder_given_as_a_model_says_so(tmp_path):
    with pytest.raises(VQAGanError, match="a folder"):
        resolve_checkpoint(str(tmp_path))


def test_outputs_go_under_the_work_dir(tmp_path, monkeypatch):
    from vqagan_lib.training.engine import TrainConfig, run_dir_of

    monkeypatch.delenv(runtime.WORKDIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert runtime.work_dir() == tmp_path
    assert run_dir_of(TrainConfig(name="x")) == tmp_path / "runs" / "x"
    monkeypatch.setenv(runtime.WORKDIR_ENV, str(tmp_path / "elsewhere"))
    assert run_dir_of(TrainConfig(name="x")) == tmp_path / "elsewhere" / "runs" / "x"


def test_an_installed_package_is_never_written_to(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "vqagan_lib"
    src = tiny(tmp_path / "run" / "codec", "codec")
    shipped = tiny(package / "checkpoints" / "old", "old")
    monkeypatch.setattr(runtime, "PACKAGE_DIR", package)
    monkeypatch.setattr(runtime, "IS_SOURCE_CHECKOUT", False)
    with pytest.raises(VQAGanError, match="installed vqagan package"):
        tiny(package / "checkpoints" / "new", "new")
    with pytest.raises(VQAGanError, match="installed vqagan package"):
        copy_checkpoint(src, package / "checkpoints" / "copy")
    with pytest.raises(VQAGanError, match="installed vqagan package"):
        update_card(shipped, lambda card: card.update(x=1))
    assert sorted(p.name for p in (package / "checkpoints").iterdir()) == ["old.json", "old.safetensors"]
    assert "x" not in json.loads(shipped.with_suffix(".json").read_text())
    monkeypatch.setattr(runtime, "IS_SOURCE_CHECKOUT", True)  # in a clone the ladder may rewrite them
    assert copy_checkpoint(src, package / "checkpoints" / "copy").exists()
