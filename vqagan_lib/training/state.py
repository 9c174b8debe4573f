"""A training run's resumable state as safetensors + a JSON card: no pickle, no torch.save.

RUN_DIR/state.safetensors holds every tensor: the model ("model."), the discriminator
("disc."), and each optimiser's per-parameter buffers flattened to "opt_g.state.3.exp_avg".
RUN_DIR/state.json (the card) holds the rest: step, config, optimiser hyper-parameters,
the logged history. The random state needs no saving: every step reseeds from
(seed, step, rank) and batches are a function of (seed, step), so a resumed run
continues with exactly the numbers an uninterrupted one would produce.
Introduced in notebooks/03_vae_gan.ipynb.
"""
from pathlib import Path

import torch
from torch import nn

from vqagan_lib.checkpoint import load_checkpoint, save_checkpoint
from vqagan_lib.errors import VQAGanError

STATE_NAME = "state"


def flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict, list]:
    """Optimiser state_dict -> ({prefix.state.i.key: tensor}, param_groups for the JSON card)."""
    sd = opt.state_dict()
    tensors = {}
    for index, buffers in sd["state"].items():
        for key, value in buffers.items():
            tensors[f"{prefix}.state.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, sd["param_groups"]


def unflatten_optimizer(prefix: str, tensors: dict, param_groups: list, opt: torch.optim.Optimizer, device) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if not name.startswith(prefix + ".state."):
            continue
        index, key = name[len(prefix) + 7:].split(".", 1)
        # Adam keeps `step` on the CPU; its moment buffers live beside the parameters.
        state.setdefault(int(index), {})[key] = value if key == "step" else value.to(device)
    opt.load_state_dict({"state": state, "param_groups": param_groups})


def save_state(run_dir, step: int, model: nn.Module, disc: nn.Module | None, opt_g, opt_d, card: dict) -> Path:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if disc is not None:
        tensors.update({f"disc.{k}": v for k, v in disc.state_dict().items()})
    groups = {}
    opt_tensors, groups["opt_g"] = flatten_optimizer("opt_g", opt_g)
    tensors.update(opt_tensors)
    if opt_d is not None:
        opt_tensors, groups["opt_d"] = flatten_optimizer("opt_d", opt_d)
        tensors.update(opt_tensors)
    card = dict(card, kind="train-state", step=step, param_groups=groups)
    return save_checkpoint(Path(run_dir) / STATE_NAME, tensors, card)


def _sub(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def load_state(run_dir, model: nn.Module, disc: nn.Module | None, opt_g, opt_d, device) -> dict:
    """Restore weights and optimisers in place; returns the card (step, history, config)."""
    path = Path(run_dir) / f"{STATE_NAME}.safetensors"
    if not path.exists():
        raise VQAGanError(f"{path}: no training state to resume from (runs save it every save_every steps)")
    tensors, card = load_checkpoint(path, expected_kind="train-state")
    model.load_state_dict({k: v.to(device) for k, v in _sub(tensors, "model").items()})
    unflatten_optimizer("opt_g", tensors, card["param_groups"]["opt_g"], opt_g, device)
    if disc is not None and "opt_d" in card["param_groups"]:
        disc.load_state_dict({k: v.to(device) for k, v in _sub(tensors, "disc").items()})
        unflatten_optimizer("opt_d", tensors, card["param_groups"]["opt_d"], opt_d, device)
    return card
