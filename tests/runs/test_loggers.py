"""``--log tensorboard|mlflow``: trackers receive every epoch row and the held-out metrics."""
from __future__ import annotations

import json
import sys

import pytest

from forgeml.config import Config, apply_overrides
from forgeml.errors import ConfigError
from forgeml.runs.registry import RunRegistry
from forgeml.runs.train_run import run_training

FAST = {"train.epochs": 3, "train.progress": False, "train.threads": 1}


@pytest.fixture
def data(tmp_path, make_mixed):
    path = tmp_path / "mixed.csv"
    make_mixed(rows=120).to_csv(path, index=False)
    return path


def train(data, tmp_path, log):
    registry = RunRegistry(tmp_path / "runs")
    config = apply_overrides(Config(target="label"), FAST)
    return registry, run_training(config, data, registry=registry, name="logged", resume=False, log=log)


def test_unknown_or_missing_tracker_fails_before_a_run_exists(data, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown --log 'wandb'"):
        train(data, tmp_path, ["wandb"])
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    with pytest.raises(ConfigError, match="pip install mlflow"):
        train(data, tmp_path, ["mlflow"])
    assert RunRegistry(tmp_path / "runs").list() == []  # no half-made run left behind


def test_tensorboard_gets_each_epoch_and_the_test_metrics(data, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    registry, result = train(data, tmp_path, ["tensorboard"])
    history = registry.history(result.run_id)
    events = EventAccumulator(str(registry.get(result.run_id).dir / "tensorboard"))
    events.Reload()
    train_loss = events.Scalars("train_loss")
    assert [e.step for e in train_loss] == [row["epoch"] for row in history]
    assert [round(e.value, 5) for e in train_loss] == [round(row["train_loss"], 5) for row in history]
    assert events.Scalars("test/accuracy")[0].value == pytest.approx(result.metrics["accuracy"], abs=1e-6)


def test_mlflow_gets_params_and_metrics(data, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    registry, result = train(data, tmp_path, ["mlflow"])
    runs = mlflow.search_runs(experiment_names=["forgeml"], output_format="list")
    assert [r.info.run_name for r in runs] == [result.run_id]
    assert runs[0].data.metrics["test_accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert json.loads(json.dumps(runs[0].data.params))["train.epochs"] == "3"
