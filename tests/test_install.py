"""Installed like any package: the wheel carries the shipped models and `vqagan` works from any folder.

Builds the sdist and the wheel with `python -m build` (as a release would), installs the wheel into a
fresh virtual environment and runs the installed `vqagan` from a temporary folder outside the
repository. The fresh environment reuses this one's torch and friends through a .pth file (added
after the install, so pip never sees the editable copy of vqagan there); a .pth line adds a folder
without running the .pth files inside it, so the editable install's finder stays out and
`import vqagan_lib` can only mean the wheel, which the test checks.
"""
import importlib.metadata
import os
import site
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.name for p in (ROOT / "vqagan_lib" / "checkpoints").iterdir() if p.suffix in (".safetensors", ".json"))
NEVER_PACKAGED = ("runs/", "reports/", "data/", "notebooks/", ".venv/")


def run(*cmd, cwd, env):
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.slow
def test_wheel_installs_and_runs_from_any_folder(tmp_path):
    assert not tmp_path.resolve().is_relative_to(ROOT)
    dist, venv, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    # Nothing from this session may leak in: no PYTHONPATH (pip would take a vqagan it finds there as
    # installed), no models folder, no work folder.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "VQAGAN_WORKDIR", "VQAGAN_MODELS")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    # The sdist and the wheel built from it carry the shipped models and nothing from runs/ or reports/.
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, ROOT, cwd=tmp_path, env=env)
    (wheel,), (sdist,) = dist.glob("*.whl"), dist.glob("*.tar.gz")
    wheel_names = zipfile.ZipFile(wheel).namelist()
    sdist_names = [n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n]
    for names in (wheel_names, sdist_names):
        assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("vqagan_lib/checkpoints/")) == SHIPPED
        assert not [n for n in names if n.startswith(NEVER_PACKAGED)]

    # What the wheel asks for is what this environment has (torch included): the .pth below may stand in for it.
    metadata = zipfile.ZipFile(wheel).read(next(n for n in wheel_names if n.endswith(".dist-info/METADATA"))).decode()
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            req = Requirement(line.split(":", 1)[1].strip())
            assert req.specifier.contains(importlib.metadata.version(req.name), prereleases=True), req

    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel, cwd=tmp_path, env=env)
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=work, env=env).strip())
    ours = [p for p in site.getsitepackages() + [sysconfig.get_path("purelib")] if Path(p).is_dir()]
    (purelib / "_reuse_test_env.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n")

    package = Path(run(python, "-c", "import vqagan_lib; print(vqagan_lib.__file__)", cwd=work, env=env).strip()).parent
    assert package == purelib / "vqagan_lib", f"imported {package}, not the installed wheel"
    before = tree(package)

    listing = run(venv / "bin" / "vqagan", "models", cwd=work, env=env)
    assert "vqagan-8bit" in listing and "critic-easyvqa" in listing

    # Two easy-VQA test images, one at its native 64x64, one enlarged to 100x75 as a JPEG.
    first, second = _two_test_images()
    Image.open(first).convert("RGB").save(work / "a.png")
    Image.open(second).convert("RGB").resize((100, 75)).save(work / "b.jpg", quality=95)
    # A stray file named like a shipped model must not stand in for it.
    (work / "vqagan-8bit.safetensors").write_bytes(b"not a model")
    run(venv / "bin" / "vqagan", "compress", "a.png", "b.jpg", "--model", "vqagan-8bit", "-o", "pair.vqg", cwd=work, env=env)
    run(venv / "bin" / "vqagan", "decompress", "pair.vqg", "-o", "out", cwd=work, env=env)
    sizes = [Image.open(p).size for p in sorted((work / "out").glob("*.png"))]
    assert sizes == [(64, 64), (100, 75)]

    assert tree(package) == before, "the installed package was written to"


def _two_test_images() -> list[str]:
    import easy_vqa

    return [path for _, path in sorted(easy_vqa.get_test_image_paths().items())[:2]]


def test_the_c_parts_are_built_where_a_c_compiler_is():
    """The install builds them (pyproject.toml's ext-modules, optional): missing here, every decode would quietly
    run the slower Python and torch paths."""
    import shutil

    from vqagan_lib.coding import arithmetic
    from vqagan_lib.models import layered_decoder, slots

    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler here: Python and torch do the work alone")
    assert arithmetic._fast_decode is not None, "vqagan_lib/coding/_fast_decode.c is not built: reinstall (make install)"
    assert layered_decoder._paint is not None and slots._paint is not None, \
        "vqagan_lib/models/_paint.c is not built: reinstall (make install)"
