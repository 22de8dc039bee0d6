"""Evaluation metrics for one split, as plain JSON-ready python values.

Every number comes from scikit-learn so results match what users would compute themselves;
this module only decides *which* metrics a task reports, copes with the awkward splits real
data produces (a class missing from the test rows, a target that is zero) and converts numpy
scalars to python so the dict can be written to ``metrics.json`` and rendered directly.

Tasks are a registry (``_TASKS``): adding one is one function plus one entry.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Literal

import numpy as np

from forgeml.errors import ConfigError
from forgeml.evaluate.directions import base_name, better
from forgeml.fileio import to_plain

#: The metric a run is judged by (early stopping, model selection, the report's headline).
HEADLINE: dict[str, str] = {"binary": "f1_macro", "multiclass": "f1_macro", "regression": "r2"}

_CLASSIFICATION_METRICS = (
    "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
    "f1_weighted", "log_loss", "roc_auc", "pr_auc",
)
_REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
_KNOWN: dict[str, tuple[str, ...]] = {
    # "loss" is the training objective itself, tracked in history and usable for early stopping.
    "binary": ("loss", *_CLASSIFICATION_METRICS),
    "multiclass": ("loss", *_CLASSIFICATION_METRICS),
    "regression": ("loss", *_REGRESSION_METRICS),
}

# Rows whose true value is this close to zero are left out of MAPE: the ratio explodes there.
_MAPE_EPS = 1e-8


def known_metrics(task: str | None = None) -> list[str]:
    """Metric names ``task`` can report (every task's when ``task`` is None), for validation."""
    if task is None:
        return sorted({name for names in _KNOWN.values() for name in names})
    _check_task(task)
    return list(_KNOWN[task])


def metric_direction(name: str) -> Literal["max", "min"]:
    """Whether a larger (``"max"``) or smaller (``"min"``) value of metric ``name`` is better.

    A split prefix (``val_f1_macro``, ``train_loss``) is accepted so history keys can be passed
    as they are. Raises ``ConfigError`` for a name no task reports, listing the known ones.
    """
    direction = better(name)  # the one table (evaluate.directions); here an unknown name is an error
    if direction is None or "." in name or base_name(name) not in known_metrics():
        raise ConfigError(
            f"unknown metric {name!r}",
            hint=f"choose one of: {', '.join(known_metrics())}",
        )
    return direction


def compute_metrics(
    task: str,
    y_true: np.ndarray,
    *,
    y_pred: np.ndarray | None = None,
    y_proba: np.ndarray | None = None,
    class_names: list[str] | None = None,
    target_names: list[str] | None = None,
) -> dict[str, Any]:
    """All metrics of ``task`` for one split.

    Classification (``"binary"``, ``"multiclass"``): ``y_true`` holds int class codes ``[N]``,
    ``y_proba`` probabilities ``[N, C]`` (binary: column 1 is the positive class). ``y_pred``
    defaults to the arg-max of ``y_proba``. Probability metrics are None without ``y_proba``,
    and ROC/PR AUC are None when ``y_true`` holds a single class (undefined, not an error).

    Regression: ``y_true`` and ``y_pred`` are floats ``[N]`` or ``[N, T]``; scalar metrics are
    averaged over targets and ``per_target`` is added when ``T > 1``. MAPE is a fraction (0.1 =
    10 %), not a percentage, as in scikit-learn.
    """
    _check_task(task)
    return _TASKS[task](
        np.asarray(y_true), y_pred=y_pred, y_proba=y_proba,
        class_names=class_names, target_names=target_names,
    )


# ----------------------------------------------------------------------------- classification
def _classification(
    y_true: np.ndarray,
    *,
    y_pred: np.ndarray | None,
    y_proba: np.ndarray | None,
    class_names: list[str] | None,
    target_names: list[str] | None = None,
) -> dict[str, Any]:
    from sklearn import metrics as skm

    y_true = y_true.astype(np.int64).reshape(-1)
    proba = None if y_proba is None else np.asarray(y_proba, dtype=np.float64)
    if proba is not None and proba.ndim == 1:  # a bare positive-class probability
        proba = np.column_stack([1.0 - proba, proba])
    if y_pred is None:
        if proba is None:
            raise ValueError("classification metrics need y_pred or y_proba")
        y_pred = proba.argmax(axis=1)
    y_pred = np.asarray(y_pred).astype(np.int64).reshape(-1)
    n_classes = _n_classes(y_true, y_pred, proba, class_names)
    labels = list(range(n_classes))
    names = list(class_names) if class_names is not None else [str(c) for c in labels]

    with warnings.catch_warnings():
        # A class absent from this split is expected on small data; the numbers stay defined
        # (zero_division=0, our own AUC handling), so sklearn's warnings would only be noise.
        warnings.simplefilter("ignore")
        precision, recall, f1, support = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, zero_division=0
        )
        result: dict[str, Any] = {
            "accuracy": skm.accuracy_score(y_true, y_pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
            # Macro averages cover the classes present in y_true or y_pred (sklearn's default),
            # so a class that is absent from a split entirely does not count as a zero.
            "precision_macro": skm.precision_score(y_true, y_pred, average="macro", zero_division=0),
            "recall_macro": skm.recall_score(y_true, y_pred, average="macro", zero_division=0),
            "f1_macro": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
            "f1_weighted": skm.f1_score(y_true, y_pred, average="weighted", zero_division=0),
            "log_loss": None if proba is None else skm.log_loss(y_true, proba, labels=labels),
            "roc_auc": None if proba is None else _ovr_average(skm.roc_auc_score, y_true, proba),
            "pr_auc": None if proba is None else _ovr_average(skm.average_precision_score, y_true, proba),
            "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
            "per_class": {
                names[c]: {"precision": precision[c], "recall": recall[c], "f1": f1[c], "support": support[c]}
                for c in labels
            },
            "n": int(y_true.shape[0]),
        }
    return to_plain(result)


def _n_classes(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, class_names: list[str] | None
) -> int:
    """The class count, from the most authoritative source given (probabilities, then names)."""
    if proba is not None:
        return int(proba.shape[1])
    if class_names is not None:
        return len(class_names)
    observed = [int(y_true.max(initial=-1)), int(y_pred.max(initial=-1))]
    return max(2, max(observed) + 1)


def _ovr_average(
    score: Callable[..., float], y_true: np.ndarray, proba: np.ndarray
) -> float | None:
    """One-vs-rest ``score`` macro-averaged over the classes present in ``y_true``.

    Binary reduces to the positive class alone. sklearn's own multiclass ROC AUC refuses
    splits where a class is missing, which a small test split often is; scoring each present
    class separately gives the same number when all are present and a defined one otherwise.
    """
    present = np.unique(y_true)
    if present.size < 2:
        return None
    if proba.shape[1] == 2:
        return float(score(y_true == 1, proba[:, 1]))
    return float(np.mean([score(y_true == c, proba[:, c]) for c in present]))


# ----------------------------------------------------------------------------- regression
def _regression(
    y_true: np.ndarray,
    *,
    y_pred: np.ndarray | None,
    y_proba: np.ndarray | None = None,
    class_names: list[str] | None = None,
    target_names: list[str] | None,
) -> dict[str, Any]:
    if y_pred is None:
        raise ValueError("regression metrics need y_pred")
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    # Shapes: (N,) -> (N, 1) so one code path serves single and multi-target regression.
    true_2d = y_true.reshape(y_true.shape[0], -1)
    pred_2d = y_pred.reshape(y_pred.shape[0], -1)
    if true_2d.shape != pred_2d.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    n_targets = true_2d.shape[1]
    names = list(target_names) if target_names is not None else [f"target_{t}" for t in range(n_targets)]
    per_target = {
        names[t]: _regression_one(true_2d[:, t], pred_2d[:, t]) for t in range(n_targets)
    }
    result: dict[str, Any] = {
        name: _mean_defined([scores[name] for scores in per_target.values()])
        for name in _REGRESSION_METRICS
    }
    result["n"] = int(true_2d.shape[0])
    if n_targets > 1:
        result["per_target"] = per_target
    return to_plain(result)


def _regression_one(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    from sklearn import metrics as skm

    keep = np.abs(y_true) >= _MAPE_EPS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # r2 on a single row warns and returns nan -> None
        scores = {
            "mae": skm.mean_absolute_error(y_true, y_pred),
            "rmse": math.sqrt(skm.mean_squared_error(y_true, y_pred)),
            "r2": skm.r2_score(y_true, y_pred),
            "mape": skm.mean_absolute_percentage_error(y_true[keep], y_pred[keep]) if keep.any() else None,
        }
    return to_plain(scores)


def _mean_defined(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


# ----------------------------------------------------------------------------- helpers
_TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "binary": _classification,
    "multiclass": _classification,
    "regression": _regression,
}


def _check_task(task: str) -> None:
    if task not in _TASKS:
        raise ConfigError(f"unknown task {task!r}", hint=f"choose one of: {', '.join(_TASKS)}")


