"""The flow every entry point shares: load → resolve config → clean → split → fit features →
train → evaluate. The CLI, the Python API and (later) tuning all call these functions, so they
cannot disagree about what "train on this CSV" means.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeml.config import Config, apply_overrides
from forgeml.errors import ConfigError, DataError


@dataclass
class Prepared:
    """Data ready for an estimator: fitted features, arrays and targets per split."""

    config: Config  # resolved: task and features filled in
    task: Any  # models.tasks.Task
    featureset: Any  # features.featureset.FeatureSet
    frames: dict[str, pd.DataFrame]
    arrays: dict[str, dict[str, np.ndarray]]
    targets: dict[str, np.ndarray]
    cleaning: Any  # data.clean.CleaningReport
    summary: dict[str, Any]
    source: str
    messages: list[str] = field(default_factory=list)


def load_config(source: Path, target: list[str] | None, model: str | None, overrides: dict[str, Any]) -> tuple[Config, Path]:
    """What ``forgeml train`` and ``forgeml tune`` read from their arguments: a YAML config, or a
    data file plus --target, with --model and the --set overrides applied; returns (config, data path)."""
    if source.suffix.lower() in (".yaml", ".yml"):
        config = Config.from_yaml(source)
        if config.data.path is None:
            raise ConfigError("the config names no data file", where=str(source), hint="set data.path, relative to the config file")
        data = Path(config.data.path)
        data = data if data.is_absolute() else (source.parent / data)
        if target:
            overrides["target"] = target
    else:
        if not target:
            raise ConfigError("which column should the model predict?", where=str(source), hint="add --target COLUMN (or pass a config.yaml)")
        # the file goes into the run's config.yaml and the report (absolute: the config can be re-run from the run folder)
        config = Config(target=target, data={"path": str(source.resolve())})
        data = source
    if model:
        overrides["model.type"] = model
    new_target = overrides.pop("target", None)  # from --target, or from --set target=...
    if new_target:
        retargeted = Config.from_dict({**config.model_dump(mode="json"), "target": new_target}, source="--target")
        if retargeted.target != config.target:  # the config's task was inferred for its old target
            retargeted = Config.from_dict({**retargeted.model_dump(mode="json"), "task": "auto"}, source="--target")
        config = retargeted
    return (apply_overrides(config, overrides) if overrides else config), data


def resolve_config(config: Config, frame: pd.DataFrame, source: str) -> Config:
    """Fill in what the user left to inference: the task, the input features, dropped columns."""
    from forgeml.data.infer import infer_features, infer_task

    task = infer_task(frame, config.target) if config.task == "auto" else config.task
    raw = config.model_dump(mode="json")
    raw["task"] = task
    if not config.features:
        usable = frame.drop(columns=[c for c in config.data.drop if c in frame.columns])
        if config.data.split.column:
            usable = usable.drop(columns=[config.data.split.column], errors="ignore")
        features, dropped = infer_features(usable, config.target)
        raw["features"] = [f.model_dump(mode="json") for f in features]
        raw["data"]["drop"] = sorted(set(config.data.drop) | set(dropped))
        raw["data"]["drop_reasons"] = {**config.data.drop_reasons, **dropped}
    else:
        both = [f.name for f in config.features if f.name in config.target]
        if both:  # e.g. `train config.yaml --target price` with price among the inferred inputs
            raise ConfigError(f"column(s) {both} are both a target and an input feature", where="config features",
                              hint="remove them from features in the config, or choose another target")
        absent = [f.name for f in config.features if f.name not in frame.columns]
        if absent:
            raise DataError(f"configured feature column(s) {absent} are not in the data", where=source, hint="fix config.features or the data")
    _resolve_auto_model(raw)
    _resolve_tokenizers(raw)
    _fold_validation_into_train(raw)
    return Config.from_dict(raw, source="resolved config")


def _resolve_auto_model(raw: dict[str, Any]) -> None:
    """``model.type: auto`` (the default) becomes the family the data calls for (models/auto.py)."""
    if raw["model"].get("type") != "auto":
        return
    from forgeml.models.auto import resolve

    private = (raw.get("train") or {}).get("privacy", {}).get("epsilon") is not None
    raw["model"], _ = resolve(raw["model"], [feature.get("type") for feature in raw["features"]], private=private)


def _fold_validation_into_train(raw: dict[str, Any]) -> None:
    """A family that validates on out-of-fold predictions (``VALIDATES_OUT_OF_FOLD``: the
    ensemble) needs no validation split: with the default 70/15/15 its 15 % go to training
    (85/0/15), so the members learn from every non-test row. A share the user changed stays."""
    from forgeml.config import SplitConfig
    from forgeml.models.families import FAMILIES, family_module

    family = (raw.get("model") or {}).get("type")
    if family not in FAMILIES or not getattr(family_module(family), "VALIDATES_OUT_OF_FOLD", False):
        return
    split, default = raw["data"]["split"], SplitConfig()
    if split.get("validation_path") or split.get("column") or (split["train"], split["validation"]) != (default.train, default.validation):
        return
    split["train"], split["validation"] = round(default.train + default.validation, 10), 0.0


def _resolve_tokenizers(raw: dict[str, Any]) -> None:
    """``tokenizer: auto`` → the pretrained encoder's own tokenizer, or a word-level one trained here."""
    text_encoder = (raw.get("model") or {}).get("text") or {}
    pretrained = text_encoder.get("type") == "pretrained"
    if pretrained:  # fail before any data work when the folder is wrong
        from forgeml.features.text import check_checkpoint

        check_checkpoint(text_encoder.get("checkpoint"))
    for feature in raw.get("features", []):
        if feature.get("type") == "text" and feature.get("tokenizer", "auto") == "auto":
            feature["tokenizer"] = "pretrained" if pretrained else "word"
        if pretrained and feature.get("type") == "text" and feature.get("tokenizer") != "pretrained":
            raise ConfigError(f"text feature {feature['name']!r} uses the {feature['tokenizer']!r} tokenizer, but the pretrained encoder needs its own",
                              where=f"features: {feature['name']}", hint="set its tokenizer to 'pretrained' (or 'auto')")


