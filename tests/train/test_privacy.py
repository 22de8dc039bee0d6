"""Differentially private training (forgeml/train/privacy.py): the budget spent and its accounting,
per-row clipping, Poisson batches, batch norm fixed or refused, resume, and every refusal."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from forgeml.config import Config, TrainConfig, apply_overrides
from forgeml.errors import CheckpointError, ConfigError
from forgeml.train.privacy import PrivateTraining, private_module
from forgeml.train.privacy_checks import check_private_run, default_delta
from forgeml.train.trainer import TensorData, Trainer, TrainingInterrupted

ROWS, BATCH = 400, 50  # 8 Poisson batches per epoch, 50 rows expected in each


class _Classifier(nn.Module):
    """Two classes from four numbers, taking the Trainer's dict inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(4, 16)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 2)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.hidden(inputs["x"]))))  # (B, 2)


def _model(seed: int = 0) -> _Classifier:
    torch.manual_seed(seed)
    return _Classifier()


def _data(rows: int = ROWS, seed: int = 0) -> TensorData:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 4, generator=generator)
    return TensorData({"x": x}, (x[:, 0] - x[:, 1] > 0).long())


def _config(**privacy) -> TrainConfig:
    options = dict(epochs=4, batch_size=BATCH, optimizer="sgd", learning_rate=0.5, momentum=0.0, weight_decay=0.0, schedule="none",
                   early_stopping_patience=0, progress=False, threads=1, seed=3, checkpoint_every_steps=10_000)
    return TrainConfig(**options, privacy={"epsilon": 3.0, "delta": 1e-4, **privacy})


def _fit(config: TrainConfig, **kwargs):
    model = _model()
    result = Trainer(config, **{k: v for k, v in kwargs.items() if k == "checkpoint_dir"}).fit(
        model, F.cross_entropy, _data(), _data(100, seed=1), resume=kwargs.get("resume", False),
        metrics_fn=lambda out, y: {"accuracy": float((out.argmax(1) == y).float().mean())})
    return model, result


# ----------------------------------------------------------------------------- the budget
@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_a_private_run_spends_at_most_its_epsilon_and_reports_delta(accountant: str) -> None:
    model, result = _fit(_config(accountant=accountant))
    spent = result.privacy
    assert spent["epsilon"] <= 3.0 and spent["epsilon"] > 2.5  # calibrated for these 4 epochs: nearly all of it
    assert spent["delta"] == 1e-4 and spent["accountant"] == accountant
    assert spent["steps"] == 4 * (ROWS // BATCH) and spent["sample_rate"] == pytest.approx(BATCH / ROWS)
    assert spent["noise_multiplier"] > 0.3
    assert result.history[-1]["val_accuracy"] > 0.75  # the noisy model still learns the boundary
    assert not any(hasattr(p, "grad_sample") for p in model.parameters())  # Opacus's hooks are off the trained model


def test_the_reported_epsilon_is_opacus_accountants_for_the_same_steps() -> None:
    from opacus.accountants import RDPAccountant

    _, result = _fit(_config(accountant="rdp"))
    spent = result.privacy
    accountant = RDPAccountant()
    accountant.history = [(spent["noise_multiplier"], spent["sample_rate"], spent["steps"])]
    assert spent["epsilon"] == pytest.approx(accountant.get_epsilon(spent["delta"]), rel=1e-9)


def test_stopping_early_spends_less_than_the_target() -> None:
    _, full = _fit(_config())
    result = Trainer(_config(), deadline=0.0).fit(_model(), F.cross_entropy, _data(), _data(100, seed=1))  # the deadline ends it after epoch 1
    assert result.privacy["steps"] == ROWS // BATCH
    assert result.privacy["epsilon"] < 0.7 * full.privacy["epsilon"]  # ε grows about as √steps: a quarter of them, ~half of ε


# ----------------------------------------------------------------------------- the mechanism
def test_each_rows_gradient_is_clipped_before_the_step() -> None:
    """No noise, SGD: one step moves the weights by at most lr × max_grad_norm × |batch| / E|batch|,
    although every row's own gradient is far larger (the bound would fail unclipped)."""
    config, model, data = _config(max_grad_norm=0.01), _model(), _data()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate)
    private = PrivateTraining(config, len(data))
    net, optimizer = private.attach(model, optimizer, None, resumed=False)
    optimizer.noise_multiplier = 0.0
    rows = next(private.batches(0, 0))
    inputs, targets = data.take(rows)
    before = [p.detach().clone() for p in model.parameters()]
    loss = F.cross_entropy(net({"x": inputs["x"] * 100}), targets)  # large inputs: large per-row gradients
    optimizer.zero_grad()
    loss.backward()
    row_norms = torch.stack([p.grad_sample.flatten(1).norm(dim=1) for p in model.parameters()], dim=1).norm(dim=1)
    assert row_norms.min() > 10 * 0.01  # every row's own gradient is over 10× the clipping norm
    bound = config.learning_rate * 0.01 * len(rows) / optimizer.expected_batch_size
    unclipped = config.learning_rate * torch.cat([p.grad_sample.sum(0).flatten() for p in model.parameters()]).norm() / optimizer.expected_batch_size
    assert unclipped > 10 * bound  # what plain SGD would have done
    optimizer.step()
    moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)]).norm()
    assert 0 < moved <= bound * (1 + 1e-4)


