"""Device placement without a GPU: the resolution logic (``train.device``), LOCAL_RANK binding,
the process-group backend and the autocast device, checked with torch told it has GPUs."""
from __future__ import annotations

import pytest
import torch

from forgeml.errors import ConfigError
from forgeml.train import device as placement
from forgeml.train.device import autocast_device_type, process_group_backend, resolve_device


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_without_a_gpu_auto_is_the_cpu_and_cuda_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") == resolve_device("cpu")
    with pytest.raises(ConfigError) as error:
        resolve_device("cuda", where="--device")
    assert error.value.where == "--device" and "no CUDA GPU" in str(error.value)
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")


def test_with_gpus_auto_takes_the_gpu_of_the_local_rank(two_gpus, monkeypatch) -> None:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("auto") == torch.device("cuda", 0) == resolve_device("cuda")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")  # asked for: the CPU even with GPUs
    monkeypatch.setenv("LOCAL_RANK", "2")  # a third rank on a two-GPU host
    with pytest.raises(ConfigError, match="has 2"):
        resolve_device("auto")


def test_backend_and_autocast_follow_the_device(two_gpus) -> None:
    assert process_group_backend(torch.device("cuda", 1)) == "nccl"
    assert process_group_backend(torch.device("cpu")) == "gloo"
    assert autocast_device_type(torch.device("cuda", 0)) == "cuda"
    assert autocast_device_type("cpu") == "cpu"  # bf16 on the CPU even where a GPU exists


def test_under_torchrun_on_gpus_the_rank_binds_its_gpu_and_joins_with_nccl(two_gpus, monkeypatch) -> None:
    import torch.distributed as dist

    from forgeml.train.distributed import DistContext

    calls: dict[str, object] = {}
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(placement.torch.cuda, "set_device", lambda device: calls.setdefault("bound", device))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.setdefault("backend", backend))
    monkeypatch.setattr(dist, "get_rank", lambda: 3)
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    context = DistContext.from_env("auto")
    assert calls == {"bound": torch.device("cuda", 1), "backend": "nccl"}
    assert context.device == torch.device("cuda", 1) and context.rank == 3 and context.local_world_size == 2

    calls.clear()
    context = DistContext.from_env("cpu")  # device: cpu on a GPU host: gloo, nothing bound
    assert calls == {"backend": "gloo"} and context.device == torch.device("cpu")


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.lin(inputs["x"])


def test_the_trainer_refuses_cuda_without_a_gpu_and_trains_on_the_cpu(monkeypatch) -> None:
    from forgeml.config import TrainConfig
    from forgeml.train.trainer import TensorData, Trainer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    net, data = _Net(), TensorData({"x": torch.randn(16, 3)}, torch.randn(16, 1))
    loss = torch.nn.functional.mse_loss
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        Trainer(TrainConfig(epochs=1, device="cuda", progress=False)).fit(net, loss, data)
    trainer = Trainer(TrainConfig(epochs=2, device="auto", progress=False))
    before = net.lin.weight.detach().clone()
    trainer.fit(net, loss, data)
    assert trainer.device == torch.device("cpu") and net.lin.weight.device.type == "cpu"
    assert not torch.equal(before, net.lin.weight)
