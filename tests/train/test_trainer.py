"""The Trainer: parity with a plain PyTorch loop, optimisers, schedules, early stopping,
clipping, penalties, bf16, determinism, checkpoints and mid-epoch resume."""
from __future__ import annotations

import copy
import math
import os
import signal
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from forgeml.config import TrainConfig
from forgeml.train.checkpoint import LAST
from forgeml.train.trainer import TensorData, Trainer, TrainingInterrupted

ROWS, BATCH = 100, 16  # 6 full batches and one of 4 rows: 7 steps per epoch
STEPS_PER_EPOCH = 7


class _Net(nn.Module):
    """A small regressor taking the Trainer's dict inputs; records the dtype autocast gave it."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(8, 1)
        self.seen_dtypes: set[torch.dtype] = set()

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.hidden(inputs["x"])  # (B, 8)
        self.seen_dtypes.add(hidden.dtype)
        return self.head(self.dropout(torch.relu(hidden)))  # (B, 1)


def _net(seed: int = 0, dropout: float = 0.0) -> _Net:
    torch.manual_seed(seed)
    return _Net(dropout)


def _data(rows: int = ROWS, seed: int = 0, sign: float = 1.0) -> TensorData:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 4, generator=generator)
    y = sign * (x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])) + 0.05 * torch.randn(rows, 1, generator=generator)
    return TensorData({"x": x}, y)


def _config(**overrides) -> TrainConfig:
    """Plain SGD: no schedule, clipping, decay, penalties or early stopping unless asked."""
    options = dict(
        epochs=3, batch_size=BATCH, optimizer="sgd", learning_rate=0.02, momentum=0.9, weight_decay=0.0,
        schedule="none", grad_clip=None, early_stopping_patience=0, progress=False, threads=1, seed=7,
        checkpoint_every_steps=10_000,
    )
    options.update(overrides)
    return TrainConfig(**options)


def _assert_same_weights(a: nn.Module, b: nn.Module, exact: bool = False) -> None:
    for (name, left), right in zip(a.state_dict().items(), b.state_dict().values()):
        if exact:
            assert torch.equal(left, right), name
        else:
            torch.testing.assert_close(left, right, msg=name)


def _escaped(signum: int, frame) -> None:
    raise AssertionError(f"signal {signum} reached the test instead of the Trainer")


@pytest.fixture(autouse=True)
def _signals_reach_the_trainer():
    """The tests signal their own process: one the Trainer misses fails the test, not pytest."""
    previous = {sig: signal.signal(sig, _escaped) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


# ----------------------------------------------------------------------------- parity
def test_sgd_matches_a_hand_written_loop_over_the_same_batches() -> None:
    config = _config(epochs=3)
    data = _data()
    model = _net()
    reference = copy.deepcopy(model)

    result = Trainer(config).fit(model, F.mse_loss, data)

    optimizer = torch.optim.SGD(reference.parameters(), lr=config.learning_rate, momentum=config.momentum)
    for epoch in range(config.epochs):
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(config.seed * 1_000_003 + epoch))
        for start in range(0, len(data), config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = F.mse_loss(reference({"x": data.inputs["x"][batch]}), data.targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert result.best_epoch == config.epochs  # train loss fell every epoch: no earlier epoch restored
    assert len(result.history) == config.epochs
    _assert_same_weights(model, reference)


# ----------------------------------------------------------------------------- optimisers
def test_without_weight_decay_all_parameters_share_one_group() -> None:
    from forgeml.train.optim import build_optimizer

    assert len(build_optimizer(_net(), _config(optimizer="adam", weight_decay=0.0)).param_groups) == 1
    assert len(build_optimizer(_net(), _config(optimizer="adam", weight_decay=0.01)).param_groups) == 2


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_each_optimizer_trains_and_is_the_one_configured(name: str, tmp_path: Path) -> None:
    config = _config(optimizer=name, learning_rate=0.05, weight_decay=0.05, epochs=3)
    result = Trainer(config, checkpoint_dir=tmp_path).fit(_net(), F.mse_loss, _data())
    assert result.history[-1]["train_loss"] < 0.9 * result.history[0]["train_loss"]

    saved = torch.load(tmp_path / LAST, weights_only=True)["optimizer"]
    decayed, not_decayed = saved["param_groups"]
    assert decayed["weight_decay"] == 0.05 and not_decayed["weight_decay"] == 0.0  # biases are not decayed
    assert len(decayed["params"]) == 2 and len(not_decayed["params"]) == 2  # two weights, two biases
    state = saved["state"][0]
    if name == "sgd":
        assert decayed["momentum"] == config.momentum and "momentum_buffer" in state
    else:
        assert {"exp_avg", "exp_avg_sq"} <= set(state)
        assert decayed["decoupled_weight_decay"] is (name == "adamw")


# ----------------------------------------------------------------------------- schedules
def _lrs(**overrides) -> list[float]:
    result = Trainer(_config(learning_rate=0.05, **overrides)).fit(_net(), F.mse_loss, _data())
    return [row["lr"] for row in result.history]  # the lr after each epoch's last step


def test_no_schedule_keeps_the_learning_rate() -> None:
    assert _lrs(epochs=3) == pytest.approx([0.05] * 3)


@pytest.mark.parametrize("schedule", ["step", "exponential"])
def test_step_and_exponential_decay_by_gamma_per_epoch(schedule: str) -> None:
    lrs = _lrs(schedule=schedule, step_size=1, gamma=0.5, epochs=4)
    assert lrs == pytest.approx([0.05 * 0.5 ** (epoch + 1) for epoch in range(4)], rel=1e-6)


def test_step_schedule_waits_step_size_epochs() -> None:
    assert _lrs(schedule="step", step_size=2, gamma=0.1, epochs=4) == pytest.approx([0.05, 0.005, 0.005, 0.0005])


def test_cosine_anneals_to_one_percent() -> None:
    epochs = 4
    total = epochs * STEPS_PER_EPOCH
    eta_min = 0.05 * 0.01
    expected = [eta_min + (0.05 - eta_min) * (1 + math.cos(math.pi * (e + 1) * STEPS_PER_EPOCH / total)) / 2 for e in range(epochs)]
    assert _lrs(schedule="cosine", epochs=epochs) == pytest.approx(expected, rel=1e-6)


def test_one_cycle_rises_to_the_peak_then_falls() -> None:
    lrs = _lrs(schedule="onecycle", epochs=10)
    peak = lrs.index(max(lrs))
    assert 0 < peak < 5  # the peak is at 30 % of the steps
    assert lrs[0] < lrs[peak] and max(lrs) == pytest.approx(0.05, rel=0.05)
    assert all(a > b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))
    assert lrs[-1] < 0.05 / 100


def test_linear_warmup_ramps_then_hands_over() -> None:
    warmup = 2 * STEPS_PER_EPOCH
    ramp = [0.05 * (1e-3 + (1 - 1e-3) * min(1.0, (e + 1) * STEPS_PER_EPOCH / warmup)) for e in range(4)]
    assert _lrs(warmup_steps=warmup, epochs=4) == pytest.approx(ramp, rel=1e-6)

    # with cosine: warm-up first, then a full cosine over the remaining steps
    lrs = _lrs(schedule="cosine", warmup_steps=warmup, epochs=4)
    assert lrs[:2] == pytest.approx(ramp[:2], rel=1e-6)
    assert lrs[2] == pytest.approx(0.0005 + (0.05 - 0.0005) / 2, rel=1e-6)  # half-way through the cosine
    assert lrs[3] == pytest.approx(0.0005, rel=1e-6)


# ----------------------------------------------------------------------------- early stopping
class _Snapshots:
    """Keeps the model's weights as they were at the end of each epoch."""

    def __init__(self, model: nn.Module):
        self.model, self.by_epoch = model, {}

    def on_epoch_end(self, row: dict) -> None:
        self.by_epoch[row["epoch"]] = copy.deepcopy(self.model.state_dict())


