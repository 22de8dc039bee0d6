"""Where training and generation run: ``device: auto | cpu | cuda``, resolved the same way by
every loop (the foundation Trainer, the LM trainer, ``lm generate``, the LM server).

``auto`` takes a CUDA GPU when torch sees one, else the CPU. Under torchrun each rank takes the
GPU numbered by its ``LOCAL_RANK`` (one GPU per rank, as NCCL requires), binds it as the current
device before the process group starts, and the group uses NCCL; on the CPU it uses gloo.
"""
from __future__ import annotations

import os

import torch

from forgeml.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(setting: str = "auto", *, where: str = "train.device") -> torch.device:
    """The device this process should use; ``where`` names the option in error messages."""
    if setting not in DEVICES:
        raise ConfigError(f"unknown device {setting!r}", where=where, hint=f"use one of {', '.join(DEVICES)}")
    if setting == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if setting == "cuda":
            raise ConfigError("device 'cuda' was asked for, but torch sees no CUDA GPU", where=where,
                              hint="use device auto (takes a GPU when there is one) or cpu, or install a CUDA build of torch")
        return torch.device("cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ConfigError(f"local rank {local_rank} has no GPU of its own: this host has {count}", where=where,
                          hint=f"start at most {count} processes per host (--nproc-per-node {count}), or set device cpu")
    return torch.device("cuda", local_rank)


def bind(device: torch.device) -> None:
    """Make ``device`` this process's current CUDA device (NCCL and ``torch.cuda`` calls use it)."""
    if device.type == "cuda":
        torch.cuda.set_device(device)


def process_group_backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def autocast_device_type(device: torch.device | str | None) -> str:
    return torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
