"""One trial: the family's options drawn from its space, a model fitted on the prepared train
split and scored on the validation split — or, on small data, out of fold over train and
validation together (``forgeml.tune.folds``) — the same rows for every trial and every worker (the
split is seeded, and the study refuses data whose validation split differs), the test split never
read — with intermediate validation losses fed to the pruner as they come (an epoch of a network,
a boosting round of LightGBM or CatBoost).

What a trial can be scored on is a registry (``OBJECTIVES``): the validation loss (the quantity
early stopping and the pruner watch, so TPE, the pruner and early stopping agree), single-row
predict latency and the parameter count; the last two only as second objectives for a Pareto front.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import numpy as np

from forgeml.tune.space import Space, sample
from forgeml.tune.storage import worker_id

# Every trial is one plain fit: k-fold bagging would multiply a trial's cost by k and give the
# pruner k interleaved curves. The refit of the best trial uses the config's own bagging.
TRIAL_OVERRIDES = {"train.bagging_folds": 1, "train.progress": False}


def input_kinds(spec: Any) -> set[str]:
    """The input kinds a space's ``when`` refers to."""
    return ({"text"} if spec.tokens else set()) | ({"image"} if spec.images else set())


def validation_loss(summary: Any, estimator: Any, prepared: Any) -> float:
    """The validation loss of the kept model (its best epoch or round)."""
    history = summary.history
    if history and 0 < summary.best_epoch <= len(history) and history[summary.best_epoch - 1].get("val_loss") is not None:
        return float(history[summary.best_epoch - 1]["val_loss"])
    if summary.best_value is not None:
        return float(summary.best_value)
    raise ValueError("the fit reported no validation loss")


def latency_ms(summary: Any, estimator: Any, prepared: Any) -> float:
    """Single-row predict time (best of 7), as a served model answers one request."""
    one = {key: value[:1] for key, value in prepared.arrays["validation"].items()}
    estimator.scores(one)  # warm-up: lazy caches, first-call allocations
    best = float("inf")
    for _ in range(7):
        started = time.perf_counter()
        estimator.scores(one)
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _torch_parameters(estimator: Any) -> int:
    return int(sum(p.numel() for p in estimator.model.parameters()))


def _lightgbm_leaves(estimator: Any) -> int:
    # a tree of n leaves holds 2n - 1 numbers worth counting (thresholds and leaf values)
    leaves = sum(int(line[len("num_leaves="):]) for booster in estimator.boosters
                 for line in booster.model_to_string(num_iteration=booster.best_iteration or None).splitlines() if line.startswith("num_leaves="))
    return 2 * leaves


def _catboost_leaves(estimator: Any) -> int:
    return int(sum(model.tree_count_ * 2 ** model.get_param("depth") for model in estimator.models))


def _linear_weights(estimator: Any) -> int:
    return int(estimator.weight.size + estimator.bias.size)


# estimator class → its parameter count: what "params" means per family
PARAMETER_COUNTERS: dict[str, Callable[[Any], int]] = {
    "TorchEstimator": _torch_parameters,
    "GBMEstimator": _lightgbm_leaves,
    "CatBoostEstimator": _catboost_leaves,
    "LinearEstimator": _linear_weights,
}


def parameter_count(summary: Any, estimator: Any, prepared: Any) -> float:
    return float(PARAMETER_COUNTERS[type(estimator).__name__](estimator))


# name → (direction, how a fitted trial is scored); the first objective is always "loss"
OBJECTIVES: dict[str, tuple[str, Callable[[Any, Any, Any], float]]] = {
    "loss": ("minimize", validation_loss),
    "latency": ("minimize", latency_ms),
    "params": ("minimize", parameter_count),
}


class _Pruned(Exception):
    """Raised inside a fit's callback to stop it; turned into Optuna's TrialPruned outside (a
    library between the callback and the trial, CatBoost's C++ loop, may wrap the exception)."""


class PruningReporter:
    """A run callback (``on_epoch_end``, as the Trainer and the GBM callbacks call it): each
    validation loss goes to the trial; when the pruner says so, the fit is stopped."""

    def __init__(self, trial: Any, enabled: bool, every: int = 1):
        self.trial, self.enabled, self.every = trial, enabled, every
        self.pruned_at: int | None = None
        self.last_step = 0

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        value = row.get("val_loss")
        step = int(row["epoch"])
        # a report and the pruner's look at the other trials cost 3 ms (journal file) to 17 ms
        # (SQLite) here, as much as 30 boosting rounds of a small table: every ``every`` steps
        if not self.enabled or value is None or not np.isfinite(value) or step - self.last_step < self.every:
            return
        self.last_step = step
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            self.pruned_at = step
            raise _Pruned(step)


