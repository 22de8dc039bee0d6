"""CatBoost (gradient-boosted oblivious trees) behind the same estimator interface as the others.

Why a second GBDT beside LightGBM: CatBoost encodes categories itself with ordered target
statistics (each row's category value is replaced by the target mean of the rows *before* it in a
random order, so no row sees its own label), which is why its defaults rank first among GBDTs in
recent tabular benchmarks (Prokhorenkova et al., 2018, "CatBoost: unbiased boosting with
categorical features"). So forgeml's category codes go in as CatBoost categorical features, never
as numbers. Dense columns (scaled numbers, date parts, one-hot categories) go in as they are.
Text token arrays and images are refused with one line naming the column: a silently dropped
column would be listed in the model card while the model never read it.

Early stopping on the validation split (``early_stopping_rounds``, CatBoost's ``od_wait``, and
``train.early_stopping_min_delta``) keeps the best tree count; a ``deadline`` in the fit options (``time.monotonic()``) stops boosting early
and keeps the best trees so far. Saved in CatBoost's own ``.cbm`` format (no pickle).

catboost is an optional extra (``pip install 'forgeml[catboost]'``): its wheel installs ~270 MB
(plus plotly, ~64 MB), against LightGBM's 10 MB. This module's top level imports only pydantic
and numpy, since it is imported whenever a config is read.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from forgeml.config_base import StrictModel as _Strict
from forgeml.errors import BundleError, ConfigError
from forgeml.models.gbm import rounds_between_rows
from forgeml.models.tabular import refuse_unread_inputs
from forgeml.tune.space import Float, Int

if TYPE_CHECKING:
    from forgeml.features.featureset import InputSpec
    from forgeml.models.estimator import FitOptions, FitSummary
    from forgeml.models.tasks import Task

STEP_NAME = "boosting round"
REFITS = True  # the ensemble may refit it once on all rows with its folds' mean rounds (models/refit.py)
STEP_LIMIT = "model.iterations"  # the option bounding its steps: tuning's pruner starts judging after 1/30 of it
NUMBERS = "unclipped"  # trees split on order: clipping a tail only merges its values (clean.outliers: auto)
# Up to this many rows, predict builds a small object array (0.2 ms a row) instead of a DataFrame
# (1.4 ms): CatBoost reads both the same way (a code is hashed from its integer's text either way).
SMALL_ROWS = 64


class CatBoostConfig(_Strict):
    type: Literal["catboost"] = "catboost"
    iterations: int = Field(1000, ge=1, description="Upper bound on trees; early stopping on validation picks the number.")
    learning_rate: float | None = Field(None, gt=0, description="null: CatBoost chooses one from the data size and iterations.")
    depth: int = Field(6, ge=1, le=16, description="Depth of every (symmetric) tree.")
    l2_leaf_reg: float = Field(3.0, ge=0, description="L2 penalty on leaf values.")
    early_stopping_rounds: int = Field(
        50, ge=1, description="Trees without a better validation loss before stopping (CatBoost's od_wait); the best tree count is kept.")

    # `forgeml tune --model catboost`: depth first (CatBoost's trees are symmetric, so depth is its
    # capacity), then the rate and the leaf penalty; iterations stay an upper bound
    search_space: ClassVar[dict] = {
        "model.depth": Int(3, 10),
        "model.learning_rate": Float(0.01, 0.3, log=True),
        "model.l2_leaf_reg": Float(1.0, 30.0, log=True),
    }


def import_catboost() -> Any:
    """The ``catboost`` module, or one line saying how to install it."""
    try:
        import catboost
    except ImportError:
        raise ConfigError("model type catboost needs the catboost package", where="model.type: catboost",
                          hint="pip install 'forgeml[catboost]'") from None
    return catboost


def _loss(task: Task, targets: int) -> tuple[str, str | None]:
    """CatBoost's loss function and the prediction type that gives forgeml's scores."""
    if task.is_classification:
        return ("Logloss" if task.name == "binary" else "MultiClass"), "Probability"
    if task.loss == "poisson":
        return "Poisson", "Exponent"
    if task.loss == "huber":
        return "Huber:delta=1.0", None  # torch's HuberLoss default, on standardised targets
    return ("MultiRMSE" if targets > 1 else "RMSE"), None


class CatBoostEstimator:
    def __init__(self, config: Any, task: Task, spec: InputSpec, models: list | None = None):
        refuse_unread_inputs(spec, "catboost")
        self.config, self.task, self.spec = config, task, spec
        self.models = models or []
        self.columns = list(spec.dense_columns) + [name for name, *_ in spec.codes]
        self.categorical = list(range(spec.dense_width, len(self.columns)))

    @property
    def _n_models(self) -> int:
        # one MultiRMSE model fits every target at once; Huber and Poisson are single-target in CatBoost
        several = self.task.name == "regression" and self.task.loss != "mse"
        return self.task.n_targets if several else 1

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f"catboost_model_{i}.cbm" for i in range(self._n_models))

    def _data(self, arrays: dict[str, np.ndarray]) -> Any:
        """What CatBoost reads: numbers as floats, codes as integers (categorical features)."""
        dense = arrays["dense"].astype(np.float32)
        if not self.categorical:
            return dense
        codes = arrays["codes"].astype(np.int64)
        if len(dense) <= SMALL_ROWS:
            return np.concatenate([dense.astype(object), codes.astype(object)], axis=1)
        import pandas as pd

        frame = pd.DataFrame(dense, columns=[f"f{i}" for i in range(dense.shape[1])])
        for j in range(codes.shape[1]):
            frame[f"f{dense.shape[1] + j}"] = codes[:, j]
        return frame

    def _targets(self, y: np.ndarray, y_val: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(train, validation) labels per model: class codes as a vector, one regression target as a
        vector, several as a matrix (MultiRMSE) or one column per model."""
        if self._n_models > 1:
            return [(np.ascontiguousarray(y[:, i]), None if y_val is None else np.ascontiguousarray(y_val[:, i])) for i in range(y.shape[1])]

        def shaped(labels: np.ndarray) -> np.ndarray:
            matrix = labels.reshape(len(labels), -1)
            return matrix if self.task.name == "regression" and matrix.shape[1] > 1 else np.ravel(labels)

        return [(shaped(y), None if y_val is None else shaped(y_val))]

    def _params(self, targets: int) -> dict[str, Any]:
        cfg, train = self.config.model, self.config.train
        params: dict[str, Any] = {
            "loss_function": _loss(self.task, targets)[0],
            "iterations": cfg.iterations,
            "depth": cfg.depth,
            "l2_leaf_reg": cfg.l2_leaf_reg,
            "random_seed": train.seed,
            "thread_count": self._threads(),
            "allow_writing_files": False,  # else every fit leaves a catboost_info/ folder in the working directory
            "logging_level": "Silent",
        }
        if cfg.learning_rate is not None:
            params["learning_rate"] = cfg.learning_rate
        if self.task.is_classification:
            params["class_names"] = list(range(self.task.n_targets))  # a class missing from a fold keeps its column
        return params

    def _threads(self) -> int:
        if self.config.train.threads:
            return self.config.train.threads
        from forgeml.train.distributed import default_threads

        return default_threads()

    def fit(self, train, y_train, val, y_val, options: FitOptions) -> FitSummary:
        catboost = import_catboost()
        started = time.perf_counter()
        has_val = val is not None and y_val is not None and len(y_val) > 0
        x_train, x_val = self._data(train), self._data(val) if has_val else None
        pairs = self._targets(y_train, y_val if has_val else None)
        live = len(pairs) == 1  # one model: its rounds go to the run as they happen
        every, reported = rounds_between_rows(self.config.model.iterations), []
        deadline = getattr(options, "deadline", None)
        self.models, sums = [], {}
        for target, val_target in pairs:
            params = self._params(target.shape[1] if target.ndim > 1 else 1)
            class_weights = self.task.class_weights(self.config.train.class_weight, target)
            if class_weights is not None:
                params["class_weights"] = [float(w) for w in class_weights]
            if has_val:
                params.update(od_type="Iter", od_wait=self.config.model.early_stopping_rounds, use_best_model=True)
            model = catboost.CatBoost(params)
            pool = catboost.Pool(x_train, label=target, cat_features=self.categorical or None)
            eval_set = catboost.Pool(x_val, label=val_target, cat_features=self.categorical or None) if has_val else None
            callback = _TreeRows(options.callbacks if live else [], every, reported, deadline,
                                 self.config.model.early_stopping_rounds, self.config.train.early_stopping_min_delta)
            model.fit(pool, eval_set=eval_set, callbacks=[callback])
            self.models.append(model)
            for split, metrics in model.get_evals_result().items():
                name = "train_loss" if split == "learn" else "val_loss"
                for index, value in enumerate(next(iter(metrics.values()), [])):
                    row = sums.setdefault(index + 1, {})
                    row[name] = row.get(name, 0.0) + float(value) / len(pairs)
        history = [{"epoch": step, **sums[step]} for step in sorted(sums)]
        best = (self.models[0].get_best_iteration() + 1) if has_val and self.models[0].get_best_iteration() is not None else len(history)
        for row in history:  # what live rows did not send (see gbm.py)
            if row["epoch"] not in reported and (not live or row["epoch"] == len(history)) and (row["epoch"] % every == 0 or row["epoch"] in (1, len(history))):
                for receiver in options.callbacks:
                    receiver.on_epoch_end(dict(row))
        best_value = history[best - 1].get("val_loss") if history and best <= len(history) else None
        from forgeml.models.estimator import FitSummary

        # stopped early: fewer trees than allowed (a min_delta stop may keep the last tree as the best)
        stopped = len(history) < self.config.model.iterations
        return FitSummary(history, best, best_value, stopped, time.perf_counter() - started)

    def scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        data = self._data(arrays)
        prediction_type = _loss(self.task, self.task.n_targets)[1]
        from forgeml.models.gbm import predict_threads  # one thread for a few rows, as for LightGBM

        kwargs = {"thread_count": predict_threads(len(arrays["dense"]), self._threads())} | ({"prediction_type": prediction_type} if prediction_type else {})
        outputs = [np.asarray(model.predict(data, **kwargs), dtype=np.float64) for model in self.models]
        rows = len(arrays["dense"])
        if self.task.is_classification:
            return outputs[0].reshape(rows, -1)
        return np.concatenate([output.reshape(rows, -1) for output in outputs], axis=1)

    def save(self, directory: Path) -> list[str]:
        for name, model in zip(self.files, self.models):
            model.save_model(str(Path(directory) / name), format="cbm")
        return list(self.files)

    def feature_importance(self) -> dict[str, float] | None:
        total = np.zeros(len(self.columns))
        for model in self.models:
            total += np.asarray(model.get_feature_importance(), dtype=np.float64)
        if total.sum() <= 0:
            return None
        return {name: float(v) for name, v in zip(self.columns, total / total.sum())}

    @classmethod
    def load(cls, directory: Path, config: Any, task: Task, spec: InputSpec) -> "CatBoostEstimator":
        catboost = import_catboost()
        instance = cls(config, task, spec)
        try:
            for name in instance.files:
                model = catboost.CatBoost()
                model.load_model(str(Path(directory) / name), format="cbm")
                instance.models.append(model)
        except (catboost.CatBoostError, OSError) as exc:
            raise BundleError(f"CatBoost model does not load ({exc.__class__.__name__})", where=str(directory),
                              hint="the bundle is corrupted; retrain or restore it") from None
        return instance


