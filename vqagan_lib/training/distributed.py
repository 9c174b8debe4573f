"""Data-parallel training with torchrun: the same `train(cfg)` on 1 or N processes.

`torchrun --nproc_per_node N -m vqagan_lib train ...` sets WORLD_SIZE, RANK and
LOCAL_RANK; we then join a process group (NCCL between GPUs, Gloo on CPU) and wrap the
trained modules in DistributedDataParallel, which averages gradients across processes
during backward, so every rank takes the same optimiser step and the weights stay equal.
Each rank reads its own share of the global batch (see training/batches.py); only rank 0
logs, evaluates and saves.
Introduced in notebooks/03_vae_gan.ipynb.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from vqagan_lib.runtime import pick_device


@dataclass
class DistContext:
    rank: int  # this process's index, 0..world-1
    world: int  # number of processes (1 = plain single-process training)
    device: torch.device
    owns_group: bool  # we initialised the process group, so we destroy it


def setup(requested_device: str = "auto") -> DistContext:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(requested_device)
    if world <= 1:
        return DistContext(0, 1, device, False)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))  # one GPU per process
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), device, owns)


def wrap(module, ctx: DistContext):
    """DDP-wrap `module` when running on several processes; otherwise return it unchanged."""
    if module is None or ctx.world <= 1:
        return module
    return DistributedDataParallel(module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)


def unwrap(module):
    return module.module if isinstance(module, DistributedDataParallel) else module


def teardown(ctx: DistContext) -> None:
    if ctx.world > 1:
        dist.barrier()  # nobody leaves while rank 0 is still saving
        if ctx.owns_group:
            dist.destroy_process_group()
