"""Data-parallel wrapping for the LM trainer: DDP or FSDP2, gradient sync only on a step's last
micro-batch, and state dicts gathered whole, so checkpoints and bundles never depend on how
many ranks wrote them. Apart from the loop (lm/train.py) because it is about ranks, not tokens."""
from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch
from torch import nn


def wrap_ddp(model: nn.Module) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    device = model.wte.weight.device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def wrap_fsdp(model: nn.Module) -> nn.Module:
    """FSDP2: each block's parameters sharded over the ranks, gathered just in time. The mesh is
    made for the device the model is on (FSDP's default mesh would take CUDA whenever it exists)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(model.wte.weight.device.type, (dist.get_world_size(),))
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    return fully_shard(model, mesh=mesh)


WRAPPERS: dict[str, Callable[[nn.Module], nn.Module]] = {"ddp": wrap_ddp, "fsdp": wrap_fsdp}


@contextlib.contextmanager
def no_sync(net: nn.Module, last: bool):
    """Skip the gradient all-reduce (DDP) or reduce-scatter (FSDP) on all but the last
    micro-batch of a step: the gradients accumulate locally and are averaged once."""
    if last:
        yield
    elif hasattr(net, "no_sync"):
        with net.no_sync():
            yield
    elif hasattr(net, "set_requires_gradient_sync"):
        net.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            net.set_requires_gradient_sync(True)
    else:
        yield



def full_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Plain, unsharded tensors (FSDP's DTensors gathered), so checkpoints and bundles never
    depend on how many ranks wrote them."""
    state = model.state_dict()
    if any(type(t).__name__ == "DTensor" for t in state.values()):
        state = {k: t.full_tensor() if type(t).__name__ == "DTensor" else t for k, t in state.items()}
    return state


def sharded(model: nn.Module) -> bool:
    return any(type(p).__name__ == "DTensor" for p in model.parameters())


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state as one process would hold it (FSDP's shards gathered)."""
    if not sharded(model):
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    if not sharded(model):
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, optim_state_dict=state, options=StateDictOptions(full_state_dict=True))
