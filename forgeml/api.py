"""The Python API, in the scikit-learn spirit.

>>> from forgeml import Pipeline
>>> p = Pipeline(target="species").fit(frame)        # doctest: +SKIP
>>> p.evaluate(test_frame)["f1_macro"]               # doctest: +SKIP
>>> p.save("bundle/"); Pipeline.load("bundle/").predict(new_frame)   # doctest: +SKIP

The constructor only stores its arguments; ``fit`` does the work and returns ``self``; learned
state ends in ``_``; using a pipeline before ``fit``/``load`` raises ``NotFittedError``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any



from forgeml.config import Config, apply_overrides
from forgeml.errors import ConfigError, NotFittedError


FIT_SHARE_OF_BUDGET = 0.9


class Pipeline:
    """Parameters
    ----------
    target: the column (or columns, for multi-target regression) to predict.
    config: a ``Config`` (or a path to YAML) instead of ``target``.
    model: a model family of ``forgeml.models.families.FAMILIES``: "mlp", "cnn", "rnn", "transformer",
        "pretrained", "gbm", "catboost" or "linear".
    **overrides: dotted config options, e.g. ``{"train.epochs": 20}`` passed as
        ``Pipeline(target="y", overrides={"train.epochs": 20})``.
    """

    def __init__(self, target: str | list[str] | None = None, *, config: Config | str | Path | None = None, model: str | None = None, overrides: dict[str, Any] | None = None):
        self.target = target
        self.config = config
        self.model = model
        self.overrides = overrides or {}

    @classmethod
    def from_config(cls, config: Config | str | Path, **kwargs: Any) -> "Pipeline":
        return cls(config=config, **kwargs)

    # ------------------------------------------------------------------ config
    def build_config(self) -> Config:
        if isinstance(self.config, (str, Path)):
            config = Config.from_yaml(self.config)
        elif isinstance(self.config, Config):
            config = self.config
        elif self.target is not None:
            config = Config(target=self.target)
        else:
            raise ConfigError("a Pipeline needs a target column or a config", hint='Pipeline(target="price") or Pipeline.from_config("config.yaml")')
        overrides = dict(self.overrides)
        if self.model:
            overrides["model.type"] = self.model
        return apply_overrides(config, overrides) if overrides else config

    # ------------------------------------------------------------------ fit
    def fit(self, data: Any, *, validation: Any = None, test: Any = None, checkpoint_dir: Path | None = None, callbacks: list | None = None, resume: bool = False, dist: Any = None) -> "Pipeline":
        from forgeml.models.estimator import FitOptions, build_estimator
        from forgeml.predict import Predictor
        from forgeml.workflow import prepare, val_metrics_fn

        import time

        started = time.monotonic()  # the time budget counts loading and preparing the data too
        prepared = prepare(self.build_config(), data, validation=validation, test=test)
        for callback in callbacks or []:  # what cleaning did (files skipped, rows dropped), before a long fit starts
            if hasattr(callback, "on_data_prepared"):
                callback.on_data_prepared(list(prepared.cleaning.messages) + list(prepared.messages))
        estimator = build_estimator(prepared.config, prepared.task, prepared.featureset.input_spec())
        metrics_fn, direction = val_metrics_fn(prepared.config, prepared.task)
        budget = prepared.config.train.time_budget
        # 90 % of the budget for fitting: evaluation, importance and the report come after it
        deadline = started + budget * FIT_SHARE_OF_BUDGET if budget else None
        options = FitOptions(checkpoint_dir=checkpoint_dir, callbacks=callbacks or [], dist=dist, resume=resume, val_metrics=metrics_fn,
                             monitor_direction=direction, deadline=deadline)
        val_arrays = prepared.arrays.get("validation")
        self.fit_summary_ = estimator.fit(prepared.arrays["train"], prepared.targets["train"], val_arrays, prepared.targets.get("validation"), options)
        self.predictor_ = Predictor(prepared.config, prepared.featureset, prepared.task, estimator)
        self.prepared_ = prepared
        self._evaluate_splits(prepared)
        from forgeml.evaluate.importance import announce_dominance

        announce_dominance(self.importance_, callbacks)  # a leak smell, said where the data: lines went
        self.created_at_ = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return self

    def _evaluate_splits(self, prepared: Any) -> None:
        self.evaluations_: dict[str, Any] = {}
        for split in ("validation", "test"):
            frame = prepared.frames.get(split)
            if frame is not None and len(frame):
                self.evaluations_[split] = self.predictor_.evaluate_frame(frame, source=f"{split} split")
        self.test_split_ = "test" if "test" in self.evaluations_ else "validation"
        self.importance_ = self._importance(prepared)
        self.error_examples_ = self._error_examples(prepared)

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
        return permutation_importance(self.predictor_, prepared.frames[split], evaluation.y_true, seed=prepared.config.train.seed)

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
        return self._check_fitted().predict(data)

    def evaluate(self, data: Any) -> dict[str, Any]:
        """Metrics on labelled data; the report of this evaluation (``report(last_evaluation_)``)
        shows the same worst-error sections as the training report, for these rows."""
        from forgeml.evaluate.examples import error_examples

        predictor = self._check_fitted()
        self.last_evaluation_ = evaluation = predictor.evaluate(data)
        self.last_error_examples_ = error_examples(predictor, evaluation.frame, evaluation.y_true, evaluation.scores)
        if self.last_error_examples_ is not None:
            self.last_error_examples_["where"] = "evaluated data"
        return evaluation.metrics

    # ------------------------------------------------------------------ report and bundle
    def report_inputs(self, evaluation: Any = None, title: str | None = None) -> Any:
        from forgeml.evaluate.report import ReportInputs
        from forgeml.runs.registry import epoch_rows, step_name

        predictor = self._check_fitted()
        prepared = getattr(self, "prepared_", None)
        evaluation = evaluation or getattr(self, "evaluations_", {}).get(getattr(self, "test_split_", "test"))
        task = predictor.task
        history = self.fit_summary_.history if hasattr(self, "fit_summary_") else getattr(self, "loaded_history_", [])
        notes = list(prepared.messages) if prepared else []
        if prepared and not len(prepared.frames.get("validation", [])):
            notes.append("no validation split: early stopping was off and the final epoch's weights were kept")
        if prepared and getattr(self, "test_split_", "test") == "validation":
            notes.append("no test split: the metrics are on the validation split, which also chose the stopping epoch")
        if getattr(self, "importance_", None) or getattr(self, "loaded_importance_", None):
            notes.append("feature importance: each input's contribution to the validation loss — how much the loss grows when that column "
                         "is shuffled (permutation importance; an image or text column counts as one input)")
        step = step_name(predictor.config.model.type)
        if hasattr(self, "fit_summary_"):
            notes.append(f"trained {len(epoch_rows(history))} {step}s in {self.fit_summary_.seconds:.1f} s; best {step.split()[-1]} {self.fit_summary_.best_epoch}"
                         + (" (early stopping)" if self.fit_summary_.stopped_early else ""))
        validation = getattr(self, "evaluations_", {}).get("validation")
        return ReportInputs(
            title=title or f"forgeml — {', '.join(predictor.config.target)}",
            task=task.name,
            targets=list(predictor.config.target),
            model_description=describe_model(predictor),
            metrics=evaluation.metrics if evaluation else {},
            validation_metrics=validation.metrics if validation and evaluation is not validation else None,
            history=history,
            step_name=step,
            y_true=evaluation.y_true if evaluation else None,
            y_proba=evaluation.scores if evaluation is not None and task.is_classification else None,
            y_pred=evaluation.scores if evaluation is not None and not task.is_classification else None,
            class_names=predictor.class_names,
            data_summary=prepared.summary if prepared else getattr(self, "loaded_summary_", None),
            cleaning=prepared.cleaning.to_dict() if prepared else getattr(self, "loaded_cleaning_", None),
            feature_importance=getattr(self, "importance_", None) or getattr(self, "loaded_importance_", None),
            config_yaml=predictor.config.to_yaml(),
            error_examples=self._error_examples_for(evaluation),
            extra_notes=notes,
            leaderboard=getattr(predictor.estimator, "leaderboard", None),
        )

    def _error_examples_for(self, evaluation: Any) -> dict[str, Any] | None:
        """The worst-error examples of the held-out split or of the last ``evaluate`` call."""
        if evaluation is not None and evaluation is getattr(self, "evaluations_", {}).get(getattr(self, "test_split_", "test")):
            return getattr(self, "error_examples_", None)
        if evaluation is not None and evaluation is getattr(self, "last_evaluation_", None):
            return getattr(self, "last_error_examples_", None)
        return None

    def report(self, evaluation: Any = None) -> str:
        from forgeml.evaluate.report import render_report

        return render_report(self.report_inputs(evaluation))

    def save(self, path: str | Path) -> Path:
        from forgeml.bundle import write_bundle

        predictor = self._check_fitted()
        prepared = getattr(self, "prepared_", None)
        metrics = {"task": predictor.task.name, "split": getattr(self, "test_split_", "test"), "test": self.metrics_}
        if getattr(self, "evaluations_", {}).get("validation"):
            metrics["validation"] = self.evaluations_["validation"].metrics
        extra = {
            "history.json": self.fit_summary_.history if hasattr(self, "fit_summary_") else getattr(self, "loaded_history_", []),
            "data_summary.json": prepared.summary if prepared else getattr(self, "loaded_summary_", None),
            "cleaning.json": prepared.cleaning.to_dict() if prepared else getattr(self, "loaded_cleaning_", None),
            "importance.json": getattr(self, "importance_", None) or getattr(self, "loaded_importance_", None),
        }
        return write_bundle(path, predictor, metrics=metrics, report_html=self.report(), model_card=model_card(self), extra=extra)

    @classmethod
    def load(cls, path: str | Path) -> "Pipeline":
        from forgeml.bundle import load_predictor, read_json

        predictor = load_predictor(path)
        pipeline = cls(config=predictor.config)
        pipeline.predictor_ = predictor
        metrics = read_json(path, "metrics.json") or {}
        pipeline.loaded_metrics_ = metrics.get("test", {})
        pipeline.loaded_history_ = read_json(path, "history.json") or []
        pipeline.loaded_summary_ = read_json(path, "data_summary.json")
        pipeline.loaded_cleaning_ = read_json(path, "cleaning.json")
        pipeline.loaded_importance_ = read_json(path, "importance.json")
        return pipeline


def describe_model(predictor: Any) -> str:
    cfg = predictor.config.model
    kinds: dict[str, int] = {}
    for feature in predictor.featureset.features:
        kinds[feature.type_name] = kinds.get(feature.type_name, 0) + 1
    from forgeml.models.families import family_module

    shape = family_module(cfg.type).describe(cfg, kinds)
    inputs = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    members = getattr(predictor.estimator, "members", None)
    if hasattr(predictor.estimator, "model") or members:
        from forgeml.models.linear_skip import LinearSkip

        first = members[0] if members else predictor.estimator
        if isinstance(getattr(first, "model", None), LinearSkip):
            shape += " beside a ridge-started linear path"
    if members:
        shape = f"bag of {len(members)} × {shape}"
    return f"{shape}; inputs: {inputs}; loss: {predictor.task.loss}"


def model_card(pipeline: Pipeline) -> str:
    from forgeml.evaluate.report import metrics_table_rows

    predictor = pipeline.predictor_
    config = predictor.config
    rows = metrics_table_rows(pipeline.metrics_, predictor.task.name)
    lines = [
        f"# Model card — {' '.join(', '.join(config.target).split())}",
        "",
        f"- **Task**: {predictor.task.name} ({predictor.task.loss} loss)",
        f"- **Model**: {describe_model(predictor)}",
        f"- **Created**: {getattr(pipeline, 'created_at_', '')}",
        f"- **Training data**: {getattr(getattr(pipeline, 'prepared_', None), 'source', 'unknown')}",
        "",
        "## Inputs",
        "",
        "| column | type | note |",
        "| --- | --- | --- |",
        *[f"| {_cell(f.name)} | {_cell(f.type)} | {_cell(f.note or '')} |" for f in config.features],
        "",
        "## Held-out metrics",
        "",
        "| metric | value |",
        "| --- | --- |",
        *[f"| {_cell(name)} | {_cell(value)} |" for name, value in rows],
        "",
        "## Intended use and limits",
        "",
        "Predicts from rows shaped like the training data. Categories not seen in training are",
        "treated as '<other>'; numbers far outside the training range are clipped to the limits",
        "learned on the train split. Check the report's data section for what was dropped or filled.",
        "",
    ]
    return "\n".join(lines)


def _cell(value: object) -> str:
    """Text for one markdown table cell: a ``|`` in a column name or category value ("A|B")
    would end the cell and shift the row, a newline would end the table."""
    return " ".join(str(value).split()).replace("\\", "\\\\").replace("|", "\\|")
