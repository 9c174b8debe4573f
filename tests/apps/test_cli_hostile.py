"""Issue 15, tried as a hostile or careless user: every refusal is one line naming the file, exit 2,
nothing half-written; decoding stays within its budget; no existing file is lost."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from codec_helpers import tiny_codec
from PIL import Image

from vqagan_lib.apps import cli
from vqagan_lib.apps.cli import main
from vqagan_lib.apps.commands import codec as codec_commands
from vqagan_lib.coding.bitstream import model_key, pack
from vqagan_lib.fileio import STAGING_PREFIX
from vqagan_lib.models.codec import load_codec, save_codec


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(save_codec(tiny_codec(), tmp_path_factory.mktemp("model") / "tiny", {"name": "tiny"}))


@pytest.fixture
def photos(tmp_path):
    """A folder of originals, as a user keeps them."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, size in (("holiday.png", (80, 60)), ("beach.jpg", (64, 64)), ("cat.png", (40, 50))):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(folder / name)
    return folder


def run(capsys, *argv):
    """main() in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str, *parts: str) -> str:
    """stderr is exactly one `vqagan: error:` line holding every part, with no terminal control bytes."""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vqagan: error: "), err
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in lines[0]), err
    for part in parts:
        assert part in lines[0], err
    return lines[0]


def crafted(model, path, count=1, sizes=None, names=None):
    """A .vqg file the model's key checks out on (as a hostile user who has the model could write)."""
    codec = load_codec(model)
    symbols = np.tile(np.argmax(codec.entropy_model.check_tables(), axis=1), (count, 1))  # (count, D)
    path.write_bytes(pack(symbols, codec.entropy_model.check_tables(), model_key(codec), sizes, names))
    return path


def listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else None


# 1. Decoding bombs: refused from the header, before any decoding.

def test_decoding_bombs_are_refused_by_the_budget(model, tmp_path, capsys):
    ten = crafted(model, tmp_path / "ten.vqg", 10, sizes=[(7071, 7071)] * 10)
    assert ten.stat().st_size < 100  # like the 47-byte file of the issue
    start = time.perf_counter()
    code, _, err = run(capsys, "decompress", ten, "--model", model, "-o", tmp_path / "out")
    one_error(err, "ten.vqg: decodes to 499,990,410 pixels", "--max-pixels")
    assert code == 2 and time.perf_counter() - start < 5 and not (tmp_path / "out").exists()
    code, _, err = run(capsys, "info", ten, "--model", model)
    assert code == 2 and "decode budget" in one_error(err, "ten.vqg")
    many = crafted(model, tmp_path / "many.vqg", 100_000)
    code, _, err = run(capsys, "decompress", many, "-o", tmp_path / "out")  # refused before any model is tried
    assert code == 2 and "holds 100,000 images" in one_error(err, "many.vqg", "--max-images")


def test_the_budget_flags_raise_and_lower_it(model, tmp_path, capsys):
    three = crafted(model, tmp_path / "three.vqg", 3)
    code, _, err = run(capsys, "decompress", three, "--model", model, "-o", tmp_path / "a", "--max-images", 2)
    assert code == 2 and "more than the decode budget of 2" in one_error(err, "three.vqg")
    code, _, err = run(capsys, "decompress", three, "--model", model, "-o", tmp_path / "a", "--max-pixels", 3 * 64 * 64 - 1)
    assert code == 2 and "12,288 pixels" in one_error(err, "three.vqg")
    assert run(capsys, "decompress", three, "--model", model, "-o", tmp_path / "a", "--max-images", 3)[0] == 0
    assert listing(tmp_path / "a") == ["000000.png", "000001.png", "000002.png"]


# 2. Unbounded input reads and non-regular inputs.

@pytest.mark.parametrize("command", ["decompress", "info"])
def test_devices_fifos_and_folders_are_refused_as_input_unread(model, tmp_path, capsys, command):
    os.mkfifo(tmp_path / "pipe")  # opening it must not wait for a writer
    extra = ["-o", tmp_path / "out"] if command == "decompress" else []
    for path, kind in (("/dev/zero", "a device"), (tmp_path / "pipe", "a FIFO"), (tmp_path, "a folder")):
        code, _, err = run(capsys, command, path, "--model", model, *extra)
        assert code == 2 and f"is {kind}, not a regular file" in one_error(err, str(path))


