"""Checkpoints: atomic writes, weights-only reads, and one clear error for every bad file."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from forgeml.config import TrainConfig
from forgeml.errors import CheckpointError
from forgeml.train.checkpoint import LAST, load_checkpoint, save_checkpoint
from forgeml.train.distributed import DistContext
from forgeml.train.trainer import TensorData, Trainer


class _Payload:
    """Runs code when unpickled: a weights-only load must refuse it."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').touch()",))


def test_round_trip_replaces_atomically(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, {"step": 1, "weights": torch.ones(3)})
    save_checkpoint(tmp_path, {"step": 2, "weights": torch.zeros(3)})
    loaded = load_checkpoint(tmp_path)
    assert loaded["step"] == 2 and torch.equal(loaded["weights"], torch.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == [LAST]


@pytest.mark.parametrize("directory", [None, "empty"])
def test_missing_checkpoint_says_so(tmp_path: Path, directory: str | None) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint to resume from") as error:
        load_checkpoint(tmp_path / directory if directory else None)
    assert "without --resume" in str(error.value)


def _pickled(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "code"])
def test_damaged_or_unsafe_checkpoint_is_a_clear_error(tmp_path: Path, damage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    good = _pickled({"weights": torch.ones(100)})
    content = {"empty": b"", "truncated": good[: len(good) // 2], "garbage": b"not a checkpoint " * 20, "code": _pickled({"x": _Payload()})}[damage]
    (tmp_path / LAST).write_bytes(content)
    with pytest.raises(CheckpointError, match="checkpoint is unreadable"):
        load_checkpoint(tmp_path)
    assert not (tmp_path / "PWNED").exists()


def _config(**overrides) -> TrainConfig:
    return TrainConfig(**{"epochs": 1, "batch_size": 8, "schedule": "none", "progress": False, "threads": 1, **overrides})


def _data() -> TensorData:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    return TensorData({"x": x}, x.sum(dim=1, keepdim=True))


class _Net(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.body(inputs["x"])


def test_resuming_a_different_model_is_a_clear_error(tmp_path: Path) -> None:
    Trainer(_config(), checkpoint_dir=tmp_path).fit(_Net(8), F.mse_loss, _data())
    with pytest.raises(CheckpointError, match="does not fit this model"):
        Trainer(_config(epochs=2), checkpoint_dir=tmp_path).fit(_Net(16), F.mse_loss, _data(), resume=True)


def test_resuming_with_another_number_of_processes_is_a_clear_error(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, {"world_size": 2})
    with pytest.raises(CheckpointError, match="written by 2 processes, this run has 1"):
        Trainer(_config(), checkpoint_dir=tmp_path, dist=DistContext()).fit(_Net(), F.mse_loss, _data(), resume=True)


def test_a_run_killed_after_early_stopping_resumes_to_the_same_end(tmp_path: Path) -> None:
    """kill -9 after the early-stopped epoch's checkpoint, before the bundle is written: the resumed
    run must not train another epoch (which could find a new best and change the weights)."""
    def fit(resume: bool, init_seed: int) -> tuple[nn.Module, object]:
        torch.manual_seed(init_seed)
        model = _Net()
        val = TensorData({"x": _data().inputs["x"][:16]}, -_data().targets[:16])  # the better the fit, the worse validation
        config = _config(epochs=30, early_stopping_patience=2, learning_rate=0.01, seed=3)
        return model, Trainer(config, checkpoint_dir=tmp_path).fit(model, F.mse_loss, _data(), val, resume=resume)

    straight, straight_result = fit(resume=False, init_seed=0)
    assert straight_result.stopped_early and len(straight_result.history) < 30
    resumed, resumed_result = fit(resume=True, init_seed=99)  # the checkpoint on disk is the stopped one
    assert resumed_result.stopped_early and resumed_result.history == straight_result.history
    assert resumed_result.best_epoch == straight_result.best_epoch
    for (name, left), right in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(left, right), name
    assert torch.load(tmp_path / LAST, weights_only=True)["epoch"] == len(straight_result.history)  # not one more
