"""``--log tensorboard|mlflow``: trackers receive every epoch row and the held-out metrics."""
from __future__ import annotations

import json
import sys

import pytest

from forgeml.config import Config, apply_overrides
from forgeml.errors import ConfigError
from forgeml.runs.loggers import default_mlflow_uri
from forgeml.runs.registry import RunRegistry
from forgeml.train_run import run_training

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
    with pytest.raises(ConfigError, match=r"pip install 'forgeml\[mlflow\]'"):
        train(data, tmp_path, ["mlflow"])
    assert RunRegistry(tmp_path / "runs").list() == []  # no half-made run left behind


def test_tensorboard_gets_each_epoch_and_the_test_metrics(data, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    registry, result = train(data, tmp_path, ["tensorboard"])
    record = registry.get(result.run_id)
    history = [json.loads(line) for line in record.metrics_path.read_text(encoding="utf-8").splitlines()]
    folds = sorted({row["fold"] for row in history})
    assert len(folds) > 1  # 120 rows: a bag (train.bagging_folds auto), each member's curve under fold<k>/
    events = EventAccumulator(str(record.dir / "tensorboard"))
    events.Reload()
    for fold in folds:
        rows = [row for row in history if row["fold"] == fold]
        train_loss = events.Scalars(f"fold{fold}/train_loss")
        assert [e.step for e in train_loss] == [row["epoch"] for row in rows]
        assert [round(e.value, 5) for e in train_loss] == [round(row["train_loss"], 5) for row in rows]
    assert events.Scalars("test/accuracy")[0].value == pytest.approx(result.metrics["accuracy"], abs=1e-6)


def test_mlflow_gets_params_and_metrics(data, tmp_path, monkeypatch):
    """The default store (no MLFLOW_TRACKING_URI): runs/mlflow.db, which MLflow 3 accepts."""
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    registry, result = train(data, tmp_path, ["mlflow"])
    uri = default_mlflow_uri(tmp_path / "runs")  # sqlite with full mlflow; the file store with mlflow-skinny
    assert (tmp_path / "runs" / ("mlflow.db" if uri.startswith("sqlite") else "mlruns")).exists()
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["forgeml"], output_format="list")
    assert [r.info.run_name for r in runs] == [result.run_id]
    assert runs[0].data.metrics["test_accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert json.loads(json.dumps(runs[0].data.params))["train.epochs"] == "3"


def test_a_tracking_uri_mlflow_refuses_is_one_clear_error(data, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://somewhere")
    with pytest.raises(ConfigError, match="MLflow cannot log to nosuchscheme://somewhere"):
        train(data, tmp_path, ["mlflow"])


def test_default_mlflow_store_is_sqlite_where_sqlalchemy_is(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "sqlalchemy" else real(name, *a))
    assert default_mlflow_uri(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sqlalchemy" else real(name, *a))
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    assert default_mlflow_uri(tmp_path) == (tmp_path.resolve() / "mlruns").as_uri()
    import os

    assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"  # mlflow-skinny: the file store, allowed for our default
