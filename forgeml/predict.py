"""The Predictor: bundle → transform input → model → decoded predictions.

``forgeml predict``, ``Pipeline.predict``, evaluation and the HTTP server all go through this one
class, so they can never disagree about what the model says.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import DataError


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    y_true: np.ndarray  # class codes, or regression values in original units
    scores: np.ndarray  # probabilities [N, C] or predictions in original units [N, T]
    rows_dropped: int = 0
    frame: pd.DataFrame | None = None  # the rows scored (for the report's worst errors)


class Predictor:
    def __init__(self, config: Any, featureset: Any, task: Any, estimator: Any):
        self.config, self.featureset, self.task, self.estimator = config, featureset, task, estimator

    @property
    def class_names(self) -> list[str] | None:
        return [str(c) for c in self.featureset.target.classes] if self.task.is_classification else None

    def _frame(self, data: Any) -> pd.DataFrame:
        from forgeml.data.load import load_table

        return load_table(data, encoding=self.config.data.encoding, delimiter=self.config.data.delimiter)

    def scores(self, frame: pd.DataFrame, *, source: str = "data") -> np.ndarray:
        """Probabilities [N, C], or regression predictions in the target's own units [N, T]."""
        if len(frame) == 0:
            raise DataError("no rows to predict", where=source, hint="give at least one row")
        arrays = self.featureset.transform(frame, strict=True, source=source)
        raw = self.estimator.scores(arrays)
        return raw if self.task.is_classification else self.featureset.target.decode(raw)

    def predict(self, data: Any) -> pd.DataFrame:
        """One row per input row: ``<target>_prediction`` and, for classes, ``<target>_proba_<class>``.

        Image-path columns are copied first, so each prediction can be matched to its file. A row
        whose input cannot be read (a missing or broken image) gets empty predictions and an
        ``error`` entry; the other rows are predicted as usual.
        """
        from forgeml.data.load import describe_source

        frame = self._frame(data)
        source = describe_source(data)
        if len(frame) == 0:
            raise DataError("no rows to predict", where=source, hint="give at least one row")
        arrays, errors = self.featureset.transform_rows(frame, strict=True, source=source)
        good = np.setdiff1d(np.arange(len(frame)), list(errors))
        width = len(self.class_names or []) if self.task.is_classification else len(self.config.target)
        scores = np.full((len(frame), width), np.nan)
        if len(good):
            raw = self.estimator.scores({key: value[good] for key, value in arrays.items()} if errors else arrays)
            scores[good] = raw if self.task.is_classification else self.featureset.target.decode(raw)
        out: dict[str, Any] = {f.name: frame[f.name].to_numpy() for f in self.featureset.features if f.type_name == "image"}
        if self.task.is_classification:
            target = self.config.target[0]
            labels = self.featureset.target.decode(np.nan_to_num(scores).argmax(axis=1))
            if errors:
                labels = labels.astype(object)
                labels[list(errors)] = None
            out[f"{target}_prediction"] = labels
            for i, name in enumerate(self.class_names or []):
                out[f"{target}_proba_{name}"] = scores[:, i]
        else:
            for i, target in enumerate(self.config.target):
                out[f"{target}_prediction"] = scores[:, i]
        if errors:
            out["error"] = [errors.get(row, "") for row in range(len(frame))]
        return pd.DataFrame(out, index=frame.index)

    def evaluate(self, data: Any) -> Evaluation:
        """Metrics on labelled data; rows with a missing target are dropped and counted."""
        from forgeml.data import clean
        from forgeml.data.load import describe_source

        source = describe_source(data)
        frame = self._frame(data)
        absent = [t for t in self.config.target if t not in frame.columns]
        if absent:
            raise DataError(f"target column(s) {absent} are not in the data", where=source, hint="evaluation needs the true values; use `predict` for unlabelled data")
        report = clean.CleaningReport(rows_in=len(frame))
        frame = clean.drop_missing_target(frame, self.config.target, report).reset_index(drop=True)
        evaluation = self.evaluate_frame(frame, source=source)
        evaluation.rows_dropped = report.target_missing_dropped
        evaluation.frame = frame
        return evaluation

    def evaluate_frame(self, frame: pd.DataFrame, *, source: str) -> Evaluation:
        """Metrics on rows whose targets are all present (held-out splits, cleaned user data)."""
        from forgeml.evaluate.metrics import compute_metrics

        scores = self.scores(frame, source=source)
        if self.task.is_classification:
            y_true = self.featureset.target.encode(frame, source=source)
            metrics = compute_metrics(self.task.name, y_true, y_proba=scores, class_names=self.class_names)
        else:
            y_true = self.featureset.target.raw(frame, source=source)
            metrics = compute_metrics("regression", y_true, y_pred=scores, target_names=self.config.target)
        return Evaluation(metrics, y_true, scores)
