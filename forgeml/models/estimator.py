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


@dataclass
class FitSummary:
    history: list[dict[str, Any]]
    best_epoch: int
    best_value: float | None
    stopped_early: bool
    seconds: float
    privacy: dict[str, Any] | None = None  # a private network's ε spent, δ and how (forgeml.train.privacy)


class Estimator(Protocol):
    files: tuple[str, ...]

    def fit(self, train: dict[str, np.ndarray], y_train: np.ndarray, val: dict[str, np.ndarray] | None, y_val: np.ndarray | None, options: FitOptions) -> FitSummary: ...

    def scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray: ...

    def save(self, directory: Path) -> list[str]: ...

    def feature_importance(self) -> dict[str, float] | None: ...


def _folds(config: Any) -> int:
    """Resolved by ``workflow.prepare`` (it knows the rows); "auto" left over means no bagging."""
    folds = getattr(config.train, "bagging_folds", 1)
    return folds if isinstance(folds, int) else 1


def build_estimator(config: Any, task: Task, spec: InputSpec) -> Estimator:
    from forgeml.models.families import family_module

    family = family_module(config.model.type)
    if _folds(config) > 1:
        from forgeml.models.bagging import build_bagged

        return build_bagged(config, task, spec, _folds(config), family.build, family.load)
    return family.build(config, task, spec)


def load_estimator(directory: Path, config: Any, task: Task, spec: InputSpec) -> Estimator:
    from forgeml.models.families import family_module

    load = family_module(config.model.type).load
    if _folds(config) > 1:
        from forgeml.models.bagging import load_bagged

        return load_bagged(directory, config, task, spec, _folds(config), load)
    return load(directory, config, task, spec)