def test_early_stopping_stops_and_restores_the_best_epoch() -> None:
    # validation targets have the opposite sign: the better the fit, the worse validation gets
    model = _net()
    snapshots = _Snapshots(model)
    config = _config(epochs=30, early_stopping_patience=2, learning_rate=0.02, momentum=0.0)
    result = Trainer(config, callbacks=[snapshots]).fit(model, F.mse_loss, _data(), _data(40, seed=1, sign=-1.0))

    val_losses = [row["val_loss"] for row in result.history]
    assert result.stopped_early and len(result.history) == 3
    assert val_losses[1] > val_losses[0] and val_losses[2] > val_losses[0]
    assert result.best_epoch == 1 and result.best_value == pytest.approx(val_losses[0])
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, snapshots.by_epoch[1][name]), name
    assert not torch.equal(model.head.weight, snapshots.by_epoch[3]["head.weight"])


def _closeness(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    return {"closeness": -float(F.mse_loss(outputs, targets))}


def test_early_stopping_watches_the_chosen_metric_in_its_direction() -> None:
    """'closeness' (higher is better) falls as validation loss rises: stop after patience."""
    config = _config(epochs=30, early_stopping_patience=2, early_stopping_metric="closeness", learning_rate=0.02, momentum=0.0)
    trainer = Trainer(config, monitor_direction="max")
    result = trainer.fit(_net(), F.mse_loss, _data(), _data(40, seed=1, sign=-1.0), metrics_fn=_closeness)
    assert result.stopped_early and len(result.history) == 3
    assert result.best_epoch == 1 and result.best_value == pytest.approx(result.history[0]["val_closeness"])

    # the same metric watched as if lower were better keeps improving: no stop, last epoch best
    config = _config(epochs=5, early_stopping_patience=2, early_stopping_metric="closeness", learning_rate=0.02, momentum=0.0)
    result = Trainer(config, monitor_direction="min").fit(_net(), F.mse_loss, _data(), _data(40, seed=1, sign=-1.0), metrics_fn=_closeness)
    assert not result.stopped_early and len(result.history) == 5 and result.best_epoch == 5


def test_early_stopping_ignores_improvements_smaller_than_min_delta() -> None:
    """A loss still creeping down by less than min_delta per epoch is a plateau: stop after patience."""
    creeping = {"min_delta": 0.0, "huge": 1e3}
    lengths = {}
    for name, delta in creeping.items():
        config = _config(epochs=8, early_stopping_patience=2, early_stopping_min_delta=delta, learning_rate=0.02, momentum=0.0)
        lengths[name] = len(Trainer(config).fit(_net(), F.mse_loss, _data(), _data(40, seed=1)).history)
    assert lengths == {"min_delta": 8, "huge": 3}  # with a huge delta only epoch 1 ever counts as better


# ----------------------------------------------------------------------------- clipping and penalties
def _one_step(**overrides) -> tuple[_Net, _Net]:
    """(before, after) one full-batch plain-SGD step with lr 1 on badly scaled targets."""
    data = _data()
    data = TensorData(data.inputs, 50 * data.targets)
    before = _net()
    after = copy.deepcopy(before)
    Trainer(_config(epochs=1, batch_size=ROWS, momentum=0.0, learning_rate=1.0, **overrides)).fit(after, F.mse_loss, data)
    return before, after


def _update_norm(before: nn.Module, after: nn.Module) -> float:
    with torch.no_grad():
        return float(torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(after.parameters(), before.parameters()))))


