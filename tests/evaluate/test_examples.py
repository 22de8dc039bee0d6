"""Worst-error examples for the report: most confident wrong first, largest error for regression."""
import numpy as np

from forgeml.evaluate.examples import worst_rows
from forgeml.models.tasks import Task


def test_most_confident_wrong_predictions_come_first():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95], [0.7, 0.3]])
    y_true = np.array([0, 0, 0, 0, 1])
    rows = worst_rows(Task("binary", "bce", 2), y_true, scores, ["no", "yes"], count=3)
    assert [r["row"] for r in rows] == [3, 1, 4]  # confidence 0.95, 0.8, 0.7; the right answer (row 0) is not listed
    assert rows[0] == {"row": 3, "true": "no", "predicted": "yes", "score": "confidence 0.95"}


def test_regression_ranks_by_absolute_error():
    rows = worst_rows(Task("regression", "mse", 1), np.array([1.0, 2.0, 3.0]), np.array([[1.1], [5.0], [2.0]]), None, count=2)
    assert [r["row"] for r in rows] == [1, 2]
