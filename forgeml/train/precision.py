"""Precision, shared by every training loop: fp32, or bf16 autocast on CPU (and CUDA when present)."""
from __future__ import annotations

import contextlib

import torch


def autocast(precision: str, device: torch.device | str | None = None) -> contextlib.AbstractContextManager:
    """bf16 autocast for the device the tensors are on (CUDA when ``device`` is None and a GPU exists)."""
    if precision == "bf16":
        from forgeml.train.device import autocast_device_type

        return torch.autocast(device_type=autocast_device_type(device), dtype=torch.bfloat16)
    return contextlib.nullcontext()
