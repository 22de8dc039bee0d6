"""Optional experiment trackers: ``forgeml train --log tensorboard|mlflow``.

Each logger is a trainer callback (``on_epoch_end(row)`` per epoch) plus ``finish(metrics)`` at
the end of the run; each needs its own extra (``pip install 'forgeml[tensorboard]'`` / ``'forgeml[mlflow]'``),
imported only when asked for. The run folder stays the source of truth: trackers get a copy.
- tensorboard: event files in ``runs/<id>/tensorboard/`` (``tensorboard --logdir runs``).
- mlflow: one MLflow run named after the forgeml run, in ``$MLFLOW_TRACKING_URI`` or, by default,
  the SQLite database ``runs/mlflow.db`` (``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``):
  MLflow 3 refuses its old file store unless told otherwise, so that is only the fallback where
  SQLAlchemy is missing (``mlflow-skinny``). Params are the flattened config, metrics the epoch
  rows and the held-out metrics.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable

from forgeml.errors import ConfigError


def _scalars(row: dict[str, Any]) -> dict[str, float]:
    """The row's finite numbers; a bagged member's rows (``"fold": k``) go under ``fold<k>/``."""
    prefix = f"fold{row['fold']}/" if "fold" in row else ""
    return {prefix + k: float(v) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and k not in ("epoch", "fold")}


def _require(name: str) -> Any:
    """The tracker's package (the extra is named after the tracker), or one line saying what to install."""
    from forgeml.extras import import_optional

    return import_optional(name, name, needed_by=f"--log {name}")


class TensorBoardLog:
    def __init__(self, record: Any, config: Any):
        _require("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(record.dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + config.to_yaml() + "\n```")

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        for key, value in _scalars(row).items():
            self.writer.add_scalar(key, value, int(row.get("epoch", 0)))
        self.writer.flush()

    def finish(self, metrics: dict[str, Any]) -> None:
        for key, value in _scalars(metrics).items():
            self.writer.add_scalar(f"test/{key}", value, 0)
        self.writer.close()


class MLflowLog:
    def __init__(self, record: Any, config: Any):
        self.mlflow = _require("mlflow")
        from forgeml.runs.views import flatten

        from mlflow.exceptions import MlflowException

        uri = os.environ.get("MLFLOW_TRACKING_URI") or default_mlflow_uri(record.dir.parent)
        try:
            self.mlflow.set_tracking_uri(uri)
            self.mlflow.set_experiment("forgeml")
            self.run = self.mlflow.start_run(run_name=record.id)
        except MlflowException as exc:
            first = str(exc.message if hasattr(exc, "message") else exc).split(". ")[0]
            raise ConfigError(f"MLflow cannot log to {uri}: {first}", where="--log mlflow",
                              hint="set MLFLOW_TRACKING_URI to a database (sqlite:///mlflow.db) or a tracking server, or leave it unset") from None
        params = {k: str(v)[:250] for k, v in flatten(config.model_dump(mode="json")).items()}
        self.mlflow.log_params(dict(list(params.items())[:100]))  # MLflow caps one call at 100 params

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        self.mlflow.log_metrics(_scalars(row), step=int(row.get("epoch", 0)))

    def finish(self, metrics: dict[str, Any]) -> None:
        self.mlflow.log_metrics({f"test_{k}": v for k, v in _scalars(metrics).items()})
        self.mlflow.end_run()


def default_mlflow_uri(runs_dir: Any) -> str:
    """``sqlite:///<runs>/mlflow.db`` where SQLAlchemy is installed (it comes with ``pip install
    mlflow``), else the file store ``<runs>/mlruns``, which MLflow 3 accepts only with
    ``MLFLOW_ALLOW_FILE_STORE`` (set here for this process: it is our default, not the user's)."""
    import importlib.util
    from pathlib import Path

    runs_dir = Path(runs_dir).resolve()
    if importlib.util.find_spec("sqlalchemy") is not None:
        return f"sqlite:///{runs_dir / 'mlflow.db'}"
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return (runs_dir / "mlruns").as_uri()


LOGGERS: dict[str, Callable[[Any, Any], Any]] = {"tensorboard": TensorBoardLog, "mlflow": MLflowLog}


def check_loggers(names: list[str] | tuple[str, ...]) -> None:
    """Unknown names and missing packages fail here, before a run folder is created."""
    from forgeml.extras import require_extra

    for name in names:
        if name not in LOGGERS:
            raise ConfigError(f"unknown --log {name!r}", where="--log", hint=f"use one of {sorted(LOGGERS)}")
        require_extra(name, needed_by=f"--log {name}")


def build_loggers(names: list[str] | tuple[str, ...], record: Any, config: Any) -> list[Any]:
    check_loggers(names)
    return [LOGGERS[name](record, config) for name in dict.fromkeys(names)]
