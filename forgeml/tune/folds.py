"""Out-of-fold trial scores, and the untuned default as the study's first trial.

Scored on one validation split, 50 trials of the MLP beat the untuned default on 0 of 3 small
sets (bench/RESULTS.md, "Tuning"): with 41–64 validation rows many configurations reach a loss
near 0 and the search picks the luckiest, while the default it is compared with is a 5-fold bag
whose members each early-stop on their own fold. So on small data a trial is scored the way the
ensemble scores its members: k folds over every non-test row (train and validation together),
each fold early-stopped on the rows it did not see, the trial's loss the mean of the k held-out
losses. The test split is never read. Above ``OOF_MAX_ROWS`` one split is enough and k fits would
cost too much.

And the default configuration (the options the config already has) is the study's first trial:
AutoGluon's searches start from the default for the same reason — a search that never tried it
can return something worse than not searching.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from forgeml.tune.space import Choice, Dimension, Float, Int

OOF_FOLDS = 5
OOF_MAX_ROWS = 5_000  # train + validation rows up to which trials are scored out of fold


def trial_folds(setting: int | str, rows: int) -> int:
    """``auto`` → OOF_FOLDS up to OOF_MAX_ROWS rows, else 1 (the validation split); never more folds than rows allow."""
    folds = (OOF_FOLDS if rows <= OOF_MAX_ROWS else 1) if setting == "auto" else int(setting)
    return max(1, min(folds, rows // 2))


def scoring_words(folds: int, rows: int) -> str:
    """How the study's trials are scored, kept with the study (a resumed study must score alike)."""
    return f"{folds}-fold out-of-fold loss over {rows} rows" if folds > 1 else "loss on the validation split"


def pooled(prepared: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Train and validation arrays and targets, one after the other (the test split left out)."""
    arrays = {key: np.concatenate([value, prepared.arrays["validation"][key]]) for key, value in prepared.arrays["train"].items()}
    return arrays, np.concatenate([prepared.targets["train"], prepared.targets["validation"]])


def out_of_fold(fit_fold: Callable[[dict, np.ndarray, dict, np.ndarray, int], float], arrays: dict[str, np.ndarray], targets: np.ndarray,
                folds: int, seed: int, classes: bool, after_fold: Callable[[int, float], None] | None = None) -> float:
    """Mean held-out loss of ``fit_fold(train, y, held, y_held, fold)`` over ``folds`` stratified folds;
    ``after_fold(fold, mean so far)`` after each (the pruner's look: it may raise to stop the trial)."""
    from forgeml.models.bagging import fold_indices

    labels = targets.reshape(len(targets), -1)[:, 0] if classes else None
    losses = []
    for fold, (fit_rows, held_rows) in enumerate(fold_indices(len(targets), folds, seed, labels), start=1):
        losses.append(fit_fold({k: v[fit_rows] for k, v in arrays.items()}, targets[fit_rows],
                               {k: v[held_rows] for k, v in arrays.items()}, targets[held_rows], fold))
        if after_fold is not None:
            after_fold(fold, float(np.mean(losses)))
    return float(np.mean(losses))


def config_value(config: Any, dotted: str) -> Any:
    node = config
    for part in dotted.split("."):
        node = getattr(node, part, None)
        if node is None:
            return None
    return node


def _inside(dim: Dimension, value: Any) -> bool:
    if isinstance(dim, Choice):
        return value in dim.values
    if isinstance(dim, (Int, Float)) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return dim.low <= value <= dim.high and (not isinstance(dim, Int) or float(value).is_integer())
    return False


def default_point(config: Any, space: dict[str, Dimension]) -> dict[str, Any]:
    """The config's own values of the searched options, where the space holds them (an option
    whose default lies outside its range is left to the sampler)."""
    point = {}
    for key, dim in space.items():
        value = config_value(config, key)
        if _inside(dim, value):
            point[key] = value
    return point