@dataclasses.dataclass
class TrialObjective:
    """Optuna's objective: ``objective(trial) -> value(s)``. ``deadline`` (``time.monotonic()``)
    is the time budget's end: a fit still running then stops and the trial counts as pruned (its
    score is not comparable), so a budget too small for one trial ends with no finished trial."""

    prepared: Any  # workflow.Prepared, with a validation split
    space: Space
    objectives: tuple[str, ...]
    deadline: float | None
    step_name: str
    echo: Callable[[str], None]
    report_every: int = 1  # steps between two reports to the pruner
    prunable: bool = True  # a family whose fit is one step (linear: one alpha) has nothing to prune
    # > 1: scored out of fold over train + validation (``forgeml.tune.folds``), the value the
    # folds' mean; the pruner then sees the running mean after each fold (its steps are folds),
    # not a fold's epochs: see ``fold_pruning``
    folds: int = 1

    def __call__(self, trial: Any) -> float | list[float]:
        import optuna

        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # kept with the trial (Optuna keeps no reason): the table and the final error say why
            first = (str(exc).strip().splitlines() or [""])[0]
            trial.set_user_attr("failure", f"{type(exc).__name__}: {first}"[:300])
            raise

    def _run(self, trial: Any) -> float | list[float]:
        import optuna

        from forgeml.config import apply_overrides
        from forgeml.models.build import build_estimator
        from forgeml.models.estimator import FitOptions
        from forgeml.workflow import val_metrics_fn

        trial.set_user_attr("worker", worker_id())
        overrides = sample(trial, self.space)
        config = apply_overrides(self.prepared.config, {**overrides, **TRIAL_OVERRIDES})
        prepared = dataclasses.replace(self.prepared, config=config)
        metrics_fn, direction = val_metrics_fn(config, prepared.task)
        single = len(self.objectives) == 1  # Optuna prunes single-objective studies only
        reporter = PruningReporter(trial, enabled=self.prunable and single and self.folds == 1, every=self.report_every)
        fitted: dict[str, Any] = {}

        def fit(train: dict, y_train: np.ndarray, held: dict, y_held: np.ndarray, fold: int) -> float:
            """One fit (one fold of an out-of-fold score, seeded as the bag's k-th member is); its validation loss."""
            from forgeml.models.bagging import member_config

            estimator = build_estimator(member_config(config, fold - 1), prepared.task, prepared.featureset.input_spec())
            options = FitOptions(callbacks=[reporter], val_metrics=metrics_fn, monitor_direction=direction,
                                 deadline=self.deadline, label=f"trial {trial.number}" + (f" fold {fold}/{self.folds}" if self.folds > 1 else ""))
            try:
                summary = estimator.fit(train, y_train, held, y_held, options)
            except Exception:
                if reporter.pruned_at is None:
                    raise
                summary = None
            if reporter.pruned_at is not None:
                trial.set_user_attr("pruned_at", reporter.pruned_at)
                raise optuna.TrialPruned(f"pruned at {self.step_name} {reporter.pruned_at}")
            if self.deadline is not None and time.monotonic() >= self.deadline:
                trial.set_user_attr("cut_by_budget", True)
                raise optuna.TrialPruned(f"stopped by the time budget at {self.step_name} {len(summary.history)}")
            fitted.update(summary=summary, estimator=estimator, seconds=fitted.get("seconds", 0.0) + float(summary.seconds))
            return validation_loss(summary, estimator, prepared)

        if self.folds > 1:
            from forgeml.tune.folds import out_of_fold, pooled

            arrays, targets = pooled(prepared)
            after = fold_pruning(trial) if single and self.prunable else None
            loss = out_of_fold(fit, arrays, targets, self.folds, config.train.seed, prepared.task.is_classification, after_fold=after)
        else:
            loss = fit(prepared.arrays["train"], prepared.targets["train"], prepared.arrays["validation"], prepared.targets["validation"], 1)
        summary, estimator = fitted["summary"], fitted["estimator"]
        trial.set_user_attr("best_step", int(summary.best_epoch))
        trial.set_user_attr("fit_seconds", round(fitted["seconds"], 3))
        values = [loss if name == "loss" else OBJECTIVES[name][1](summary, estimator, prepared) for name in self.objectives]
        if not all(np.isfinite(values)):
            raise FloatingPointError(f"the trial's {self.objectives[0]} is not finite (diverged)")
        return values[0] if len(values) == 1 else values


def fold_pruning(trial: Any) -> Callable[[int, float], None]:
    """Out-of-fold trials are pruned between folds, on the mean held-out loss of the folds done.

    Fed a fold's epochs instead, the pruner judged a trial by its first fold's loss at epoch 6, 18,
    54 against other trials' at the same epoch: a configuration that learns slowly (a lower rate,
    more dropout: what small data often needs) looked worse there than one that overfits fast, and
    was cut before its early stop; and one fold's loss mid-training is not the quantity TPE ranks.
    Between folds the value is the finished folds' mean held-out loss at the best epoch — the trial
    score itself, on fewer rows — and every trial has the same folds, so the comparison is paired.
    """
    import optuna

    def after_fold(fold: int, mean_loss: float) -> None:
        if not np.isfinite(mean_loss):
            return
        trial.report(float(mean_loss), fold)
        if trial.should_prune():
            trial.set_user_attr("pruned_at", fold)
            raise optuna.TrialPruned(f"pruned after fold {fold}")

    return after_fold
