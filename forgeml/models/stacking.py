"""The ensemble's second level (the ``best`` preset): a regularised linear model on the members'
out-of-fold predictions, kept only when it beats the greedy weighted average on held-out folds.

Why: Caruana's weights are one number per member; a stacker can weight a member per class and
learn that one member is right where another is wrong (AutoGluon's ``best_quality`` stacks for
this reason). It can also overfit the out-of-fold predictions, so it must earn its place: both
levels are fitted on K-1 folds of the out-of-fold rows and scored on the fold left out, with the
loss the selection uses (log loss, or MSE in the members' scaled units), and the stacker is kept
only when its mean held-out loss is lower.

Features are the members' log-probabilities (classes) or predictions (regression), side by side;
the model is multinomial logistic regression or ridge, from scikit-learn, stored as two arrays
(``weight``, ``bias``), so predicting needs only numpy and the bundle no pickle.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forgeml.models.ensemble_selection import EPS, select_weights, selection_loss

CHECK_FOLDS = 5
C = 1.0  # logistic regression's inverse L2 strength on log-probabilities (ridge alpha = 1 / C)


@dataclass
class Stacker:
    task: str
    weight: np.ndarray  # [members × outputs each, outputs]
    bias: np.ndarray  # [outputs]

    def scores(self, predictions: list[np.ndarray]) -> np.ndarray:
        z = features(self.task, predictions) @ self.weight + self.bias
        if self.task == "regression":
            return z
        if self.task == "binary" and self.weight.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1 - p, p], axis=1)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def features(task: str, predictions: list[np.ndarray]) -> np.ndarray:
    parts = [np.asarray(p, dtype=np.float64).reshape(len(p), -1) for p in predictions]
    if task in ("binary", "multiclass"):
        parts = [np.log(np.clip(p, EPS, 1.0)) for p in parts]
    return np.concatenate(parts, axis=1)


def fit_stacker(task: str, y: np.ndarray, predictions: list[np.ndarray]) -> Stacker:
    x = features(task, predictions)
    if task == "regression":
        from sklearn.linear_model import Ridge

        y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        model = Ridge(alpha=1.0 / C).fit(x, y2)
        return Stacker(task, np.asarray(model.coef_, dtype=np.float64).reshape(y2.shape[1], -1).T, np.asarray(model.intercept_, dtype=np.float64).ravel())
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(y, dtype=np.int64).ravel()
    model = LogisticRegression(C=C, max_iter=1000).fit(x, labels)
    classes = predictions[0].shape[1]
    if classes == 2:
        return Stacker("binary", model.coef_.T.astype(np.float64), model.intercept_.astype(np.float64))  # one logit: p(class 1)
    weight = np.zeros((x.shape[1], classes))  # a class absent from these rows keeps a zero column and a -30 bias
    bias = np.full(classes, -30.0)
    if len(model.classes_) == 2:  # two classes present: one logit, the first class's fixed at 0
        weight[:, model.classes_[1]], bias[model.classes_[1]], bias[model.classes_[0]] = model.coef_[0], model.intercept_[0], 0.0
    else:
        weight[:, model.classes_] = model.coef_.T
        bias[model.classes_] = model.intercept_
    return Stacker(task, weight, bias)


@dataclass
class LevelChoice:
    stacker: Stacker | None  # None: the weighted average stays
    average_loss: float  # mean held-out-fold loss of each level
    stack_loss: float


def choose_level(task: str, y: np.ndarray, predictions: list[np.ndarray], rounds: int, seed: int) -> LevelChoice:
    """Both levels fitted on K-1 folds of the out-of-fold rows and scored on the fold left out."""
    from sklearn.model_selection import KFold, StratifiedKFold

    labels = np.asarray(y).ravel() if task != "regression" else None
    rows = len(y)
    if rows < 2 * CHECK_FOLDS or len(predictions) < 2:
        return LevelChoice(None, float("nan"), float("nan"))
    splitter = (StratifiedKFold if labels is not None and np.bincount(labels.astype(np.int64)).min(initial=rows) >= CHECK_FOLDS else KFold)(
        CHECK_FOLDS, shuffle=True, random_state=seed)
    average, stacked = [], []
    for fit_rows, held in splitter.split(np.zeros(rows), labels):
        part = [p[fit_rows] for p in predictions]
        weights = select_weights(task, y[fit_rows], part, rounds)
        average.append(selection_loss(task, y[held], sum(w * p[held] for w, p in zip(weights, predictions))))
        stacker = fit_stacker(task, y[fit_rows], part)
        stacked.append(selection_loss(task, y[held], stacker.scores([p[held] for p in predictions])))
    average_loss, stack_loss = float(np.mean(average)), float(np.mean(stacked))
    stacker = fit_stacker(task, y, predictions) if stack_loss < average_loss else None
    return LevelChoice(stacker, average_loss, stack_loss)
