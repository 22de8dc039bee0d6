"""torch.distributed, the thin way: the same script runs under ``python`` and under ``torchrun``.

torchrun sets RANK / WORLD_SIZE / LOCAL_WORLD_SIZE; we join the process group (gloo on CPU,
nccl on CUDA), shard each epoch's permutation by rank, wrap the model in DDP, and let only
rank 0 write. Nothing here starts processes: that is torchrun's job.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "DistContext":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_WORLD_SIZE", world)))

    def any_flag(self, flag: bool) -> bool:
        """True on every rank if any rank raised the flag (so all stop at the same step)."""
        if not self.enabled:
            return flag
        tensor = torch.tensor([1 if flag else 0])
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item())

    def mean(self, value: float) -> float:
        """The average of ``value`` over the ranks (a rank's train loss covers only its shard)."""
        if not self.enabled:
            return value
        tensor = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return float(tensor.item()) / self.world_size

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Rank 0's buffers on every rank. DDP broadcasts them before each forward, but the last
        forward of an epoch updates batch-norm statistics from each rank's own shard: without this,
        ranks evaluate different models and can disagree about early stopping (and then hang)."""
        if self.enabled:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's value on every rank (run ids, paths)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def default_threads(local_world_size: int = 1) -> int:
    """The cores this process may use, shared fairly among the ranks on this host."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, local_world_size))
