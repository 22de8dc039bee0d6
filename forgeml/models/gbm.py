"""Gradient-boosted trees (LightGBM) behind the same estimator interface as the torch models.

Dense columns go in as they are; category codes go in as LightGBM categorical columns; each text
column becomes a few dozen TF-IDF n-gram SVD components (``gbm_text``; ``text_columns: features``,
the default) — never silently dropped. Early stopping on the validation split picks the number of
rounds. Saved in LightGBM's own text format (and the text features' vocabularies and components
as JSON and safetensors).

The options (``GBMConfig``) are read with every config, so this module's top level imports only
pydantic and numpy; LightGBM and torch (for the thread count) are imported when a model is built.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from forgeml.config_base import StrictModel as _Strict
from forgeml.errors import BundleError
from forgeml.tune.space import Choice, Float, Int

if TYPE_CHECKING:
    from forgeml.features.featureset import InputSpec
    from forgeml.models.estimator import FitOptions, FitSummary
    from forgeml.models.tasks import Task

STEP_NAME = "boosting round"
REFITS = True  # the ensemble may refit it once on all rows with its folds' mean rounds (models/refit.py)
STEP_LIMIT = "model.num_boost_round"  # the option bounding its steps: tuning's pruner starts judging after 1/30 of it
NUMBERS = "unclipped"  # trees split on order: clipping a tail only merges its values (clean.outliers: auto)
FOLDS_SIDE_BY_SIDE = True  # a bag fits its folds in threads, one core each (models/fold_threads.py says why)


class GBMConfig(_Strict):
    type: Literal["gbm"] = "gbm"
    num_boost_round: int = Field(1000, ge=1, description="Upper bound; early stopping on validation picks the number.")
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(31, ge=2)
    min_data_in_leaf: int = Field(20, ge=1)
    feature_fraction: float = Field(0.9, gt=0, le=1)
    bagging_fraction: float = Field(1.0, gt=0, le=1)
    lambda_l2: float = Field(0.0, ge=0)
    early_stopping_rounds: int = Field(50, ge=1)
    early_stopping_min_delta: float = Field(0.0, ge=0, description="A round counts as an improvement when it beats the best "
        "validation loss by more than this; 0 is LightGBM's own default. Not train.early_stopping_min_delta (the networks'): "
        "its 1e-4, in units of the standardised target's variance, stopped high-R² regressions early (bench/RESULTS.md), and "
        "LightGBM stops by itself once no split gains.")
    boosting: Literal["gbdt", "rf"] = Field("gbdt", description="gbdt (gradient boosting) or rf: a random forest — every tree fitted "
        "on a bootstrap-like sample of the rows (bagging_fraction, 0.632 unless set) with a share of the columns per split "
        "(√columns for classes, all for regression), the trees averaged; learning_rate is then unused. A different kind of "
        "model for the ensemble, as AutoGluon's RandomForest is.")
    extra_trees: bool = Field(False, description="Extremely randomised trees: each split picks one random threshold per feature (AutoGluon's LightGBMXT); often a good second opinion in an ensemble.")
    min_data_per_group: int | None = Field(None, ge=1, description="Rows per category group of a many-vs-many category split; default: min_data_in_leaf.")
    text_columns: Literal["features", "refuse", "ignore"] = Field(
        "features", description="Text columns: features (TF-IDF word and character n-grams reduced to text_components SVD "
        "components per column, which the trees split on), refuse (a one-line error naming the column) or ignore (left out; "
        "the ensemble's LightGBM members do, its n-gram and network members read the text).")
    text_components: int = Field(64, ge=1, description="SVD components per text column (text_columns: features).")

    # `forgeml tune --model gbm`: the ranges of the LightGBM tuning guides (Optuna's LightGBMTuner,
    # AutoGluon's searcher); num_boost_round stays an upper bound that early stopping cuts
    search_space: ClassVar[dict] = {
        "model.num_leaves": Int(8, 256, log=True),
        "model.learning_rate": Float(0.01, 0.3, log=True),
        "model.min_data_in_leaf": Int(2, 100, log=True),
        "model.feature_fraction": Float(0.4, 1.0),
        "model.bagging_fraction": Float(0.5, 1.0),
        "model.lambda_l2": Float(1e-8, 10.0, log=True),
        "model.extra_trees": Choice((False, True)),
    }



OBJECTIVES = {
    ("binary", "bce"): "binary",
    ("binary", "cross_entropy"): "binary",
    ("multiclass", "cross_entropy"): "multiclass",
    ("regression", "mse"): "regression",
    ("regression", "huber"): "huber",
    ("regression", "poisson"): "poisson",
}


def _forest_params(cfg: GBMConfig, columns: int, regression: bool) -> dict[str, Any]:
    """LightGBM's random-forest mode, with the sampling of scikit-learn's forests: rows drawn per
    tree (LightGBM samples without replacement; 0.632 is a bootstrap's share of distinct rows)
    and √columns per split for classes (all columns for regression, scikit-learn's defaults)."""
    return {
        "boosting": "rf",
        "bagging_fraction": cfg.bagging_fraction if cfg.bagging_fraction < 1 else 0.632,
        "bagging_freq": 1,
        "feature_fraction": 1.0,
        "feature_fraction_bynode": 1.0 if regression else min(1.0, max(1, round(columns ** 0.5)) / max(1, columns)),
    }


class GBMEstimator:
    def __init__(self, config: Any, task: Task, spec: InputSpec, boosters: list | None = None):
        self.config, self.task, self.spec = config, task, spec
        if getattr(spec, "images", None):
            from forgeml.errors import ConfigError

            raise ConfigError(f"LightGBM cannot read images (feature {spec.images[0].feature!r})", where="model.type: gbm",
                              hint="use a neural model (mlp, cnn) for image inputs")
        if spec.tokens and getattr(config.model, "text_columns", "refuse") == "refuse":
            from forgeml.errors import ConfigError

            raise ConfigError(f"LightGBM cannot read the text column {spec.tokens[0].feature!r} (model.text_columns: refuse)", where="model.type: gbm",
                              hint="--set model.text_columns=features to read it as n-gram components, ignore to leave it out, or drop the column (data.drop)")
        self.boosters = boosters or []
        self.text = None
        if spec.tokens and getattr(config.model, "text_columns", "refuse") == "features":
            from forgeml.models.gbm_text import TextComponents

            self.text = TextComponents([token.feature for token in spec.tokens], config.model.text_components, config.train.seed)
        self.columns = list(spec.dense_columns) + [name for name, *_ in spec.codes]
        self.categorical = list(range(spec.dense_width, len(self.columns)))

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f"gbm_model_{i}.txt" for i in range(self._n_boosters)) + (self.text.files if self.text else ())

    @property
    def _n_boosters(self) -> int:
        return self.task.n_targets if self.task.name == "regression" else 1

    def _matrix(self, arrays: dict[str, np.ndarray], text: np.ndarray | None = None) -> np.ndarray:
        """Dense columns, category codes, then the text components (``text``: already computed)."""
        parts = [arrays["dense"].astype(np.float64), arrays["codes"].astype(np.float64)]
        if self.text is not None:
            parts.append((self.text.transform(arrays) if text is None else text).astype(np.float64))
        return np.concatenate(parts, axis=1)

    def _params(self) -> dict[str, Any]:
        cfg, train = self.config.model, self.config.train
        params = {
            "objective": OBJECTIVES[(self.task.name, self.task.loss)],
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_data_in_leaf": cfg.min_data_in_leaf,
            # LightGBM's own default (100 rows per category group) forbids every many-vs-many
            # category split below ~200 train rows: small data could never split on a category.
            "min_data_per_group": cfg.min_data_per_group or cfg.min_data_in_leaf,
            "extra_trees": cfg.extra_trees,
            "feature_fraction": cfg.feature_fraction,
            "bagging_fraction": cfg.bagging_fraction,
            "bagging_freq": 1 if cfg.bagging_fraction < 1 else 0,
            "lambda_l2": cfg.lambda_l2,
            "seed": train.seed,
            "deterministic": True,
            "num_threads": train.threads or _default_threads(),
            "verbosity": -1,
        }
        if cfg.boosting == "rf":
            params.update(_forest_params(cfg, len(self.columns) + (len(self.text.columns) if self.text is not None else 0),
                                         self.task.name == "regression"))
        if self.task.name == "multiclass":
            params["num_class"] = self.task.n_targets
        return params

    def fit(self, train, y_train, val, y_val, options: FitOptions) -> FitSummary:
        import time

        import lightgbm as lgb

        started = time.perf_counter()
        x_train = self._matrix(train, self.text.fit_transform(train) if self.text is not None else None)
        feature_names = self.columns + (self.text.columns if self.text is not None else [])
        x_val = self._matrix(val) if val is not None and len(y_val) else None
        # one contiguous column per regression target: LightGBM warns the user about a strided slice
        targets = [y_train] if self.task.name != "regression" else [np.ascontiguousarray(y_train[:, i]) for i in range(y_train.shape[1])]
        val_targets = [y_val] if self.task.name != "regression" else [np.ascontiguousarray(y_val[:, i]) for i in range(y_val.shape[1])] if x_val is not None else []
        train_weights = val_weights = None
        if options.soft_targets and self.task.is_classification:  # a teacher's probabilities: weighted rows, one per class
            x_train, targets, train_weights = soft_rows(x_train, y_train)
            if x_val is not None:
                x_val, val_targets, val_weights = soft_rows(x_val, y_val)
        history_by_round: dict[int, dict[str, float]] = {}
        every = rounds_between_rows(self.config.model.num_boost_round)
        live = len(targets) == 1  # one booster: its rounds go to the run as they happen
        reported: list[int] = []
        self.boosters = []
        for i, target in enumerate(targets):
            class_weights = self.task.class_weights(self.config.train.class_weight, target)
            row_weights = None if class_weights is None else class_weights[np.asarray(target, dtype=np.int64)]
            row_weights = train_weights if train_weights is not None else row_weights
            data = lgb.Dataset(x_train, label=target, weight=row_weights, feature_name=_safe_names(feature_names), categorical_feature=self.categorical,
                               free_raw_data=False)
            record: dict = {}
            callbacks = [lgb.record_evaluation(record)]
            if live and options.callbacks:
                callbacks.append(_RoundRows(options.callbacks, every, reported))
            if getattr(options, "deadline", None) is not None:
                callbacks.append(_Deadline(options.deadline))
            valid_sets, names = [data], ["train"]
            if x_val is not None:
                valid_sets.append(lgb.Dataset(x_val, label=val_targets[i], weight=val_weights, reference=data))
                names.append("val")
            if x_val is not None and self.config.train.early_stopping_patience > 0:  # 0 turns early stopping off, as for networks
                callbacks.append(lgb.early_stopping(self.config.model.early_stopping_rounds, verbose=False,
                                                    min_delta=self.config.model.early_stopping_min_delta))
            booster = lgb.train(self._params(), data, num_boost_round=self.config.model.num_boost_round, valid_sets=valid_sets, valid_names=names, callbacks=callbacks)
            self.boosters.append(booster)
            for split, metrics in record.items():
                losses = next(iter(metrics.values()))
                for round_index, value in enumerate(losses):
                    row = history_by_round.setdefault(round_index + 1, {"epoch": round_index + 1})
                    key = f"{split}_loss"
                    row[key] = row.get(key, 0.0) + float(value) / len(targets)
        history = [history_by_round[k] for k in sorted(history_by_round)]
        best = min(self.boosters[0].best_iteration or len(history), len(history))  # a deadline stop may count one round more
        # the rounds not sent yet: all of them for several boosters (their mean is known only now),
        # else the last round when it fell between two reported ones
        for row in history:
            if row["epoch"] not in reported and (not live or row["epoch"] == len(history)) and (row["epoch"] % every == 0 or row["epoch"] in (1, len(history))):
                for callback in options.callbacks:
                    callback.on_epoch_end(dict(row))
        best_value = history[best - 1].get("val_loss") if history else None
        from forgeml.models.estimator import FitSummary

        return FitSummary(history, best, best_value, best < len(history), time.perf_counter() - started)

    def scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        x = self._matrix(arrays)
        threads = predict_threads(len(x), self.config.train.threads or _default_threads())
        outputs = [b.predict(x, num_iteration=b.best_iteration or None, num_threads=threads) for b in self.boosters]
        if self.task.name == "binary":
            return np.stack([1 - outputs[0], outputs[0]], axis=1)
        if self.task.name == "multiclass":
            return np.asarray(outputs[0]).reshape(len(x), -1)
        return np.stack(outputs, axis=1)

    def save(self, directory: Path) -> list[str]:
        for name, booster in zip(self.files, self.boosters):
            (Path(directory) / name).write_text(booster.model_to_string(num_iteration=booster.best_iteration or None), encoding="utf-8")
        if self.text is not None:
            self.text.save(Path(directory))
        return list(self.files)

    def feature_importance(self) -> dict[str, float] | None:
        """Gain per input column; a text column's is the sum over its components."""
        owners = self.columns + (self.text.importance_owner() if self.text is not None else [])
        total = np.zeros(len(owners))
        for booster in self.boosters:
            total += booster.feature_importance(importance_type="gain")
        if total.sum() <= 0:
            return None
        values: dict[str, float] = {}
        for name, v in zip(owners, total / total.sum()):
            values[name] = values.get(name, 0.0) + float(v)
        return values

    @classmethod
    def load(cls, directory: Path, config: Any, task: Task, spec: InputSpec) -> "GBMEstimator":
        import lightgbm as lgb

        from safetensors import SafetensorError

        instance = cls(config, task, spec)
        try:
            instance.boosters = [lgb.Booster(model_str=(Path(directory) / name).read_text(encoding="utf-8")) for name in instance.files[:instance._n_boosters]]
            if instance.text is not None:
                instance.text.load(Path(directory))
        except (lgb.basic.LightGBMError, OSError, UnicodeDecodeError, ValueError, KeyError, SafetensorError) as exc:
            raise BundleError(f"LightGBM model does not load ({exc.__class__.__name__})", where=str(directory), hint="the bundle is corrupted; retrain or restore it") from None
        return instance


# Rows in metrics.jsonl per run: enough for a smooth learning curve, few enough for a 5,000-round run.
MAX_HISTORY_ROWS = 100


def rounds_between_rows(num_boost_round: int) -> int:
    """Every how many boosting rounds a row goes to the run's callbacks (metrics.jsonl, loggers)."""
    return max(1, -(-num_boost_round // MAX_HISTORY_ROWS))


class _RoundRows:
    """A LightGBM callback: every ``every`` rounds (and the first), the round's train and
    validation loss as a history row (``epoch`` = boosting round, the key every curve reads)."""

    order = 25  # after record_evaluation (20), before early_stopping (30) ends the training

    def __init__(self, callbacks: list[Any], every: int, reported: list[int]):
        self.callbacks, self.every, self.reported = callbacks, every, reported

    def __call__(self, env: Any) -> None:
        round_number = env.iteration + 1
        if round_number != 1 and round_number % self.every:
            return
        row: dict[str, Any] = {"epoch": round_number}
        for split, _, value, *_ in env.evaluation_result_list:
            row[f"{split}_loss"] = float(value)
        self.reported.append(round_number)
        for callback in self.callbacks:
            callback.on_epoch_end(row)


class _Deadline:
    """A LightGBM callback: stop boosting once the time budget's deadline has passed, keeping the
    rounds so far (early stopping's own exception, so best_iteration is set: early stopping has
    not fired yet, so the validation loss is still at or near its best)."""

    order = 35  # after early stopping

    def __init__(self, deadline: float):
        self.deadline = deadline

    def __call__(self, env: Any) -> None:
        import time

        from lightgbm.callback import EarlyStopException

        if time.monotonic() >= self.deadline:
            raise EarlyStopException(env.iteration, env.evaluation_result_list)


def soft_rows(x: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Soft targets for LightGBM, which takes only class labels: each row once per class, labelled
    with that class and weighted by its probability. The weighted log-loss of these rows is the
    cross-entropy with the soft targets, so this is exact, at C times the rows (classes a row gives
    no probability are left out)."""
    rows, classes = probabilities.shape
    keep = probabilities.T.ravel() > 1e-6  # class-major: all rows for class 0, then class 1, ...
    x_all = np.tile(x, (classes, 1))[keep]
    labels = np.repeat(np.arange(classes), rows)[keep]
    return x_all, [labels], probabilities.T.ravel()[keep].astype(np.float64)


def _safe_names(columns: list[str]) -> list[str]:
    """LightGBM rejects some characters in feature names (JSON specials); positions keep meaning."""
    return [f"f{i}" for i in range(len(columns))]


# Up to this many rows a prediction runs on one thread: waking OpenMP's other threads for one row
# cost LightGBM 2–14 ms a call where the row itself takes 0.2–0.4 ms (hpc, 4 classes, ~600 trees,
# 2 busy cores), and an ensemble makes ten such calls for a served row.
ONE_THREAD_ROWS = 256


def predict_threads(rows: int, threads: int) -> int:
    """Threads for predicting ``rows`` rows: one for a few rows, the training's count for a batch."""
    return 1 if rows <= ONE_THREAD_ROWS else max(1, threads)


def _default_threads() -> int:
    from forgeml.train.distributed import default_threads

    return default_threads()


def build(config: Any, task: Task, spec: InputSpec) -> GBMEstimator:
    return GBMEstimator(config, task, spec)


def load(directory: Path, config: Any, task: Task, spec: InputSpec) -> GBMEstimator:
    return GBMEstimator.load(directory, config, task, spec)


def describe(cfg: GBMConfig, inputs: dict[str, int]) -> str:
    text = f", text as {cfg.text_components} n-gram SVD components" if cfg.text_columns == "features" and inputs.get("text") else ""
    if cfg.boosting == "rf":
        return f"LightGBM random forest ({cfg.num_leaves} leaves{text})"
    return f"LightGBM ({cfg.num_leaves} leaves, lr {cfg.learning_rate}{text})"
