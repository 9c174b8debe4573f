"""Run-time switches shared by notebooks, scripts and tests: QUICK mode, device, seeds."""
import os
import random
from pathlib import Path

import numpy as np
import torch

# Repository root (the folder holding vqagan_lib/, data/, notebooks/).
REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = REPO_ROOT / "data" / "checkpoints"


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
