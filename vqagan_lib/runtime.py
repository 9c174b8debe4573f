"""Run-time switches shared by notebooks, scripts and tests: QUICK mode, device, seeds, progress bars, and where files live.

Two places, never confused:
- the models: the shipped checkpoints travel inside the package (`CHECKPOINT_DIR`, package data), and
  VQAGAN_MODELS may name one more folder of models (a course's own);
- the work: everything the program writes (runs/, reports/, playground models) goes under `work_dir()`,
  the current directory unless VQAGAN_WORKDIR names another; never into the installed package.
"""
import importlib.resources
import os
import platform
import random
import sys
from pathlib import Path

import numpy as np
import torch

# The package folder. Installed from a wheel it sits in site-packages; in a clone (an editable
# install) it sits beside pyproject.toml, and only then may the shipped checkpoints be rewritten.
PACKAGE_DIR = Path(__file__).resolve().parent
IS_SOURCE_CHECKOUT = (PACKAGE_DIR.parent / "pyproject.toml").is_file()

# Where shipped models live: package data, so an installed `vqagan` finds them from any folder.
# (The package is installed as plain files, never zipped, so this is a real folder.)
CHECKPOINT_DIR = Path(str(importlib.resources.files("vqagan_lib") / "checkpoints"))

MODELS_ENV = "VQAGAN_MODELS"  # one more folder of models, searched by name after the shipped one
WORKDIR_ENV = "VQAGAN_WORKDIR"  # where runs/ and reports/ go; default: the current directory


def models_dirs() -> list[Path]:
    """The folders a bare model name is looked up in, in order: the shipped models, then VQAGAN_MODELS."""
    extra = os.environ.get(MODELS_ENV, "")
    return [CHECKPOINT_DIR] + ([Path(extra).expanduser()] if extra else [])


def work_dir() -> Path:
    """The folder relative outputs (runs/NAME, reports/) are placed under: VQAGAN_WORKDIR, else the current directory."""
    return Path(os.environ.get(WORKDIR_ENV) or Path.cwd()).expanduser()


def is_quick() -> bool:
    """QUICK mode (VQAGAN_QUICK=1): every notebook and job shrinks to a CPU-minutes run."""
    return os.environ.get("VQAGAN_QUICK", "0") not in ("", "0", "false", "False")


def pick_device(requested: str = "auto") -> torch.device:
    """'auto' takes the GPU when there is one; 'cpu' / 'cuda' / 'cuda:1' are honoured as given."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def machine_description() -> str:
    """Where a model was trained, for its card: device, CPU count, torch threads."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.machine()})"
    return f"{device}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# A notebook executed headless (nbconvert, nbclient, papermill, nbval) stores each output once: a tqdm
# widget is stored as its text fallback, the bar's first state ("0%"), because its updates travel as
# widget messages nobody saves. There a plain-text bar is stored instead, its last state on top.
HEADLESS_PROGRESS_INTERVAL = 60.0  # seconds between updates in a headless run: a few lines, not thousands


def progress_kind() -> str:
    """Where a progress bar will be seen: 'widget' (a Jupyter server's kernel: JupyterLab, Notebook),
    'headless' (a kernel started by anything else, e.g. nbconvert or nbval) or 'terminal'."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    if type(shell).__name__ != "ZMQInteractiveShell":
        return "terminal"
    # jupyter_server gives the kernels it starts for a notebook JPY_SESSION_NAME (the notebook's path).
    return "widget" if os.environ.get("JPY_SESSION_NAME") else "headless"


def progress_bar(*args, **kwargs):
    """`tqdm(*args, **kwargs)` drawn to suit `progress_kind()`: a live widget in JupyterLab, plain text
    updated at most every HEADLESS_PROGRESS_INTERVAL seconds in a headless run, tqdm's own in a terminal."""
    kind = progress_kind()
    if kind == "widget":
        from tqdm.notebook import tqdm
    else:
        from tqdm.std import tqdm
        if kind == "headless":
            kwargs.setdefault("mininterval", HEADLESS_PROGRESS_INTERVAL)
            kwargs.setdefault("file", sys.stderr)
    return tqdm(*args, **kwargs)