def test_gradient_clipping_bounds_the_update() -> None:
    assert _update_norm(*_one_step()) > 1.0  # unclipped, the step is large
    assert _update_norm(*_one_step(grad_clip=0.01)) == pytest.approx(0.01, rel=1e-4)


def test_warmup_makes_the_first_step_a_thousandth() -> None:
    before, plain = _one_step()
    _, warmed = _one_step(warmup_steps=10)
    assert _update_norm(before, warmed) == pytest.approx(1e-3 * _update_norm(before, plain), rel=1e-4)


def test_l1_and_l2_penalise_weights_but_not_biases() -> None:
    before, plain = _one_step()
    _, with_l2 = _one_step(l2=0.1)
    _, with_l1 = _one_step(l1=0.1)
    for name in ("hidden", "head"):
        weight = getattr(before, name).weight
        # d(l2·Σw²)/dw = 2·l2·w and d(l1·Σ|w|)/dw = l1·sign(w), times lr 1
        torch.testing.assert_close(getattr(with_l2, name).weight, getattr(plain, name).weight - 2 * 0.1 * weight)
        torch.testing.assert_close(getattr(with_l1, name).weight, getattr(plain, name).weight - 0.1 * weight.sign())
        assert torch.equal(getattr(with_l2, name).bias, getattr(plain, name).bias)
        assert torch.equal(getattr(with_l1, name).bias, getattr(plain, name).bias)


