"""The per-epoch validation metrics are plain numpy; they must equal scikit-learn's."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score

from forgeml.workflow import _classification_metrics, _regression_metrics


@pytest.mark.parametrize("seed", range(6))
def test_classification_metrics_equal_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = int(rng.integers(2, 7))
    y_true = rng.integers(0, classes - (seed % 2), size=int(rng.integers(1, 60)))  # odd seeds: a class never true
    scores = rng.normal(size=(len(y_true), classes))
    scores[np.arange(len(y_true)), y_true] += 2 * rng.random(len(y_true))  # mostly right, not always
    got = _classification_metrics(y_true, scores)
    y_pred = scores.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert got["f1_macro"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))


@pytest.mark.parametrize("outputs", [1, 3])
def test_regression_metrics_equal_scikit_learn(outputs: int) -> None:
    rng = np.random.default_rng(outputs)
    y_true = rng.normal(size=(40, outputs))
    y_pred = y_true + rng.normal(0, 0.5, size=(40, outputs))
    got = _regression_metrics(y_true.squeeze(), y_pred.squeeze())
    assert got["r2"] == pytest.approx(r2_score(y_true, y_pred))
    assert got["mae"] == pytest.approx(mean_absolute_error(y_true, y_pred))
    constant = np.ones(10)
    assert _regression_metrics(constant, constant)["r2"] == r2_score(constant, constant) == 1.0
    assert _regression_metrics(constant, constant + 1)["r2"] == r2_score(constant, constant + 1) == 0.0
