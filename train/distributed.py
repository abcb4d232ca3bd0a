"""Several processes, one model: `torchrun --nproc-per-node N -m train fit ...` runs `fit` in N
processes joined by DistributedDataParallel (NCCL on GPUs, gloo on CPUs). Each process trains on
its own share of every epoch's batches (batch size / N each, so the global batch is unchanged);
gradients are averaged across processes; process 0 alone writes checkpoints, metrics and logs.
Without torchrun (no WORLD_SIZE in the environment) it is one ordinary process.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def start(device: torch.device) -> torch.device:
    """Join the process group when started by torchrun; returns this process's device."""
    if world_size() == 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return torch.device("cuda", local)
    dist.init_process_group("gloo")
    return device


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
