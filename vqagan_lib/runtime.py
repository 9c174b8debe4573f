"""Run-time switches shared by notebooks, scripts and tests: QUICK mode, device, seeds, and where files live.

Two places, never confused:
- the models: the shipped checkpoints travel inside the package (`CHECKPOINT_DIR`, package data), and
  VQAGAN_MODELS may name one more folder of models (a course's own);
- the work: everything the program writes (runs/, reports/, playground models) goes under `work_dir()`,
  the current directory unless VQAGAN_WORKDIR names another; never into the installed package.
"""
import importlib.resources
import os
import random
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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
