"""Precision, shared by every training loop: fp32, or bf16 autocast on CPU (and CUDA when present)."""
from __future__ import annotations

import contextlib

import torch


def autocast(precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()