# ----------------------------------------------------------------------------- precision and determinism
def test_bf16_autocast_runs_with_finite_loss() -> None:
    model = _net()
    result = Trainer(_config(precision="bf16", epochs=2)).fit(model, F.mse_loss, _data(), _data(40, seed=1))
    assert torch.bfloat16 in model.seen_dtypes
    assert all(math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"]) for row in result.history)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]

    fp32 = _net()
    Trainer(_config(epochs=1)).fit(fp32, F.mse_loss, _data())
    assert fp32.seen_dtypes == {torch.float32}


def test_same_seed_gives_the_same_history_and_another_seed_does_not() -> None:
    def run(seed: int) -> list[dict]:
        config = _config(seed=seed, optimizer="adamw", schedule="cosine", warmup_steps=3, grad_clip=1.0)
        return _without_seconds(Trainer(config).fit(_net(dropout=0.3), F.mse_loss, _data(), _data(40, seed=1)).history)

    first = run(3)
    assert first == run(3)
    assert first != run(4)


# ----------------------------------------------------------------------------- checkpoints and resume
def test_checkpoint_every_n_steps_is_atomic_and_loads_weights_only(tmp_path: Path) -> None:
    seen: list[dict | None] = []
    calls = [0]

    def loss_fn(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():  # a training step, not evaluation
            calls[0] += 1
            path = tmp_path / LAST
            seen.append(torch.load(path, weights_only=True) if path.exists() else None)
        return F.mse_loss(outputs, targets)

    Trainer(_config(epochs=1, checkpoint_every_steps=3), checkpoint_dir=tmp_path).fit(_net(), loss_fn, _data())
    assert seen[:3] == [None, None, None]  # nothing before step 3
    assert [c["global_step"] for c in seen[3:6]] == [3, 3, 3] and seen[6]["global_step"] == 6
    assert (seen[3]["epoch"], seen[3]["batch"]) == (0, 3)  # mid-epoch: resume at batch 3 of epoch 0

    final = torch.load(tmp_path / LAST, weights_only=True)
    assert (final["epoch"], final["batch"], final["global_step"]) == (1, 0, STEPS_PER_EPOCH)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST]  # no temporary files left behind


def _resumable_run(checkpoint_dir: Path, *, stop_after: int | None = None, resume: bool = False, init_seed: int = 0):
    """AdamW + cosine warm-up + clipping + dropout: every piece of state a resume must restore."""
    model = _net(init_seed, dropout=0.2)
    config = _config(epochs=4, optimizer="adamw", schedule="cosine", warmup_steps=5, weight_decay=0.01, grad_clip=1.0, checkpoint_every_steps=4)
    calls = [0]

    def loss_fn(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            calls[0] += 1
            if calls[0] == stop_after:
                os.kill(os.getpid(), signal.SIGTERM)  # what `kill` or a scheduler's pre-emption sends
        return F.mse_loss(outputs, targets)

    result = Trainer(config, checkpoint_dir=checkpoint_dir).fit(model, loss_fn, _data(), _data(40, seed=1), resume=resume)
    return model, result


def test_resume_in_the_middle_of_an_epoch_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    straight, straight_result = _resumable_run(tmp_path / "straight")

    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as stopped:
        _resumable_run(tmp_path / "interrupted", stop_after=10)  # step 3 of epoch 2
    assert signal.getsignal(signal.SIGTERM) is handler_before  # the trainer's handler is gone again
    assert stopped.value.checkpoint == tmp_path / "interrupted" / LAST
    checkpoint = torch.load(stopped.value.checkpoint, weights_only=True)
    assert (checkpoint["epoch"], checkpoint["batch"], checkpoint["global_step"]) == (1, 3, 10)
    assert len(checkpoint["history"]) == 1

    resumed, resumed_result = _resumable_run(tmp_path / "interrupted", resume=True, init_seed=99)
    _assert_same_weights(resumed, straight, exact=True)
    assert _without_seconds(resumed_result.history) == _without_seconds(straight_result.history)
    assert resumed_result.best_epoch == straight_result.best_epoch


def test_resume_after_the_last_step_of_an_epoch(tmp_path: Path) -> None:
    """Interrupted on an epoch's last step: the resumed run still reports that epoch's loss."""
    straight, straight_result = _resumable_run(tmp_path / "straight")
    with pytest.raises(TrainingInterrupted):
        _resumable_run(tmp_path / "interrupted", stop_after=2 * STEPS_PER_EPOCH)
    resumed, resumed_result = _resumable_run(tmp_path / "interrupted", resume=True)
    _assert_same_weights(resumed, straight, exact=True)
    assert _without_seconds(resumed_result.history) == _without_seconds(straight_result.history)


def test_sigint_also_checkpoints_and_stops(tmp_path: Path) -> None:
    calls = [0]
    handler_before = signal.getsignal(signal.SIGINT)

    def loss_fn(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        if calls[0] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return F.mse_loss(outputs, targets)

    with pytest.raises(TrainingInterrupted):
        Trainer(_config(epochs=2), checkpoint_dir=tmp_path).fit(_net(), loss_fn, _data())
    assert torch.load(tmp_path / LAST, weights_only=True)["global_step"] == 2
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    from forgeml.errors import CheckpointError

    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        Trainer(_config(), checkpoint_dir=tmp_path).fit(_net(), F.mse_loss, _data(), resume=True)


# ----------------------------------------------------------------------------- progress
def test_progress_bar_shows_the_epoch_live_loss_and_watched_metric(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich draws bars only on a terminal
    monkeypatch.setenv("COLUMNS", "160")
    result = Trainer(_config(epochs=2, progress=True)).fit(_net(), F.mse_loss, _data(), _data(40, seed=1))
    drawn = capsys.readouterr().err
    assert "epoch 1/2" in drawn and "epoch 2/2" in drawn
    assert f"loss {result.history[0]['train_loss']:.4f}" in drawn  # the epoch's running loss at its end
    assert f"val_loss {result.history[0]['val_loss']:.4g}" in drawn  # epoch 1's metric, during epoch 2


def test_no_progress_bar_off_a_terminal_or_when_disabled(capsys: pytest.CaptureFixture) -> None:
    Trainer(_config(epochs=1, progress=True)).fit(_net(), F.mse_loss, _data())
    assert "epoch 1/1" not in capsys.readouterr().err


@pytest.mark.parametrize("epochs", [3, 1])
def test_a_signal_during_evaluation_stops_at_the_epoch_end(tmp_path: Path, epochs: int) -> None:
    """Not one more step, and not ignored when it lands in the last epoch's evaluation."""

    def metrics_fn(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        os.kill(os.getpid(), signal.SIGTERM)
        return {}

    with pytest.raises(TrainingInterrupted):
        Trainer(_config(epochs=epochs), checkpoint_dir=tmp_path).fit(_net(), F.mse_loss, _data(), _data(40, seed=1), metrics_fn=metrics_fn)
    checkpoint = torch.load(tmp_path / LAST, weights_only=True)
    assert (checkpoint["epoch"], checkpoint["batch"], checkpoint["global_step"]) == (1, 0, STEPS_PER_EPOCH)
    assert len(checkpoint["history"]) == 1


def test_numpy_and_torch_metric_values_still_give_a_loadable_checkpoint(tmp_path: Path) -> None:
    import numpy as np

    def metrics_fn(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return {"numpy": np.float64(0.5), "torch": torch.tensor(0.25), "none": None}

    result = Trainer(_config(epochs=1), checkpoint_dir=tmp_path).fit(_net(), F.mse_loss, _data(), _data(40, seed=1), metrics_fn=metrics_fn)
    row = torch.load(tmp_path / LAST, weights_only=True)["history"][0]  # numpy scalars would be refused
    assert (row["val_numpy"], row["val_torch"], row["val_none"]) == (0.5, 0.25, None)
    assert type(result.history[0]["val_numpy"]) is float
