"""The Python API, in the scikit-learn spirit.

>>> from forgeml import Pipeline
>>> p = Pipeline(target="species").fit(frame)        # doctest: +SKIP
>>> p.evaluate(test_frame)["f1_macro"]               # doctest: +SKIP
>>> p.save("bundle/"); Pipeline.load("bundle/").predict(new_frame)   # doctest: +SKIP
>>> cross_val_score(Pipeline(target="y"), X, y)       # doctest: +SKIP

The constructor only stores its arguments; ``fit`` does the work and returns ``self``; learned
state ends in ``_``; using a pipeline before ``fit``/``load`` raises ``NotFittedError``. The
scikit-learn protocol (``get_params``, ``fit(X, y)``, ``predict_proba``, ``score``, tags) is in
``forgeml.api_sklearn``; ``repr``, notebook HTML and the model card in ``forgeml.api_describe``.

What cleaning did to the data (duplicates dropped, junk values made missing, images skipped) is
told as it happens, as scikit-learn tells data problems: one ``forgeml.errors.DataNote`` warning
per note, ``data: …``. Silence them with ``warnings.filterwarnings("ignore", category=DataNote)``;
they stay in the report's cleaning section either way.
"""
from __future__ import annotations

import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from forgeml.api_describe import describe_model, model_card, pipeline_html, pipeline_repr, privacy_spent
from forgeml.api_sklearn import EstimatorProtocol
from forgeml.config import Config, apply_overrides
from forgeml.errors import ConfigError, DataNote, NotFittedError
from forgeml.explain.report_section import sample_explanations

__all__ = ["Pipeline", "describe_model", "model_card"]


# Of train.time_budget, the share fitting may use: evaluation, importance and the report come after it.
FIT_SHARE_OF_BUDGET = 0.9