def test_batches_are_poisson_samples_seeded_per_epoch() -> None:
    private = PrivateTraining(_config(), ROWS)
    epoch0 = list(private.batches(0, 0))
    assert len(epoch0) == ROWS // BATCH
    sizes = [len(rows) for rows in epoch0]
    assert len(set(sizes)) > 1 and 20 < np.mean(sizes) < 80  # sizes vary around the expected 50
    assert sum(sizes) != ROWS  # not a partition of the rows: a row may be in no batch, or in several
    assert all(torch.equal(a, b) for a, b in zip(epoch0, private.batches(0, 0)))
    assert [r.tolist() for r in private.batches(0, 3)] == [r.tolist() for r in epoch0[3:]]  # a resumed epoch skips what it did
    assert any(not torch.equal(a, b) for a, b in zip(epoch0, private.batches(1, 0)))


def test_an_empty_poisson_batch_is_a_step_too() -> None:
    """One row expected per batch: about a third of the batches are empty; each still counts (its
    noise is added) and the logged loss stays finite."""
    config = _config()
    config.batch_size, config.epochs = 1, 2
    result = Trainer(config).fit(_model(), F.cross_entropy, _data(40))
    assert sum(len(rows) == 0 for rows in PrivateTraining(config, 40).batches(0, 0)) > 5
    assert result.privacy["steps"] == 2 * 40
    assert all(np.isfinite(row["train_loss"]) for row in result.history)


