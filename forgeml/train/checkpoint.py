"""Checkpoints: written atomically, read back without executing code (``weights_only=True``)."""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from forgeml.errors import CheckpointError
from forgeml.fileio import atomic_write_bytes

LAST = "last.pt"


def save_checkpoint(directory: Path, state: dict[str, Any], name: str = LAST) -> Path:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = Path(directory) / name
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_checkpoint(directory: Path | None, name: str = LAST) -> dict[str, Any]:
    path = Path(directory) / name if directory else None
    if path is None or not path.is_file():
        raise CheckpointError(
            "no checkpoint to resume from",
            where=str(path or "this run"),
            hint="start the run without --resume; checkpoints appear after the first epoch or on interrupt",
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    # torch reports a damaged file as any of these; UnpicklingError also means "refused": the file
    # holds something other than tensors and plain containers, which is never loaded
    except (RuntimeError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        raise CheckpointError(f"checkpoint is unreadable ({exc.__class__.__name__})", where=str(path), hint="delete it and start again without --resume") from None


def cuda_rng(device: torch.device) -> dict[str, torch.Tensor]:
    """The GPU's random state for a checkpoint (dropout draws there), so a resumed run on CUDA
    continues the same sequence; nothing on the CPU."""
    return {"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}


def restore_cuda_rng(checkpoint: dict[str, Any], device: torch.device) -> None:
    if device.type == "cuda" and "cuda_rng" in checkpoint:
        torch.cuda.set_rng_state(checkpoint["cuda_rng"], device)