def load_frame(data: Any, config: Config, *, other_file: bool = False) -> pd.DataFrame:
    """The training data, read in the configured encoding (sniffed if unset). An ``other_file``
    (separate validation or test data) is sniffed on its own, trying that encoding after UTF-8."""
    from forgeml.data.load import load_table

    if other_file:
        return load_table(data, fallback_encoding=config.data.encoding, fallback_delimiter=config.data.delimiter)
    return load_table(data, encoding=config.data.encoding, delimiter=config.data.delimiter)


def prepare(config: Config, data: Any, *, validation: Any = None, test: Any = None) -> Prepared:
    from forgeml.data import clean
    from forgeml.data.infer import drop_notes
    from forgeml.data.load import describe_source
    from forgeml.data.split import split_frame
    from forgeml.evaluate.summary import summarize_data
    from forgeml.features import FitContext
    from forgeml.features.featureset import FeatureSet
    from forgeml.models.tasks import Task

    source = describe_source(data)
    frame = load_frame(data, config)
    config = resolve_config(config, frame, source)
    if config.data.path is None and isinstance(data, (str, os.PathLike)):  # the report and bundle name the file
        config = Config.from_dict({**config.model_dump(mode="json"), "data": {**config.data.model_dump(mode="json"), "path": str(Path(data).resolve())}})
    # `is not None`, not `or`: a DataFrame has no truth value
    validation_df = load_frame(validation if validation is not None else config.data.split.validation_path, config, other_file=True) if (validation is not None or config.data.split.validation_path) else None
    test_df = load_frame(test if test is not None else config.data.split.test_path, config, other_file=True) if (test is not None or config.data.split.test_path) else None

    feature_types = {f.name: f.type for f in config.features}
    summary = summarize_data(frame, feature_types, config.data.drop_reasons, config.target)
    keep = [f.name for f in config.features] + list(config.target) + ([config.data.split.column] if config.data.split.column else [])
    report = clean.CleaningReport(rows_in=len(frame))
    report.messages.extend(frame.attrs.get("notes", []))  # e.g. an image folder's ignored files
    report.messages.extend(drop_notes(config.data.drop_reasons))  # an id column dropped: said before training

    def tidy(part: pd.DataFrame, *, dedupe: bool, name: str = "") -> pd.DataFrame:
        part = part[[c for c in keep if c in part.columns]]
        if config.clean.repair_text:
            columns = [f.name for f in config.features if f.type in ("text", "category")]
            part = clean.repair_text_columns(part, columns, report)
        numbers = {f.name: f.decimal for f in config.features if f.type == "number"}
        part = clean.blank_unparsable_numbers(part, list(numbers), report, part=f" in the {name} data" if name else "",
                                              decimals=numbers)
        if dedupe and config.clean.duplicates:
            part = clean.drop_duplicates(part, report, natural_kept=config.clean.duplicates == "auto")
        return clean.drop_missing_target(part, config.target, report)

    owned = [frame]  # tidy gets the only reference: the raw frame's columns die as cleaning replaces them
    del frame
    frame = tidy(owned.pop(), dedupe=True)
    validation_df = tidy(validation_df, dedupe=False, name="validation") if validation_df is not None else None
    test_df = tidy(test_df, dedupe=False, name="test") if test_df is not None else None
    featureset = FeatureSet.from_config(config, config.task)
    drop_rows = featureset.drop_row_mask(frame)
    report.messages.extend(featureset.notes())  # unreadable image files, named
    if drop_rows.any():
        frame = frame[~drop_rows]
        report.rows_out = int(report.rows_out) - int(drop_rows.sum())
        report.messages.append(f"dropped {int(drop_rows.sum())} rows missing a feature configured with missing: drop_row (or whose image file is unreadable)")
    from forgeml.data.infer import infer_task

    infer_task(frame, config.target)  # after cleaning there must still be two classes
    if frame is data:  # never empty the caller's own DataFrame (load_frame copies, so this is belt and braces)
        frame = frame.copy(deep=False)
    split = split_frame(frame, config.target, config.task, config.data.split, validation_df=validation_df, test_df=test_df, consume=True)
    frames = dict(split.frames)
    messages = list(split.messages)
    del frame, split  # the split frames are copies: keeping the whole frame too doubles the peak
    outliers, unclipped_copy = outlier_plan(config)
    if outliers.outlier_action == "drop" and outliers.outliers != "none":
        numbers = [f.name for f in featureset.features if f.type_name == "number"]
        values = {name: featureset.features[featureset.input_names.index(name)].parse(frames["train"][name]) for name in numbers}
        frames["train"] = clean.drop_outlier_rows(frames["train"], numbers, values, outliers.outliers, outliers.outlier_threshold, report).reset_index(drop=True)
    from forgeml.train.privacy_checks import check_private_run

    config, privacy_notes = check_private_run(config, len(frames["train"]))  # before any fitting: refusals cost nothing yet
    messages.extend(privacy_notes)
    from forgeml.models.bagging import resolve_folds

    has_images = any(f.type == "image" for f in config.features)
    folds = resolve_folds(config.train.bagging_folds, config.model.type, len(frames["train"]), has_images=has_images)
    if folds != config.train.bagging_folds:  # written into the resolved config, so the bundle knows its members
        from forgeml.config import apply_overrides

        config = apply_overrides(config, {"train.bagging_folds": folds})
    checkpoint = getattr(getattr(config.model, "text", None), "checkpoint", None)
    featureset.fit(frames["train"], FitContext(outliers, report, config.data.split.seed, checkpoint, unclipped_copy=unclipped_copy))
    task = Task.resolve(config.task, config.train.loss, featureset.target.output_size)
    if config.train.loss == "poisson":
        negative = [n for n in config.target if (featureset.target.raw(frames["train"], source="train split")[:, config.target.index(n)] < 0).any()]
        if negative:
            raise ConfigError(f"poisson loss needs non-negative targets; {negative} has negative values", where="train.loss", hint="use mse or huber")
    arrays = {name: featureset.transform(part, source=f"{name} split") for name, part in frames.items()}
    targets = {name: featureset.target.encode(part, source=f"{name} split") for name, part in frames.items()}
    return Prepared(config, task, featureset, frames, arrays, targets, report, summary, source, messages)


