"""Which estimator a config asks for: its family's ``build``/``load`` (``models.families``), wrapped
in k-fold bagging (``models.bagging``) when ``train.bagging_folds`` > 1. Apart from
``estimator.py`` (the interface every family and the bagging wrapper implement), so that the
interface imports no implementation of it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from forgeml.features.featureset import InputSpec
from forgeml.models.bagging import build_bagged, load_bagged
from forgeml.models.estimator import Estimator
from forgeml.models.families import family_module
from forgeml.models.tasks import Task
from forgeml.train.openmp import prefer_passive_wait


def _folds(config: Any) -> int:
    """Resolved by ``workflow.prepare`` (it knows the rows); "auto" left over means no bagging."""
    folds = getattr(config.train, "bagging_folds", 1)
    return folds if isinstance(folds, int) else 1


def build_estimator(config: Any, task: Task, spec: InputSpec) -> Estimator:
    prefer_passive_wait()  # before torch or LightGBM is first imported (forgeml.train.openmp says why)
    family = family_module(config.model.type)
    if _folds(config) > 1:
        return build_bagged(config, task, spec, _folds(config), family.build, family.load,
                            side_by_side=getattr(family, "FOLDS_SIDE_BY_SIDE", False))
    return family.build(config, task, spec)


def load_estimator(directory: Path, config: Any, task: Task, spec: InputSpec) -> Estimator:
    prefer_passive_wait()
    family = family_module(config.model.type)
    load = family.load
    if _folds(config) > 1:
        return load_bagged(directory, config, task, spec, _folds(config), load, side_by_side=getattr(family, "FOLDS_SIDE_BY_SIDE", False))
    return load(directory, config, task, spec)
