"""Estimators: a model family behind one interface, so bundles, predictor and report never care
whether a torch network or a LightGBM booster made the predictions.

``fit`` trains on arrays from ``FeatureSet.transform``; ``scores`` returns class probabilities
[N, C] or regression values in training units [N, T]; ``save``/``load`` use only safetensors or
LightGBM's text format (no pickle).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from forgeml.features.featureset import InputSpec
from forgeml.models.tasks import Task


@dataclass
class FitOptions:
    """Run plumbing an estimator may use: where to checkpoint, whom to tell, how to distribute."""

    checkpoint_dir: Path | None = None
    callbacks: list[Any] = field(default_factory=list)
    dist: Any = None
    resume: bool = False
    val_metrics: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = None
    monitor_direction: str = "min"
    # time.monotonic() value past which the estimator stops at its next epoch or boosting round
    # and keeps its best state so far (the ensemble's time budget); None: no limit
    deadline: float | None = None
    label: str = ""  # shown in front of progress bars: which member / fold of a bag or ensemble this fit is
    # A bag whose first fold shows that its folds cannot end by the deadline gives up (MemberOutOfTime)
    # instead of overrunning it: the ensemble then lists the member as skipped.
    abandon_when_late: bool = False
    # Knowledge distillation (forgeml.compress.distill): y_train/y_val are a teacher's class
    # probabilities [N, C] instead of class codes (regression: its values); networks soften both
    # sides by ``temperature``, a GBM learns the probabilities as weighted rows.
    soft_targets: bool = False
    temperature: float = 1.0


@dataclass
class FitSummary:
    history: list[dict[str, Any]]
    best_epoch: int
    best_value: float | None
    stopped_early: bool
    seconds: float
    privacy: dict[str, Any] | None = None  # a private network's ε spent, δ and how (forgeml.train.privacy)
    note: str | None = None  # what the time budget changed (a solve it stopped), for the ensemble's leaderboard


class Estimator(Protocol):
    files: tuple[str, ...]

    def fit(self, train: dict[str, np.ndarray], y_train: np.ndarray, val: dict[str, np.ndarray] | None, y_val: np.ndarray | None, options: FitOptions) -> FitSummary: ...

    def scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray: ...

    def save(self, directory: Path) -> list[str]: ...

    def feature_importance(self) -> dict[str, float] | None: ...