class Pipeline(EstimatorProtocol):
    """Raw table → cleaned, split, transformed, trained, evaluated model, in one estimator.

    Parameters
    ----------
    target: the column (or columns, for multi-target regression) to predict; with ``fit(X, y)``
        it names ``y`` (default: ``y``'s own name, else "target").
    config: a ``Config`` (or a path to YAML) instead of ``target``.
    model: a model family of ``forgeml.models.families.FAMILIES``: "mlp", "cnn", "rnn", "transformer",
        "pretrained", "gbm", "catboost", "linear" or "ensemble".
    overrides: dotted config options, e.g. ``Pipeline(target="y", overrides={"train.epochs": 20})``;
        a grid searches them as ``{"overrides__train.learning_rate": [1e-3, 1e-2]}``.
    output: what ``predict`` returns: "frame" (``<target>_prediction`` and class probabilities),
        "array" (labels or values, as scikit-learn estimators do) or "auto": arrays after
        ``fit(X, y)``, DataFrames after ``fit(data)``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris                       # doctest: +SKIP
    >>> X, y = load_iris(return_X_y=True, as_frame=True)            # doctest: +SKIP
    >>> Pipeline(overrides={"train.epochs": 20}).fit(X, y).predict(X)[:3]   # doctest: +SKIP
    array([0, 0, 0])
    """

    def __init__(self, target: str | list[str] | None = None, *, config: Config | str | Path | None = None, model: str | None = None,
                 overrides: dict[str, Any] | None = None, output: str = "auto"):
        self.target = target
        self.config = config
        self.model = model
        self.overrides = overrides  # stored as given: scikit-learn's clone checks that it is the same object
        self.output = output

    @classmethod
    def from_config(cls, config: Config | str | Path, **kwargs: Any) -> "Pipeline":
        """A Pipeline from a ``Config`` or a YAML file (``forgeml init`` writes one); ``kwargs``
        as for the constructor (``overrides=``, ``model=``)."""
        return cls(config=config, **kwargs)

    def __repr__(self) -> str:
        return pipeline_repr(self)

    def _repr_html_(self) -> str:
        return pipeline_html(self)

    # ------------------------------------------------------------------ config
    def build_config(self, target: str | list[str] | None = None) -> Config:
        """The config ``fit`` starts from: ``config`` (or a YAML path), else one for ``target``
        (the argument, else the constructor's), with ``model`` and ``overrides`` applied.

        Raises ``ConfigError`` when there is neither a target nor a config.
        """
        target = target if target is not None else self.target
        if isinstance(self.config, (str, Path)):
            config = Config.from_yaml(self.config)
        elif isinstance(self.config, Config):
            config = self.config
        elif target is not None:
            config = Config(target=target)
        else:
            raise ConfigError("a Pipeline needs a target column or a config", hint='Pipeline(target="price") or Pipeline.from_config("config.yaml")')
        if target is not None and list(config.target) != ([target] if isinstance(target, str) else list(target)):
            # fit(X, y) names y: a config's task was inferred for its own target, so infer afresh
            config = Config.from_dict({**config.model_dump(mode="json"), "target": target, "task": "auto"}, source="fit(X, y)")
        overrides = dict(self.overrides or {})
        if self.model:
            overrides["model.type"] = self.model
        return apply_overrides(config, overrides) if overrides else config

    # ------------------------------------------------------------------ fit
    def fit(self, data: Any, y: Any = None, *, validation: Any = None, test: Any = None, checkpoint_dir: Path | None = None,
            callbacks: list | None = None, resume: bool = False, dist: Any = None) -> "Pipeline":
        """Clean, split (70/15/15), fit the transforms on the train split, train, and evaluate on
        the held-out splits. Returns ``self``.

        Parameters
        ----------
        data: a path (CSV, TSV, Parquet, JSON lines, an image folder) or a DataFrame holding the
            target column(s); never modified. With ``y``: the inputs ``X`` (a DataFrame, or a 2-D
            array whose columns become x0, x1, …).
        y: the target values, one per row of ``X`` (a Series, array, or a DataFrame for several
            targets), as scikit-learn's ``fit(X, y)``; ``predict`` then answers arrays.
        validation, test: separate tables for those splits instead of carving them from ``data``.
        checkpoint_dir, callbacks, resume, dist: what ``forgeml train`` uses (checkpoints, per-epoch
            callbacks, continuing an interrupted run, torchrun).

        Raises
        ------
        DataError, ConfigError: bad data or options, with the column, row or option named.
        """
        started = time.monotonic()  # the time budget counts loading and preparing the data too
        prepared = self.prepare(data, y, validation=validation, test=test)
        _warn_notes(data_notes(prepared))
        self.fit_prepared(prepared, checkpoint_dir=checkpoint_dir, callbacks=callbacks, resume=resume, dist=dist, started=started)
        self.fitted_on_xy_ = y is not None
        return self

    def prepare(self, data: Any, y: Any = None, *, validation: Any = None, test: Any = None) -> Any:
        """The data half of ``fit``: read, infer the task and features, clean, split and fit the
        transforms on the train split (``forgeml.workflow.Prepared``). ``forgeml train`` runs it
        before it creates a run folder, so a wrong ``--target`` or an unreadable file leaves none.
        Arguments as for ``fit``."""
        from forgeml.workflow import prepare

        target = None
        if y is not None:
            data, target = self._frame_with_target(data, y)
        return prepare(self.build_config(target), data, validation=validation, test=test)

    def fit_prepared(self, prepared: Any, *, checkpoint_dir: Path | None = None, callbacks: list | None = None,
                     resume: bool = False, dist: Any = None, started: float | None = None) -> "Pipeline":
        """The training half of ``fit``, on what ``prepare`` returned: train, then evaluate the
        held-out splits. The data notes go to each callback's ``on_data_prepared`` (``forgeml
        train`` prints and logs them), not to ``warnings``. ``started``: ``time.monotonic()``
        when reading the data began, since ``train.time_budget`` counts that too (default: now).
        Returns ``self``."""
        from forgeml.models.build import build_estimator
        from forgeml.models.estimator import FitOptions
        from forgeml.predict import Predictor
        from forgeml.workflow import val_metrics_fn

        started = time.monotonic() if started is None else started
        for callback in callbacks or []:  # what cleaning did (files skipped, rows dropped), before a long fit starts
            if hasattr(callback, "on_data_prepared"):
                callback.on_data_prepared(data_notes(prepared))
        estimator = build_estimator(prepared.config, prepared.task, prepared.featureset.input_spec())
        metrics_fn, direction = val_metrics_fn(prepared.config, prepared.task)
        budget = prepared.config.train.time_budget
        deadline = started + budget * FIT_SHARE_OF_BUDGET if budget else None
        options = FitOptions(checkpoint_dir=checkpoint_dir, callbacks=callbacks or [], dist=dist, resume=resume, val_metrics=metrics_fn,
                             monitor_direction=direction, deadline=deadline)
        val_arrays = prepared.arrays.get("validation")
        self.fit_summary_ = estimator.fit(prepared.arrays["train"], prepared.targets["train"], val_arrays, prepared.targets.get("validation"), options)
        self.predictor_ = Predictor(prepared.config, prepared.featureset, prepared.task, estimator)
        self.prepared_ = prepared
        self.fitted_on_xy_ = False
        self._set_classes()
        # what is left of the budget for evaluation and importance (without one: a tenth of the fit's time, at least 10 s)
        self._report_seconds = max(1.0, started + budget - time.monotonic()) if budget else max(10.0, 0.1 * (time.monotonic() - started))
        self._evaluate_splits(prepared)
        from forgeml.evaluate.importance import announce_dominance

        announce_dominance(self.importance_, callbacks)  # a leak smell, said where the data: lines went
        self.created_at_ = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return self

    def _set_classes(self) -> None:
        """``classes_`` as scikit-learn's scorers read it: the labels, in predict_proba's column order."""
        import numpy as np

        target = self.predictor_.featureset.target
        if self.predictor_.task.is_classification:  # typed as predict's labels are (0, not "0")
            self.classes_ = np.asarray(target.decode(np.arange(len(target.classes))))

    def _evaluate_splits(self, prepared: Any) -> None:
        self.evaluations_: dict[str, Any] = {}
        for split in ("validation", "test"):
            frame = prepared.frames.get(split)
            if frame is not None and len(frame):
                self.evaluations_[split] = self.predictor_.evaluate_frame(frame, source=f"{split} split")
        self.test_split_ = "test" if "test" in self.evaluations_ else "validation"
        self.importance_ = self._importance(prepared)
        self.error_examples_ = self._error_examples(prepared)
        self.explanations_ = sample_explanations(self.predictor_, prepared.frames.get(self.test_split_), self.fit_summary_.seconds)

    def _error_examples(self, prepared: Any) -> dict[str, Any] | None:
        from forgeml.evaluate.examples import error_examples

        evaluation = self.evaluations_.get(self.test_split_)
        if evaluation is None:
            return None
        return error_examples(self.predictor_, prepared.frames[self.test_split_], evaluation.y_true, evaluation.scores)

    def _importance(self, prepared: Any) -> dict[str, float] | None:
        from forgeml.evaluate.importance import permutation_importance

        split = "validation" if "validation" in self.evaluations_ else self.test_split_
        evaluation = self.evaluations_.get(split)
        if evaluation is None:
            return None
        return permutation_importance(self.predictor_, prepared.frames[split], evaluation.y_true, seed=prepared.config.train.seed,
                                      seconds=getattr(self, "_report_seconds", None))

    # ------------------------------------------------------------------ use
    def _check_fitted(self) -> Any:
        if not hasattr(self, "predictor_"):
            raise NotFittedError("this Pipeline is not fitted yet", hint="call fit(data) or Pipeline.load(bundle) first")
        return self.predictor_

    @property
    def metrics_(self) -> dict[str, Any]:
        """Held-out metrics: the test split's, or validation's if there was no test split."""
        self._check_fitted()
        evaluation = getattr(self, "evaluations_", {}).get(getattr(self, "test_split_", "test"))
        return evaluation.metrics if evaluation else getattr(self, "loaded_metrics_", {})

    def leaderboard(self) -> Any:
        """A DataFrame with one row per model the ensemble fitted or skipped (member, family,
        status, out-of-fold score, validation loss, weight, fit seconds, predict ms/row), best
        first; a single-model pipeline gives its one row."""
        import pandas as pd

        predictor = self._check_fitted()
        rows = getattr(predictor.estimator, "leaderboard", None)
        if rows is None:
            rows = [{"member": predictor.config.model.type, "family": predictor.config.model.type, "status": "fitted", "weight": 1.0}]
        frame = pd.DataFrame(rows)
        if "val_loss" in frame:
            frame = frame.sort_values("val_loss", na_position="last", kind="stable").reset_index(drop=True)
        return frame

    def predict(self, data: Any) -> Any:
        """Predictions for every row of ``data`` (a path, a DataFrame, records, or a 2-D array
        after ``fit(X, y)`` on arrays), in input order; extra columns are ignored.

        Returns a DataFrame, ``<target>_prediction`` and for classes ``<target>_proba_<class>``
        (a row whose input cannot be read gets an ``error``); or, when fitted as ``fit(X, y)``
        (see ``output``), the labels or values as a NumPy array, as scikit-learn estimators do.
        """
        predictor = self._check_fitted()
        answers_arrays = self._answers_arrays()
        frame = predictor.predict(self._as_frame(data))
        return self._prediction_values(frame) if answers_arrays else frame

    def explain(self, data: Any, rows: Any = None, *, top: int | None = None, as_dict: bool = False) -> Any:
        """Each row's attribution per input, indexed by row, with (base) and (output); as_dict: explanations.json's content."""
        from forgeml.explain.run import explain_data  # numpy and the methods: only when explaining
        return explain_data(self._check_fitted(), self._as_frame(data), rows=rows, top=top, as_dict=as_dict)

    def evaluate(self, data: Any) -> dict[str, Any]:
        """Every metric (accuracy, F1, ROC-AUC…, or MAE, RMSE, R²…) on labelled data: a path or a
        DataFrame holding the target. Rows without a target are dropped and counted. The report
        of this evaluation (``report(last_evaluation_)``) shows the same worst-error sections as
        the training report, for these rows."""
        from forgeml.evaluate.examples import error_examples

        predictor = self._check_fitted()
        self.last_evaluation_ = evaluation = predictor.evaluate(data)
        self.last_error_examples_ = error_examples(predictor, evaluation.frame, evaluation.y_true, evaluation.scores)
        if self.last_error_examples_ is not None:
            self.last_error_examples_["where"] = "evaluated data"
        return evaluation.metrics

    # ------------------------------------------------------------------ report and bundle
    def report_inputs(self, evaluation: Any = None, title: str | None = None) -> Any:
        """What ``report`` renders (``forgeml.evaluate.report.ReportInputs``): the held-out
        evaluation by default, or ``evaluation`` (``last_evaluation_``) for new data."""
        from forgeml.api_report import report_inputs

        return report_inputs(self, evaluation, title)

    def report(self, evaluation: Any = None) -> str:
        """The self-contained report.html page as a string (plots inlined), for the held-out
        split or for ``evaluation``."""
        from forgeml.evaluate.report import render_report

        return render_report(self.report_inputs(evaluation))

    def save(self, path: str | Path) -> Path:
        """Write the bundle to ``path`` (config, fitted features, weights, metrics, report, model
        card, checksums), atomically: a failure leaves the old bundle or none. Returns the path."""
        from forgeml.bundle import write_bundle

        predictor = self._check_fitted()
        prepared = getattr(self, "prepared_", None)
        metrics = {"task": predictor.task.name, "split": getattr(self, "test_split_", "test"), "test": self.metrics_}
        if getattr(self, "evaluations_", {}).get("validation"):
            metrics["validation"] = self.evaluations_["validation"].metrics
        if privacy_spent(self):
            metrics["privacy"] = privacy_spent(self)
        extra = {
            "history.json": self.fit_summary_.history if hasattr(self, "fit_summary_") else getattr(self, "loaded_history_", []),
            "data_summary.json": prepared.summary if prepared else getattr(self, "loaded_summary_", None),
            "cleaning.json": prepared.cleaning.to_dict() if prepared else getattr(self, "loaded_cleaning_", None),
            "importance.json": getattr(self, "importance_", None),
        }
        if getattr(self, "tuning_", None):
            extra["tuning.json"] = self.tuning_
        if getattr(self, "compression_", None):
            extra["compression.json"] = self.compression_
        if getattr(self, "distillation_", None):
            extra["distillation.json"] = self.distillation_  # which teacher, how (compress/distill.py)
        return write_bundle(path, predictor, metrics=metrics, report_html=self.report(), model_card=model_card(self), extra=extra)

    @classmethod
    def load(cls, path: str | Path) -> "Pipeline":
        """A fitted Pipeline from a bundle folder (checksums verified): ``predict``, ``evaluate``,
        ``metrics_``, ``importance_`` and ``report`` work as after ``fit``."""
        from forgeml.bundle import load_predictor, read_json

        predictor = load_predictor(path)
        pipeline = cls(config=predictor.config)
        pipeline.predictor_ = predictor
        metrics = read_json(path, "metrics.json") or {}
        pipeline.loaded_metrics_ = metrics.get("test", {})
        pipeline.loaded_privacy_ = metrics.get("privacy")
        pipeline.test_split_ = metrics.get("split", "test")
        pipeline._set_classes()
        pipeline.loaded_history_ = read_json(path, "history.json") or []
        pipeline.loaded_summary_ = read_json(path, "data_summary.json")
        pipeline.loaded_cleaning_ = read_json(path, "cleaning.json")
        pipeline.importance_ = read_json(path, "importance.json")
        pipeline.tuning_ = read_json(path, "tuning.json")
        pipeline.compression_ = read_json(path, "compression.json")
        pipeline.distillation_ = read_json(path, "distillation.json")
        return pipeline


def data_notes(prepared: Any) -> list[str]:
    """What cleaning and splitting did, in the order the CLI prints them as ``data:`` lines."""
    return list(prepared.cleaning.messages) + list(prepared.messages)


def _warn_notes(notes: list[str]) -> None:
    """Each note as a ``DataNote`` warning pointing at the caller's ``fit`` line, as scikit-learn
    reports data problems; the default filter shows each distinct note once."""
    for note in notes:
        warnings.warn(f"data: {note}", DataNote, stacklevel=3)