def outlier_plan(config: Config) -> tuple[Any, bool]:
    """``clean.outliers`` as the features apply it, and whether number features keep an unclipped
    copy. ``auto`` follows the model family (``models.families.reads_numbers``): no clipping for a
    tree family, iqr for the rest, iqr plus the unclipped copy for an ensemble (its trees read the
    copy). An explicit method applies to every model, as does dropping rows (they are shared)."""
    from forgeml.models.families import reads_numbers

    cleaning = config.clean
    if cleaning.outliers != "auto":
        return cleaning, False
    reads = "clipped" if cleaning.outlier_action == "drop" else reads_numbers(config.model.type)
    method = "none" if reads == "unclipped" else "iqr"
    return cleaning.model_copy(update={"outliers": method}), reads == "both"


def light_val_metrics(task: Any) -> Any:
    """Per-epoch validation metrics: the cheap, informative ones (full metrics come at the end).

    Plain numpy, equal to scikit-learn's accuracy, macro-F1 (zero_division=0), R² and MAE
    (tests/test_workflow_metrics.py): scikit-learn's argument checks cost ~10 ms a call, as much
    as a whole epoch of a small tabular model, and this runs every epoch of every bagged member.
    """
    return _classification_metrics if task.is_classification else _regression_metrics


def _classification_metrics(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    y_true, y_pred = np.asarray(y_true).ravel(), scores.argmax(axis=1)
    labels, index = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    truth, guess = index[: len(y_true)], index[len(y_true):]
    hits = truth == guess
    true_positives = np.bincount(truth[hits], minlength=len(labels))
    support, predicted = np.bincount(truth, minlength=len(labels)), np.bincount(guess, minlength=len(labels))
    denominator = support + predicted  # F1 = 2·TP / (|true| + |predicted|); 0 where both are empty
    f1 = np.divide(2 * true_positives, denominator, out=np.zeros(len(labels)), where=denominator > 0)
    return {"accuracy": float(hits.mean()) if len(hits) else 0.0, "f1_macro": float(f1.mean()) if len(labels) else 0.0}


def _regression_metrics(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(scores, dtype=np.float64).reshape(len(y_true), -1)
    residual = ((y_true - y_pred) ** 2).sum(axis=0)
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    # scikit-learn's force_finite: a constant target scores 1 when predicted exactly, else 0
    r2 = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1), np.where(residual == 0, 1.0, 0.0))
    return {"r2": float(r2.mean()), "mae": float(np.abs(y_true - y_pred).mean())}


