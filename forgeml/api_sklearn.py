"""The scikit-learn estimator protocol for ``forgeml.Pipeline``.

``get_params``/``set_params``, ``fit(X, y)``, ``predict``, ``predict_proba``, ``score``,
``classes_`` and ``__sklearn_tags__``: enough for ``sklearn.base.clone``,
``cross_val_score`` and ``GridSearchCV``. The Pipeline does not inherit ``BaseEstimator``:
importing scikit-learn costs over a second, and ``from forgeml import Pipeline`` should not pay
it; scikit-learn is imported here only when scikit-learn itself calls in (tags, scoring).

What a Pipeline returns follows how it was fitted (``output="auto"``): fitted on a table that
holds the target, ``predict`` answers a DataFrame (``<target>_prediction`` and class
probabilities, as ``forgeml predict`` writes); fitted as ``fit(X, y)``, it answers like a
scikit-learn estimator, a 1-D array of labels or values (2-D for several targets), which is
what scikit-learn's scorers compare with ``y``.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from forgeml.errors import ConfigError, DataError, ForgeError

OUTPUTS = ("auto", "frame", "array")
# A grid over config options: ``overrides__train.learning_rate`` sets ``overrides["train.learning_rate"]``.
OVERRIDE_PREFIX = "overrides__"


class EstimatorProtocol:
    """Mixin: the Pipeline's constructor arguments are its parameters (``get_params``)."""

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name, p in signature.parameters.items() if name != "self" and p.kind is not p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments, as given (scikit-learn's ``clone`` rebuilds the Pipeline from them).

        ``deep`` is accepted for scikit-learn; a Pipeline holds no nested estimators.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> "EstimatorProtocol":
        """Set constructor arguments; ``overrides__<dotted.option>=value`` sets one config option,
        so a grid can search ``{"overrides__train.learning_rate": [1e-3, 1e-2]}``. Returns ``self``.

        Raises ``ConfigError`` naming an unknown parameter.
        """
        valid = self._param_names()
        overrides = dict(self.overrides or {})
        # a whole ``overrides`` first, so ``overrides__…`` keys given with it amend it, in any order
        for key, value in sorted(params.items(), key=lambda item: item[0] != "overrides"):
            if key.startswith(OVERRIDE_PREFIX) and len(key) > len(OVERRIDE_PREFIX):
                overrides[key[len(OVERRIDE_PREFIX):]] = value
            elif key in valid:
                setattr(self, key, value)
                if key == "overrides":
                    overrides = dict(value or {})
            else:
                raise ConfigError(f"unknown parameter {key!r}", where="Pipeline.set_params",
                                  hint=f"use one of {valid} or overrides__<config option>, e.g. overrides__train.epochs")
        if any(key.startswith(OVERRIDE_PREFIX) for key in params):
            self.overrides = overrides
        return self

    def __sklearn_tags__(self) -> Any:
        """Classifier or regressor: the fitted task, or the config's. Before ``fit`` with
        ``task: auto`` the task depends on ``y``, which tags cannot see; then it says classifier,
        so ``cross_val_score``/``GridSearchCV`` stratify their folds when ``y`` holds class labels
        and, as scikit-learn's ``check_cv`` looks at ``y``, use plain K-fold when it is continuous
        (a class-sorted table would otherwise give folds of classes never trained on). Inputs may
        be strings, categories and NaN: the Pipeline cleans and encodes them."""
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        task = self._known_task()
        targets = self._target_names()
        kind = "regressor" if task == "regression" or len(targets) > 1 else "classifier"
        return Tags(
            estimator_type=kind,
            target_tags=TargetTags(required=True, multi_output=len(targets) > 1, single_output=len(targets) <= 1),
            classifier_tags=ClassifierTags(multi_class=task != "binary") if kind == "classifier" else None,
            regressor_tags=RegressorTags() if kind == "regressor" else None,
            input_tags=InputTags(two_d_array=True, categorical=True, string=True, allow_nan=True),
            non_deterministic=False,
        )

    def _known_task(self) -> str | None:
        predictor = getattr(self, "predictor_", None)
        if predictor is not None:
            return predictor.task.name
        try:
            task = self.build_config().task
        except ForgeError:  # no target yet, a config file not found: scikit-learn only wanted a tag
            return None
        return None if task == "auto" else task

    def _target_names(self) -> list[str]:
        predictor = getattr(self, "predictor_", None)
        if predictor is not None:
            return list(predictor.config.target)
        target = self.target
        return [target] if isinstance(target, str) else list(target or [])

    # ------------------------------------------------------------------ fit(X, y)
    def _frame_with_target(self, X: Any, y: Any) -> tuple[Any, str | list[str]]:
        """``X`` with ``y`` as its target column(s), matched by position as scikit-learn does
        (its folds keep X's index, ``y`` may be a plain array); ``X`` itself is never modified.
        The target's name: ``target=`` (or the config's), else ``y``'s name, else "target"."""
        import pandas as pd

        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X), columns=[f"x{i}" for i in range(np.shape(X)[1])])
        values = y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else np.asarray(y)
        if len(values) != len(frame):
            raise DataError(f"X has {len(frame)} rows but y has {len(values)}", where="Pipeline.fit(X, y)",
                            hint="pass one target value per row of X")
        given = self.target if self.target else self._config_target()
        if values.ndim == 2 and values.shape[1] > 1:
            names = list(given) if isinstance(given, (list, tuple)) else (
                [str(c) for c in y.columns] if isinstance(y, pd.DataFrame) else [f"target_{i}" for i in range(values.shape[1])])
            if len(names) != values.shape[1]:
                raise DataError(f"y has {values.shape[1]} columns but target names {len(names)}", where="Pipeline.fit(X, y)",
                                hint="give target=[...] one name per column of y")
            columns = {name: values[:, i] for i, name in enumerate(names)}
            target: str | list[str] = names
        else:
            name = given if isinstance(given, str) else (
                given[0] if given else (str(y.name) if getattr(y, "name", None) is not None else "target"))
            columns, target = {name: values.reshape(-1)}, name
        clash = [name for name in columns if name in frame.columns]
        if clash:
            raise DataError(f"X already has a column named {clash[0]!r}, the target's name", where="Pipeline.fit(X, y)",
                            hint="drop it from X, or pass the whole table as fit(data) without y")
        return frame.assign(**columns), target

    def _config_target(self) -> list[str] | None:
        """The target a ``config=`` names, so ``fit(X, y)`` puts ``y`` under that name."""
        if self.config is None:
            return None
        try:
            return list(self.build_config().target)
        except ConfigError:
            return None

    def _as_frame(self, X: Any) -> Any:
        """A DataFrame for an array ``X`` (columns x0, x1, … as ``fit`` named them); anything
        else (a DataFrame, a path, records) is passed on as is."""
        import pandas as pd

        if isinstance(X, np.ndarray) and X.ndim == 2:
            return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        return X

    def _answers_arrays(self) -> bool:
        if self.output not in OUTPUTS:
            raise ConfigError(f"output={self.output!r} is not one of {list(OUTPUTS)}", where="Pipeline(output=...)",
                              hint='"auto": arrays after fit(X, y), DataFrames after fit(data)')
        return self.output == "array" or (self.output == "auto" and getattr(self, "fitted_on_xy_", False))

    def _prediction_values(self, frame: Any) -> np.ndarray:
        names = [f"{target}_prediction" for target in self.predictor_.config.target]
        values = frame[names].to_numpy()
        return values[:, 0] if len(names) == 1 else values

    # ------------------------------------------------------------------ probabilities and score
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (rows, classes), columns in the order of ``classes_``.

        Raises ``ConfigError`` for a regression Pipeline and ``NotFittedError`` before ``fit``.
        """
        predictor = self._check_fitted()
        if not predictor.task.is_classification:
            raise ConfigError("predict_proba is for classification; this Pipeline does regression",
                              where="Pipeline.predict_proba", hint="use predict()")
        frame = predictor.predict(self._as_frame(X))
        target = predictor.config.target[0]
        return frame[[f"{target}_proba_{name}" for name in predictor.class_names]].to_numpy(dtype=np.float64)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """scikit-learn's default score: accuracy for classification, R² for regression (averaged
        over targets), of ``predict(X)`` against ``y``. Higher is better, as ``GridSearchCV`` expects."""
        predictor = self._check_fitted()
        predicted = self._prediction_values(predictor.predict(self._as_frame(X)))
        if predictor.task.is_classification:
            truth, labels = np.asarray(y, dtype=object).reshape(-1), predicted.astype(object)
            # 1 and "1" are the same class: labels may come back typed differently from y
            right = (truth == labels) | (truth.astype(str) == labels.astype(str))
            return float(np.average(right, weights=sample_weight))
        from sklearn.metrics import r2_score

        return float(r2_score(np.asarray(y, dtype=np.float64), predicted, sample_weight=sample_weight))