def _signals_to_trainer(stop_after: int | None):
    calls = [0]

    def loss_fn(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            calls[0] += 1
            if calls[0] == stop_after:
                os.kill(os.getpid(), signal.SIGTERM)
        return F.cross_entropy(outputs, targets)

    return loss_fn


def test_resume_restores_the_accountant_and_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    def run(folder: Path, stop_after: int | None = None, resume: bool = False):
        model = _model(seed=99 if resume else 0)
        result = Trainer(_config(), checkpoint_dir=folder).fit(model, _signals_to_trainer(stop_after), _data(), _data(100, seed=1), resume=resume)
        return model, result

    straight, straight_result = run(tmp_path / "straight")
    with pytest.raises(TrainingInterrupted):
        run(tmp_path / "cut", stop_after=11)  # step 3 of epoch 2
    resumed, resumed_result = run(tmp_path / "cut", resume=True)
    for left, right in zip(resumed.state_dict().values(), straight.state_dict().values()):
        assert torch.equal(left, right)  # same batches, same noise
    assert resumed_result.privacy == straight_result.privacy  # 32 steps counted, not 21


def test_a_plain_checkpoint_cannot_resume_privately(tmp_path: Path) -> None:
    plain = _config()
    plain.privacy.epsilon = None
    with pytest.raises(TrainingInterrupted):
        Trainer(plain, checkpoint_dir=tmp_path).fit(_model(), _signals_to_trainer(3), _data())
    with pytest.raises(CheckpointError, match="without train.privacy"):
        Trainer(_config(), checkpoint_dir=tmp_path).fit(_model(), F.cross_entropy, _data(), resume=True)


@pytest.fixture(autouse=True)
def _signals_reach_the_trainer():
    def escaped(signum: int, frame) -> None:
        raise AssertionError(f"signal {signum} reached the test instead of the Trainer")

    previous = {sig: signal.signal(sig, escaped) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


# ----------------------------------------------------------------------------- layers
class _ConvNet(nn.Module):
    """The image encoder's block: conv, batch norm, in-place ReLU, pooling; dict inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(8, 2)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.block(inputs["image"]))  # (B, 2)


def test_batch_norm_becomes_group_norm_and_the_network_trains_privately() -> None:
    torch.manual_seed(0)
    network = _ConvNet()
    fixed = private_module(network)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fixed.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in fixed.modules())
    assert not any(getattr(m, "inplace", False) for m in fixed.modules())  # Opacus's hooks forbid in-place outputs
    assert any(isinstance(m, nn.BatchNorm2d) for m in network.modules())  # the original is left as it was
    images = torch.randn(200, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    data = TensorData({"image": images}, (images.mean(dim=(1, 2, 3)) > 0).long())
    result = Trainer(_config()).fit(fixed, F.cross_entropy, data)
    assert 0 < result.privacy["epsilon"] <= 3.0


def test_the_bag_text_encoder_becomes_an_embedding_with_the_same_vectors() -> None:
    """Opacus's EmbeddingBag gradient ignores padding; the replacement gives the same outputs and
    exact per-row gradients."""
    torch.manual_seed(0)
    bag = nn.EmbeddingBag(30, 5, mode="mean", padding_idx=0)
    tokens = torch.tensor([[3, 4, 4, 0, 0], [7, 0, 0, 0, 0], [0, 0, 0, 0, 0]])  # a repeated token, padding, an empty row
    fixed = private_module(nn.Sequential(bag))
    assert not any(isinstance(m, nn.EmbeddingBag) for m in fixed.modules())
    torch.testing.assert_close(fixed(tokens), bag(tokens))


class _Running(nn.Module):
    """A trainable layer with a running statistic: its rows are not independent, and nothing fixes it."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4))
        self.register_buffer("running", torch.zeros(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight - self.running


def test_a_layer_opacus_cannot_handle_is_refused() -> None:
    with pytest.raises(ConfigError, match="Opacus cannot train this network privately"):
        private_module(nn.Sequential(_Running(), nn.Linear(4, 2)))


# ----------------------------------------------------------------------------- the config
def _table_config(**overrides) -> Config:
    raw = {"target": "y", "task": "binary", "features": [{"name": "a", "type": "number"}]}
    return apply_overrides(Config.from_dict(raw), {"model.type": "mlp", "train.privacy.epsilon": 2.0, **overrides})


def test_the_config_is_made_private_and_says_so() -> None:
    config, notes = check_private_run(_table_config(), 1000)
    assert config.model.norm == "layer" and config.model.linear_skip == "off" and config.train.bagging_folds == 1
    assert config.train.privacy.delta == default_delta(1000) == 1e-5
    assert any("batch → layer" in note for note in notes) and any("ε = 2" in note for note in notes)
    assert default_delta(50_000) == pytest.approx(2e-6)  # below 1/n on big tables too
    unchanged, none = check_private_run(_table_config(**{"train.privacy.epsilon": None}), 1000)
    assert unchanged.model.norm == "batch" and none == []


def test_auto_resolves_to_a_network_family_when_private() -> None:
    from forgeml.models.auto import choose_family

    assert choose_family(["number", "category"], private=True)[0] == "mlp"
    assert choose_family(["number", "category"])[0] == "ensemble"


@pytest.mark.parametrize("overrides, where, text", [
    ({"train.privacy.delta": 1e-3}, "train.privacy.delta", "not below 1/n"),
    ({"model.type": "gbm"}, "train.privacy", "model.type gbm cannot train with differential privacy"),
    ({"model.type": "ensemble"}, "train.privacy", "model.type ensemble"),
    ({"model.type": "linear"}, "train.privacy", "model.type linear"),
    ({"model.type": "catboost"}, "train.privacy", "model.type catboost"),
    ({"model.type": "ngram"}, "train.privacy", "model.type ngram"),
    ({"train.precision": "bf16"}, "train.precision", "fp32 only"),
    ({"train.l1": 0.01}, "train.privacy", "train.l1/train.l2"),
    ({"train.bagging_folds": 5}, "train.bagging_folds", "5 bagged models"),
    ({"model.linear_skip": "on"}, "model.linear_skip", "ridge fit"),
])
def test_what_cannot_be_private_is_one_error_before_training(overrides: dict, where: str, text: str) -> None:
    with pytest.raises(ConfigError, match=text) as error:
        check_private_run(_table_config(**overrides), 1000)
    assert error.value.where == where and error.value.hint
    if "model.type" in overrides:
        assert "--model mlp" in error.value.hint


@pytest.mark.parametrize("overrides, where", [
    ({"model.type": "rnn"}, "model.text.type"),  # its LSTM text encoder
    ({"model.type": "mlp", "model.text.type": "transformer"}, "model.text.type"),
    ({"model.type": "transformer", "model.text.type": "bag"}, "model.combiner"),
])
def test_text_encoders_and_combiners_without_per_row_gradients_are_refused(overrides: dict, where: str) -> None:
    raw = {"target": "y", "task": "binary", "features": [{"name": "a", "type": "number"}, {"name": "t", "type": "text"}]}
    config = apply_overrides(Config.from_dict(raw), {"train.privacy.epsilon": 2.0, **overrides})
    with pytest.raises(ConfigError, match="cannot train with differential privacy") as error:
        check_private_run(config, 1000)
    assert error.value.where == where and ("bag" in error.value.hint or "concat" in error.value.hint)
    check_private_run(apply_overrides(Config.from_dict(raw), {"train.privacy.epsilon": 2.0, "model.type": "rnn", "model.text.type": "bag"}), 1000)


def test_torchrun_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="one process") as error:
        check_private_run(_table_config(), 1000)
    assert "Opacus's DDP" in error.value.message


@pytest.mark.parametrize("option, value", [("epsilon", 0), ("epsilon", -1), ("delta", 0), ("delta", 1), ("max_grad_norm", 0)])
def test_impossible_settings_name_the_option(option: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"train\.privacy\.{option}: Input should be"):
        apply_overrides(Config(target="y"), {f"train.privacy.{option}": value})


def test_tuning_a_private_run_is_refused() -> None:
    """Each trial would spend the budget again on the same rows."""
    from forgeml.tune.study import TuneRequest, check_request

    request = TuneRequest(source=Path("data.csv"), data=Path("data.csv"), config=_table_config())
    with pytest.raises(ConfigError, match="each would spend the privacy budget") as error:
        check_request(request)
    assert error.value.where == "train.privacy"
    check_request(TuneRequest(source=Path("data.csv"), data=Path("data.csv"), config=_table_config(**{"train.privacy.epsilon": None})))