def val_metrics_fn(config: Config, task: Any) -> tuple[Any, str]:
    """The per-epoch metrics function and the early-stopping direction for the watched metric."""
    from forgeml.evaluate.metrics import compute_metrics, metric_direction

    name = config.train.early_stopping_metric
    light = light_val_metrics(task)
    if name == "loss":
        return light, "min"
    direction = metric_direction(name)
    probe = light(*_probe(task))
    if name in probe:
        return light, direction

    probe_true, probe_scores = _probe_full(task)
    available = compute_metrics(task.name, probe_true, **probe_scores)
    if name not in available or not isinstance(available[name], (int, float)):
        known = sorted(k for k, v in available.items() if isinstance(v, (int, float)) and k != "n")
        raise ConfigError(f"{name!r} is not a {task.name} metric, so early stopping could not watch it",
                          where="train.early_stopping_metric", hint=f"use 'loss' or one of {', '.join(known)}")

    def full(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        metrics = compute_metrics(task.name, y_true, **({"y_proba": scores} if task.is_classification else {"y_pred": scores}))
        return {**light(y_true, scores), name: metrics.get(name)}

    return full, direction


def _probe_full(task: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Labels and scores on which every metric of the task is defined (both classes present)."""
    if task.is_classification:
        classes = max(2, int(getattr(task, "n_targets", 2) or 2))
        y = np.arange(classes * 2) % classes
        proba = np.full((len(y), classes), 0.1 / max(classes - 1, 1))
        proba[np.arange(len(y)), y] = 0.9
        return y, {"y_proba": proba / proba.sum(axis=1, keepdims=True)}
    columns = max(1, int(getattr(task, "n_targets", 1) or 1))
    y = np.tile(np.array([[0.0], [1.0], [2.0]]), (1, columns))
    return y, {"y_pred": y + np.array([[0.1], [-0.1], [0.2]])}


def _probe(task: Any) -> tuple[np.ndarray, np.ndarray]:
    if task.is_classification:
        return np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]])
    return np.array([0.0, 1.0]), np.array([0.1, 0.9])

