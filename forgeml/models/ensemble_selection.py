"""Greedy ensemble selection with replacement (Caruana et al., ICML 2004), on out-of-fold predictions.

Each round adds the member (again, if it helps most) whose addition most lowers the loss of the
running average; weights are the counts divided by the rounds. AutoGluon's weighted ensemble does
the same with 25 rounds ("TabRepo reports that values above 25 lead to no measurable
improvement"). The loss is log loss for classes and mean squared error (in the scaled units the
members predict in) for regression: smooth, proper losses, so the selection does not chase the
noise of a step metric such as accuracy on a few hundred rows.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-7


def selection_loss(task: str, y: np.ndarray, scores: np.ndarray) -> float:
    """Log loss (classes: ``y`` codes, ``scores`` probabilities [N, C]) or mean squared error."""
    if task in ("binary", "multiclass"):
        rows = np.arange(len(y))
        return float(-np.mean(np.log(np.clip(scores[rows, np.asarray(y, dtype=np.int64).ravel()], EPS, 1.0))))
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    return float(np.mean((np.asarray(scores, dtype=np.float64).reshape(len(y), -1) - y) ** 2))


def select_weights(task: str, y: np.ndarray, predictions: list[np.ndarray], rounds: int = 25) -> np.ndarray:
    """Weights (summing to 1) over ``predictions``, the members' out-of-fold scores."""
    if not predictions:
        raise ValueError("no member predictions to ensemble")
    if len(predictions) == 1:
        return np.ones(1)
    counts = np.zeros(len(predictions))
    running = np.zeros_like(predictions[0], dtype=np.float64)
    for step in range(rounds):
        losses = [selection_loss(task, y, (running * step + p) / (step + 1)) for p in predictions]
        best = int(np.argmin(losses))  # ties go to the earlier member: the portfolio's order
        counts[best] += 1
        running = (running * step + predictions[best]) / (step + 1)
    return counts / counts.sum()
