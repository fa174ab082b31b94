"""Data-parallel training with PyTorch's own engine: torchrun + DistributedDataParallel.

``torchrun --nproc_per_node=N -m ntmkit train ...`` (or ``ntm train --nproc N``) starts N
processes; each draws its own sequences, DistributedDataParallel averages the gradients, and
the few decisions that must agree (curriculum, stopping, skipping a non-finite step, Ctrl-C)
are taken on values averaged over all processes. Only rank 0 writes logs, pictures and
checkpoints. gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


# Where the collectives' tensors live: NCCL (CUDA) only takes tensors on the process's own GPU.
_collective_device = torch.device("cpu")


def process_device(device: torch.device) -> torch.device:
    """The device this process trains on: under torchrun with CUDA, process r uses GPU LOCAL_RANK
    (``--device cuda`` or ``cuda:0`` would otherwise put every process on GPU 0)."""
    if device.type == "cuda" and world()[1] > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def setup(device: torch.device) -> tuple[int, int]:
    """Join the process group when started by torchrun; returns (rank, world size)."""
    global _collective_device
    _rank, size = world()
    if size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend)
    if dist.is_available() and dist.is_initialized():
        _collective_device = device if dist.get_backend() == "nccl" else torch.device("cpu")
    return world()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def mean(values: list[float]) -> list[float]:
    """Average a few floats over all processes (identity in a single process)."""
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=_collective_device)
    dist.all_reduce(t)
    return (t / dist.get_world_size()).tolist()


def gather(t: torch.Tensor) -> list[torch.Tensor]:
    """Every process's copy of ``t`` (same shape everywhere), in rank order, on ``t``'s device."""
    if not active():
        return [t]
    local = t.to(_collective_device)
    out = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(out, local)
    return [o.to(t.device) for o in out]


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model DistributedDataParallel averages gradients for (the model itself alone)."""
    if not active():
        return model
    if _collective_device.type == "cuda":
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[_collective_device.index])
    return torch.nn.parallel.DistributedDataParallel(model)


def teardown(wait: bool = True) -> None:
    """Leave the process group (after every process got here, when ``wait``).

    A process that exits with the group still open can abort in gloo's threads at interpreter
    shutdown ("terminate called without an active exception"), so whoever joined it leaves it.
    """
    if dist.is_available() and dist.is_initialized():
        if wait and dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()
