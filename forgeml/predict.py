"""The Predictor: bundle → transform input → model → decoded predictions.

``forgeml predict``, ``Pipeline.predict``, evaluation and the HTTP server all go through this one
class, so they can never disagree about what the model says.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from forgeml.errors import DataError, SchemaError


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

    def read(self, data: Any) -> pd.DataFrame:
        """A file to predict (or a DataFrame, copied) as a frame, by the loader's rules for this bundle."""
        from forgeml.data.load import load_table

        # data.encoding is the training file's: this file is sniffed on its own, trying it after UTF-8
        return load_table(data, fallback_encoding=self.config.data.encoding, fallback_delimiter=self.config.data.delimiter)

    def scores(self, frame: pd.DataFrame, *, source: str = "data") -> np.ndarray:
        """Probabilities [N, C], or regression predictions in the target's own units [N, T]."""
        if len(frame) == 0:
            raise DataError("no rows to predict", where=source, hint="give at least one row")
        return self._decode_scores(self.estimator.scores(self.featureset.transform(frame, strict=True, source=source)))

    def score_records(self, rows: Sequence[Mapping[str, Any]], *, source: str = "records",
                      to_frame: Callable[[Sequence[Any]], pd.DataFrame] | None = None) -> np.ndarray:
        """``scores`` for records (dicts, column → value), without a DataFrame when every feature
        takes the fast path; otherwise ``to_frame(rows)`` (``pd.DataFrame.from_records`` by default)."""
        arrays = self.featureset.transform_records(rows)
        if arrays is None:
            return self.scores((to_frame or records_frame)(rows), source=source)
        return self._decode_scores(self.estimator.scores(arrays))

    def _decode_scores(self, raw: np.ndarray) -> np.ndarray:
        return raw if self.task.is_classification else self.featureset.target.decode(raw)

    def predict(self, data: Any) -> pd.DataFrame:
        """One row per input row: ``<target>_prediction`` and, for classes, ``<target>_proba_<class>``.

        ``data``: a file path, a DataFrame (never modified) or a list of records (dicts, column →
        value). Image-path columns are copied first, so each prediction can be matched to its file.
        A row whose input cannot be read (a missing or broken image) gets empty predictions and an
        ``error`` entry; the other rows are predicted as usual.
        """
        columns, index = self._predict_columns(data)
        return self._output_frame(columns, index)

    def _output_frame(self, columns: dict[str, Any], index: pd.Index) -> pd.DataFrame:
        """``pd.DataFrame(columns, index=index)``, built without pandas' inference when it is known.

        For the usual answer (numpy columns: float scores and, for classes, the label array) the
        column index is made once per set of names and the labels are typed once per bundle
        (``label_dtype``), then the frame is assembled from those arrays directly. pandas'
        constructor re-infers both on every call, ~0.2 ms: more than a one-row prediction
        (bench/predict_latency.py). Any other column (image paths, errors) takes the constructor."""
        arrays = list(columns.values())
        label = f"{self.config.target[0]}_prediction"
        if not hasattr(pd.DataFrame, "_from_arrays") or not all(
                isinstance(array, np.ndarray) and array.ndim == 1 and (array.dtype != object or name == label)
                for name, array in columns.items()):
            return pd.DataFrame(columns, index=index)
        names = tuple(columns)
        cached = self.__dict__.get("_output_columns")
        if cached is None or cached[0] != names:
            cached = self._output_columns = (names, pd.DataFrame(columns, index=index).columns)
        arrays = [pd.array(array, dtype=self.label_dtype) if array.dtype == object else array for array in arrays]
        blocks = _blocks(arrays)
        if blocks is not None:
            return blocks[0](blocks[1], index=index, columns=cached[1])
        return pd.DataFrame._from_arrays(arrays, columns=cached[1], index=index, verify_integrity=False)

    @property
    def label_dtype(self) -> Any:
        """The dtype pandas gives a column of this bundle's class labels (``str`` for text labels
        in pandas 3, object before): all labels come from ``classes``, so it is the same for every answer."""
        cached = self.__dict__.get("_label_dtype")
        if cached is None:
            cached = self._label_dtype = pd.Series(np.asarray(self.featureset.target.classes, dtype=object)).dtype
        return cached

    def predict_records(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``predict`` for records, answered as records: one dict per row with ``predict``'s columns
        as keys and Python values. For a few rows of numbers, categories and ISO dates this skips
        pandas entirely (the in-process latency path; ``forgeml serve`` scores through it too)."""
        columns, _ = self._predict_columns(rows)
        names = list(columns)
        values = [column if isinstance(column, list) else column.tolist() for column in columns.values()]
        return [dict(zip(names, row)) for row in zip(*values)]

    def _predict_columns(self, data: Any) -> tuple[dict[str, Any], pd.Index]:
        """The output columns of ``predict`` and the index they belong to."""
        from forgeml.data.load import describe_source

        if is_records(data):
            arrays = self.featureset.transform_records(data)
            if arrays is not None:
                return self._columns(self._decode_scores(self.estimator.scores(arrays)), {}, {}), pd.RangeIndex(len(data))
            frame, source = records_frame(data), "records"
        else:
            borrowed, source = borrowed_frame(data), describe_source(data)
            arrays = self.featureset.transform_small_frame(borrowed) if borrowed is not None else None
            if arrays is not None:
                return self._columns(self._decode_scores(self.estimator.scores(arrays)), {}, {}), borrowed.index
            frame = self.read(data)
        if len(frame) == 0:
            raise DataError("no rows to predict", where=source, hint="give at least one row")
        arrays, errors = self.featureset.transform_rows(frame, strict=True, source=source)
        good = np.setdiff1d(np.arange(len(frame)), list(errors))
        width = len(self.class_names or []) if self.task.is_classification else len(self.config.target)
        scores = np.full((len(frame), width), np.nan)
        if len(good):
            scores[good] = self._decode_scores(self.estimator.scores({key: value[good] for key, value in arrays.items()} if errors else arrays))
        images = {f.name: frame[f.name].to_numpy() for f in self.featureset.features if f.type_name == "image"}
        return self._columns(scores, errors, images), frame.index

    def _columns(self, scores: np.ndarray, errors: dict[int, str], images: dict[str, np.ndarray]) -> dict[str, Any]:
        scores = scores.astype(np.float64, copy=False)  # the frame path's float64 columns, whatever the model's dtype
        out: dict[str, Any] = dict(images)
        if self.task.is_classification:
            target = self.config.target[0]
            labels = self.featureset.target.decode((np.nan_to_num(scores) if errors else scores).argmax(axis=1))
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
            out["error"] = [errors.get(row, "") for row in range(len(scores))]
        return out

    def evaluate(self, data: Any) -> Evaluation:
        """Metrics on labelled data; rows with a missing target are dropped and counted."""
        from forgeml.data import clean
        from forgeml.data.load import describe_source

        source = describe_source(data)
        frame = self.read(data)
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


def _blocks(arrays: list[Any]) -> tuple[Callable, list[tuple[Any, np.ndarray]]] | None:
    """The output columns as pandas' blocks, for ``pandas.api.internals.create_dataframe_from_blocks``
    (pandas 3): the float columns (scores) as one 2-D block, each label column as its own array,
    which is the frame ``_from_arrays`` consolidates to, without its per-call dtype grouping
    (a tenth of a one-row prediction). None where that function is absent, or a label column
    would be a plain object array (pandas 2's text labels): ``_from_arrays`` then."""
    create = getattr(getattr(pd.api, "internals", None), "create_dataframe_from_blocks", None)
    if create is None:
        return None
    floats = [i for i, array in enumerate(arrays) if isinstance(array, np.ndarray) and array.dtype == np.float64]
    blocks: list[tuple[Any, np.ndarray]] = [(np.vstack([arrays[i] for i in floats]), np.array(floats))] if floats else []
    for i, array in enumerate(arrays):
        if i in floats:
            continue
        if isinstance(array, np.ndarray):
            blocks.append((array.reshape(1, -1), np.array([i])))  # a numeric label column (int64 classes)
        elif isinstance(array, pd.api.extensions.ExtensionArray) and not isinstance(array, pd.arrays.NumpyExtensionArray):
            blocks.append((array, np.array([i])))
        else:
            return None
    return create, blocks


def is_records(data: Any) -> bool:
    """A list (or tuple) of dicts: rows as JSON or ``DataFrame.to_dict("records")`` give them."""
    return isinstance(data, (list, tuple)) and all(isinstance(row, Mapping) for row in data)


def records_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The DataFrame pandas builds from records: the reference the records fast path must equal."""
    return pd.DataFrame.from_records(list(rows)) if len(rows) else pd.DataFrame()


def borrowed_frame(data: Any) -> pd.DataFrame | None:
    """``data`` itself when it is a small DataFrame whose column names ``load_table`` would keep
    as they are: the copy ``load_table`` makes (it keeps the caller's frame unmodified) costs more
    than the prediction for a row or two, and the fast path only reads. None: load it the usual way."""
    from forgeml.features.featureset import SMALL_ROWS

    if not isinstance(data, pd.DataFrame) or len(data) > SMALL_ROWS or not data.columns.is_unique:
        return None
    if not all(isinstance(name, str) and name == name.strip() for name in data.columns.tolist()):
        return None
    return data


def with_inputs(frame: pd.DataFrame, names: Sequence[str], predictions: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """``frame``'s columns ``names`` followed by the predictions, row for row: a predictions file
    a user can join back (an order id, a customer) without relying on row order."""
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise SchemaError(f"no column {missing[0]!r} to keep", where=source,
                          hint=f"--keep takes input columns: {', '.join(map(str, frame.columns[:12]))}")
    clashes = [name for name in names if name in predictions.columns]
    if clashes:
        raise SchemaError(f"input column {clashes[0]!r} has a prediction column's name", where=source,
                          hint="rename that column in the input, or leave it out of --keep")
    kept = frame[list(dict.fromkeys(names))].reset_index(drop=True)
    return pd.concat([kept, predictions.reset_index(drop=True)], axis=1)
