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


def test_evaluate_reports_the_worst_errors_of_the_evaluated_rows(saved_bundle, make_mixed):
    from forgeml import Pipeline

    frame = make_mixed(60, seed=7)
    frame["review"] = [f"{text} row{i}" for i, text in enumerate(frame["review"])]
    frame["label"] = frame["label"].map({"yes": "no", "no": "yes"})  # every confident right answer is now wrong
    pipeline = Pipeline.load(saved_bundle)
    pipeline.evaluate(frame)
    evaluation, examples = pipeline.last_evaluation_, pipeline.last_error_examples_
    entries = examples["texts"]["review"]
    assert examples["where"] == "evaluated data" and len(entries) == examples["count"] == 8
    wrong = evaluation.scores.argmax(axis=1) != evaluation.y_true
    assert entries[0]["score"] == f"confidence {evaluation.scores[wrong].max(axis=1).max():.2f}"  # most confident wrong first
    first = int(entries[0]["text"].rsplit("row", 1)[1])  # the snippet is that row's own text
    assert entries[0]["true"] == frame["label"][first] != entries[0]["predicted"]
    html = pipeline.report(evaluation)
    assert 'id="worst-errors"' in html and "rows of the evaluated data" in html and entries[0]["text"] in html