def test_inputs_over_the_read_limit_are_refused(model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(codec_commands, "MAX_FILE_BYTES", 100)
    (tmp_path / "big.vqg").write_bytes(bytes(101))
    code, _, err = run(capsys, "info", tmp_path / "big.vqg")
    assert code == 2 and "larger than the 100-byte limit" in one_error(err, "big.vqg")
    code, _, err = run(capsys, "compress", "/dev/zero", "--model", model, "-o", tmp_path / "z.vqg")
    assert code == 2 and "is a device" in one_error(err, "/dev/zero")


# 3. Data loss: originals, earlier outputs, mixed sets.

def test_decompress_never_replaces_an_original_even_with_force(model, photos, capsys):
    before = (photos / "holiday.png").read_bytes()
    assert run(capsys, "compress", *sorted(photos.iterdir()), "--model", model, "-o", photos / "trip.vqg",
               "--keep-names")[0] == 0
    for force in ([], ["--force"]):
        code, _, err = run(capsys, "decompress", photos / "trip.vqg", "--model", model, "-o", photos, *force)
        assert code == 2 and "an original image" in one_error(err, str(photos), "beach.jpg")
    assert (photos / "holiday.png").read_bytes() == before
    assert listing(photos) == ["beach.jpg", "cat.png", "holiday.png", "trip.vqg"]


def test_decompress_never_replaces_an_existing_file_without_force(model, photos, tmp_path, capsys):
    assert run(capsys, "compress", photos / "cat.png", photos / "beach.jpg", "--model", model, "-o", tmp_path / "a.vqg")[0] == 0
    assert run(capsys, "compress", photos / "holiday.png", "--model", model, "-o", tmp_path / "b.vqg")[0] == 0
    out = tmp_path / "out"
    assert run(capsys, "decompress", tmp_path / "a.vqg", "--model", model, "-o", out)[0] == 0
    first = (out / "000000.png").read_bytes()
    code, _, err = run(capsys, "decompress", tmp_path / "b.vqg", "--model", model, "-o", out)  # a second run, one folder
    assert code == 2 and "already exists (--force replaces" in one_error(err, "000000.png")
    assert (out / "000000.png").read_bytes() == first and listing(out) == ["000000.png", "000001.png"]
    assert run(capsys, "decompress", tmp_path / "b.vqg", "--model", model, "-o", out, "--force")[0] == 0
    assert (out / "000000.png").read_bytes() != first and Image.open(out / "000000.png").size == (80, 60)


def test_decompress_never_replaces_its_input(model, tmp_path, capsys):
    crafted(model, tmp_path / "000000.png", 1)  # a .vqg named like its own output
    for force in ([], ["--force"]):
        code, _, err = run(capsys, "decompress", tmp_path / "000000.png", "--model", model, "-o", tmp_path, *force)
        assert code == 2 and "refusing to overwrite the input" in one_error(err, "000000.png")


# 4. -o replaces whatever is there.

def test_outputs_that_are_fifos_devices_folders_or_kernel_files_are_refused(model, photos, tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe")
    image = photos / "cat.png"
    cases = [(tmp_path / "pipe", "is a FIFO; the output must be a regular file"),
             ("/dev/null", "refusing to write under /dev"),
             ("/proc/self/x.vqg", "refusing to write under /proc"),
             ("/sys/x.vqg", "refusing to write under /sys"),
             (tmp_path, "is a folder; the output must be a regular file"),
             ("", "the output path is empty")]
    for target, message in cases:
        code, _, err = run(capsys, "compress", image, "--model", model, "-o", target)
        assert code == 2 and message in one_error(err)
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    assert (tmp_path / "pipe").is_fifo()


def test_decompress_output_folder_must_be_a_folder_outside_kernel_trees(model, tmp_path, capsys):
    one = crafted(model, tmp_path / "one.vqg")
    (tmp_path / "file").write_text("keep me")
    cases = [(tmp_path / "file", "exists and is a file, not a folder"), ("", "the output folder path is empty"),
             ("/proc/self/out", "refusing to write under /proc"), ("/sys/out", "refusing to write under /sys")]
    for target, message in cases:
        code, _, err = run(capsys, "decompress", one, "--model", model, "-o", target)
        assert code == 2 and message in one_error(err)
    assert (tmp_path / "file").read_text() == "keep me"


# 5. Decompress is atomic: an interrupted run leaves nothing; a killed run's staging folder goes.

@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_decompress_leaves_nothing(model, tmp_path, capsys, monkeypatch, how):
    many = crafted(model, tmp_path / "many.vqg", 40)
    png_at_size, calls = codec_commands.png_at_size, []

    def interrupt_midway(x, size):
        calls.append(1)
        if len(calls) == 20:
            if how == "ctrl-c":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)
        return png_at_size(x, size)

    monkeypatch.setattr(codec_commands, "png_at_size", interrupt_midway)
    for out in (tmp_path / "new", tmp_path / "existing"):
        if out.name == "existing":
            out.mkdir()
        calls.clear()
        code, _, err = run(capsys, "decompress", many, "--model", model, "-o", out)
        assert code == (130 if how == "ctrl-c" else 143) and err == "vqagan: interrupted\n"
        assert listing(out) == (None if out.name == "new" else [])
        assert not list(tmp_path.glob(STAGING_PREFIX + "*"))


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(model, tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out"
    stale = [out / f"{STAGING_PREFIX}{dead.pid}-abc", tmp_path / f"{STAGING_PREFIX}{dead.pid}-def"]
    for folder in stale:
        folder.mkdir(parents=True)
        (folder / "000000.png").write_bytes(b"half")
    live = out / f"{STAGING_PREFIX}{os.getppid()}-ghi"  # a running process's: left alone
    live.mkdir()
    assert run(capsys, "decompress", crafted(model, tmp_path / "one.vqg"), "--model", model, "-o", out)[0] == 0
    assert listing(out) == sorted(["000000.png", live.name]) and not any(f.exists() for f in stale)


# 8. One clear line instead of a traceback.

def test_symlink_loops_are_one_line(model, tmp_path, capsys):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for argv in (["compress", tmp_path / "loop", "--model", model, "-o", tmp_path / "x.vqg"],
                 ["compress", crafted(model, tmp_path / "img.png"), "--model", model, "-o", tmp_path / "loop"],
                 ["decompress", tmp_path / "loop", "--model", model, "-o", tmp_path / "out"],
                 ["decompress", tmp_path / "img.png", "--model", model, "-o", tmp_path / "loop"],
                 ["info", tmp_path / "loop"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "symbolic links" in one_error(err, "loop")


def test_non_utf8_and_overlong_names_with_keep_names(model, photos, tmp_path, capsys):
    raw = os.fsencode(tmp_path) + b"/caf\xe9.png"
    with open(raw, "wb") as f:
        f.write((photos / "cat.png").read_bytes())
    code, _, err = run(capsys, "compress", os.fsdecode(raw), "--model", model, "-o", tmp_path / "x.vqg", "--keep-names")
    assert code == 2 and "caf\\xe9.png: --keep-names needs UTF-8 file names" in one_error(err)
    assert run(capsys, "compress", os.fsdecode(raw), "--model", model, "-o", tmp_path / "x.vqg")[0] == 0
    long = tmp_path / ("a" * 255)  # the longest name a file system allows: NAME.png would be 259 bytes
    long.write_bytes((photos / "cat.png").read_bytes())
    code, _, err = run(capsys, "compress", long, "--model", model, "-o", tmp_path / "y.vqg", "--keep-names")
    assert code == 2 and "259-byte NAME.png, over the 255-byte limit" in one_error(err)
    crafted(model, tmp_path / "long.vqg", names=["b" * 255])  # a file that stores such a name anyway
    code, _, err = run(capsys, "decompress", tmp_path / "long.vqg", "--model", model, "-o", tmp_path / "out")
    assert code == 2 and "over 255 bytes" in one_error(err, "long.vqg") and not (tmp_path / "out").exists()


def test_names_with_escape_sequences_are_escaped(model, tmp_path, capsys):
    name = tmp_path / "\x1b[31mred\x07.png"
    code, _, err = run(capsys, "compress", name, "--model", model, "-o", tmp_path / "x.vqg")
    assert code == 2 and "\\x1b[31mred\\x07.png: no such file" in one_error(err)


def test_out_of_memory_is_one_line(model, photos, tmp_path, capsys, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(codec_commands, "load_image", no_memory)
    code, _, err = run(capsys, "compress", photos / "cat.png", "--model", model, "-o", tmp_path / "x.vqg")
    assert code == 2 and one_error(err) == f"vqagan: error: {tmp_path / 'x.vqg'}: out of memory"


def test_ctrl_c_during_start_up_is_one_line(monkeypatch, capsys):
    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.importlib, "import_module", interrupted)
    assert main(["models"]) == 130 and capsys.readouterr().err == "vqagan: interrupted\n"
    process = subprocess.Popen([sys.executable, "-m", "vqagan_lib", "models"], cwd=Path(__file__).resolve().parents[2],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # inside the imports of torch and the command modules
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert "Traceback" not in err
    # One line: the interrupt landed in our start-up. The status is 130, or, at some moments of the
    # imports, the process ends by SIGINT after printing our line; a shell reads both as 130. -SIGINT and silence: it landed in the interpreter's own start-up (a cold
    # cache, as in a fresh clone) before any of our code ran.
    assert (process.returncode == 0
            or (process.returncode in (130, -signal.SIGINT) and err == "vqagan: interrupted\n")
            or (process.returncode == -signal.SIGINT and err == ""))


def test_info_refuses_what_decompress_refuses(model, photos, tmp_path, capsys):
    assert run(capsys, "compress", photos / "cat.png", photos / "beach.jpg", "--model", model, "-o", tmp_path / "a.vqg")[0] == 0
    data = (tmp_path / "a.vqg").read_bytes()
    (tmp_path / "edited.vqg").write_bytes(data[:3] + bytes([data[3] ^ 0x10]) + data[4:])
    for command, extra in (("info", []), ("decompress", ["-o", tmp_path / "out"])):
        code, _, err = run(capsys, command, tmp_path / "edited.vqg", "--model", model, *extra)
        assert code == 2 and "does not check out with tiny" in one_error(err, "edited.vqg")
    code, out, _ = run(capsys, "info", tmp_path / "a.vqg", "--model", model)
    assert code == 0 and "check 4" in out and "model:        tiny" in out