class _TreeRows:
    """A CatBoost callback: every ``every`` trees (and the first) the round's losses go to the
    run's callbacks as a history row. Boosting stops past ``deadline`` (``time.monotonic()``), or
    when the validation loss has not beaten its best by more than ``min_delta`` for ``patience``
    trees (CatBoost's own od_wait counts any gain, so a loss creeping towards zero on separable
    data would run every iteration); ``use_best_model`` then keeps the best trees so far."""

    def __init__(self, callbacks: list[Any], every: int, reported: list[int], deadline: float | None, patience: int, min_delta: float):
        self.callbacks, self.every, self.reported, self.deadline = callbacks, every, reported, deadline
        self.patience, self.min_delta = patience, min_delta
        self.best, self.best_round = float("inf"), 0

    def after_iteration(self, info: Any) -> bool:
        round_number = info.iteration  # CatBoost counts from 1 here
        losses = {split: next(iter(metrics.values()), []) for split, metrics in info.metrics.items()}
        if self.callbacks and (round_number == 1 or round_number % self.every == 0):
            row: dict[str, Any] = {"epoch": round_number}
            for split, values in losses.items():
                if values:
                    row["train_loss" if split == "learn" else "val_loss"] = float(values[-1])
            self.reported.append(round_number)
            for callback in self.callbacks:
                callback.on_epoch_end(row)
        if losses.get("validation"):
            value = float(losses["validation"][-1])
            if value < self.best - self.min_delta:
                self.best, self.best_round = value, round_number
            elif round_number - self.best_round >= self.patience:
                return False
        return self.deadline is None or time.monotonic() < self.deadline


def build(config: Any, task: Task, spec: InputSpec) -> CatBoostEstimator:
    import_catboost()  # a missing extra is said before any fitting starts (an ensemble then skips the member)
    return CatBoostEstimator(config, task, spec)


def load(directory: Path, config: Any, task: Task, spec: InputSpec) -> CatBoostEstimator:
    return CatBoostEstimator.load(directory, config, task, spec)


def describe(cfg: CatBoostConfig, inputs: dict[str, int]) -> str:
    rate = "auto" if cfg.learning_rate is None else cfg.learning_rate
    return f"CatBoost (depth {cfg.depth}, lr {rate})"
