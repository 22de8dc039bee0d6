"""torch.distributed, the thin way: the same script runs under ``python`` and under ``torchrun``.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / LOCAL_WORLD_SIZE; we bind this rank's device
(``train.device``: the GPU numbered LOCAL_RANK, or the CPU), join the process group (nccl on
CUDA, gloo on CPU; the reductions below put their tensors on that device), shard each epoch's permutation by rank, wrap the model in DDP, and let only
rank 0 write. Nothing here starts processes: that is torchrun's job.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")  # this rank's device; the process group's tensors live there

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str = "auto") -> "DistContext":
        """``device``: the run's ``train.device`` setting (auto, cpu or cuda)."""
        from forgeml.train.device import bind, process_group_backend, resolve_device

        resolved = resolve_device(device)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(device=resolved)
        bind(resolved)  # before the group starts: NCCL takes the current device
        if not dist.is_initialized():
            dist.init_process_group(backend=process_group_backend(resolved))
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_WORLD_SIZE", world)), resolved)

    def any_flag(self, flag: bool) -> bool:
        """True on every rank if any rank raised the flag (so all stop at the same step)."""
        if not self.enabled:
            return flag
        tensor = torch.tensor([1 if flag else 0], device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item())

    def mean(self, value: float) -> float:
        """The average of ``value`` over the ranks (a rank's train loss covers only its shard)."""
        if not self.enabled:
            return value
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
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


@contextmanager
def rank_session(device: str = "auto") -> Iterator[DistContext]:
    """This process's part of a run: joins the process group (under torchrun) and leaves it cleanly.

    On success every rank waits at a final barrier (so rank 0 has written the bundle before
    anyone leaves) and then destroys the process group. A gloo group left to the interpreter's
    teardown aborted its process now and then ("terminate called without an active exception",
    SIGABRT, seen 1 run in ~20 on two hosts): torchrun then counted the host as failed, skipped
    its exit barrier, and the other host's launcher waited there for 300 s after a finished run.
    On failure there is no barrier (a peer may be dead); the group is still destroyed.
    """
    context = DistContext.from_env(device)
    try:
        yield context
        context.barrier()
    finally:
        if context.enabled and dist.is_initialized():
            import gc

            gc.collect()  # DDP's reducer sits in reference cycles that hold the group: freed now, while every peer is still there
            dist.destroy_process_group()


def default_threads(local_world_size: int = 1) -> int:
    """The cores this process may use, shared fairly among the ranks on this host.

    Outside torchrun, a user's ``OMP_NUM_THREADS`` wins: it is how people cap every numeric
    library's threads on a shared machine, and torch, LightGBM and CatBoost would otherwise be
    told to use every core by us. Under torchrun it is ignored: torchrun sets it to 1 for every
    rank whether or not anyone asked, and the ranks share the host's cores by their count instead.
    """
    asked = os.environ.get("OMP_NUM_THREADS", "").strip()
    if asked.isdigit() and int(asked) > 0 and "LOCAL_RANK" not in os.environ:
        return int(asked)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, local_world_size))
