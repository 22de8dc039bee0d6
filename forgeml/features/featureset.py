"""All of a run's features together: fit on train, transform any split into a few big arrays."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from forgeml.errors import SchemaError
from forgeml.features.base import Feature, FitContext, OutputSpec, build_feature, feature_from_json
from forgeml.features.target import ClassTarget, RegressionTarget, target_from_json


# The "dense" matrix with the numbers unclipped, when number features clip for the networks only
# (clean.outliers: auto in an ensemble, workflow.outlier_plan): the ensemble's tree members read it
# as their "dense" (models.ensemble.member_inputs). Absent otherwise, and in bundles made before it.
UNCLIPPED_KEY = "dense_unclipped"

# Up to this many rows, features may take their plain-Python fast path (``Feature.transform_small``):
# pandas' fixed cost per call dominates there (bench/predict_latency.py).
SMALL_ROWS = 64


def column_values(frame: pd.DataFrame) -> list[list[Any]] | None:
    """Each column's values as a list of Python values, in column order; None if a column is
    categorical (``load_table`` turns those into plain values first: the caller takes that path).

    Reads pandas' per-column arrays directly (``DataFrame._iter_column_arrays``, in pandas 2 and 3):
    ``frame[name]`` builds a Series per column and ``to_numpy(dtype=object)`` converts every cell,
    each costing more than a one-row prediction (bench/predict_latency.py). Falls back to the
    object matrix where a pandas version lacks it; the values are the same either way
    (tests/test_predict_fast.py)."""
    by_block = _block_values(frame)
    if by_block is not None:
        return by_block
    iterate = getattr(frame, "_iter_column_arrays", None)
    if iterate is None:
        if any(isinstance(dtype, pd.CategoricalDtype) for dtype in frame.dtypes):
            return None
        matrix = frame.to_numpy(dtype=object)
        return [matrix[:, j].tolist() for j in range(matrix.shape[1])]
    values = []
    for array in iterate():
        if isinstance(array, pd.Categorical):
            return None
        # Arrow-backed text iterates to the same str / NaN values twice as fast as its tolist (which
        # converts through to_numpy); other arrays' tolist gives Python scalars (iterating a nullable
        # integer array would give numpy ones)
        values.append(list(array) if isinstance(array, pd.arrays.ArrowStringArray) else array.tolist())
    return values


def _block_values(frame: pd.DataFrame) -> list[list[Any]] | None:
    """``column_values`` read block by block: a frame's numbers sit in a few 2-D numpy blocks
    (one per dtype), and one ``tolist`` per block gives every column's Python values at once,
    where ``_iter_column_arrays`` costs about a microsecond per column (breast_cancer's 30
    numbers: 43 → 10 µs). None (the per-column path decides) unless every block is a 2-D numpy
    array or a one-column array of text, nullable numbers or booleans."""
    blocks = getattr(getattr(frame, "_mgr", None), "blocks", None)
    if blocks is None:
        return None
    values: list[Any] = [None] * frame.shape[1]
    try:
        for block in blocks:
            array, positions = block.values, block.mgr_locs.as_array.tolist()
            if type(array) is np.ndarray and array.ndim == 2:
                for position, column in zip(positions, array.tolist()):
                    values[position] = column
            elif isinstance(array, pd.arrays.ArrowStringArray) and len(positions) == 1:
                values[positions[0]] = list(array)  # as column_values: iterating is twice as fast as its tolist
            elif isinstance(array, (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)) and len(positions) == 1:
                values[positions[0]] = array.tolist()
            else:
                return None  # categorical, dates, anything else: the per-column path
    except AttributeError:  # a pandas whose blocks look otherwise
        return None
    return values


class TokenInput(NamedTuple):
    feature: str
    vocab: int
    dim: int
    length: int
    pad_id: int = 0
    pretrained: dict[str, Any] | None = None  # the checkpoint's config.json, for type 'pretrained'


class ImageInput(NamedTuple):
    feature: str
    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: dict[str, Any] | None = None  # None: no augmentation


@dataclass
class InputSpec:
    """The shapes a model's input encoders must accept; derived from fitted features."""

    dense_columns: list[str] = field(default_factory=list)
    codes: list[tuple[str, int, int]] = field(default_factory=list)  # (feature, cardinality, dim)
    tokens: list[TokenInput] = field(default_factory=list)
    images: list[ImageInput] = field(default_factory=list)
    dense_groups: list[tuple[str, int]] = field(default_factory=list)  # (feature, its columns in "dense", in order)

    @property
    def dense_width(self) -> int:
        return len(self.dense_columns)


class FeatureSet:
    def __init__(self, features: list[Feature], target: ClassTarget | RegressionTarget):
        self.features = features
        self.target = target

    @classmethod
    def from_config(cls, config: Any, task: str) -> "FeatureSet":
        features = [build_feature(f) for f in config.features]
        poisson = config.train.loss == "poisson"
        target = RegressionTarget(config.target, standardize=not poisson) if task == "regression" else ClassTarget(config.target)
        return cls(features, target)

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.features]

    def fit(self, train: pd.DataFrame, context: FitContext) -> "FeatureSet":
        self.__dict__.pop("_kinds", None)  # output kinds are read from the fitted state
        self.__dict__.pop("_block", None)
        self.__dict__.pop("_twins", None)
        self.target.fit(train)  # first: features may ask whether their blanks tell something about it
        if context.target is None:
            context = replace(context, target=self._train_target(train))
        for feature in self.features:
            feature.fit(train[feature.name], context)
        return self

    def _train_target(self, train: pd.DataFrame) -> Any:
        """The train split's target for ``features.missingness``: class codes, or the first target's values."""
        from forgeml.features.missingness import TrainTarget

        if isinstance(self.target, ClassTarget):
            return TrainTarget(self.target.encode(train, source="train split"), is_class=True)
        return TrainTarget(self.target.raw(train, source="train split")[:, 0], is_class=False)

    def check_columns(self, frame: pd.DataFrame, *, source: str) -> None:
        missing = [name for name in self.input_names if name not in frame.columns]
        if missing:
            raise SchemaError(
                f"missing input column(s) {missing}",
                where=source,
                hint=f"the model was trained on {self.input_names}; add the column (blank values are fine)",
            )

    def transform(self, frame: pd.DataFrame, *, strict: bool = False, source: str = "data") -> dict[str, np.ndarray]:
        """Arrays keyed "dense", "codes", "tokens.<feature>" (with its raw strings as "text.<feature>")
        and "images.<feature>"; see ``features.base``."""
        arrays, errors = self.transform_rows(frame, strict=strict, source=source)
        if errors:  # rows that cannot be predicted at all; training drops them before this point
            position, message = next(iter(errors.items()))
            raise SchemaError(f"{len(errors)} row(s) cannot be used; row {position}: {message}", where=source,
                              hint="fix or remove those rows")
        return arrays

    def transform_rows(self, frame: pd.DataFrame, *, strict: bool = False, source: str = "data") -> tuple[dict[str, np.ndarray], dict[int, str]]:
        """Arrays, and errors by row position for rows a feature could not read (their arrays hold
        placeholders); the Predictor reports those rows and predicts the rest."""
        self.check_columns(frame, source=source)
        outputs, errors = [], {}
        small = len(frame) <= SMALL_ROWS
        for feature in self.features:
            column = frame[feature.name]
            values = feature.transform_small(column) if small else None
            feature_errors: dict[int, str] = {}
            if values is None:
                values, feature_errors = feature.transform_rows(column, strict=strict)
            for position, message in feature_errors.items():
                errors.setdefault(position, f"{feature.name}: {message}")
            outputs.append(values)
        arrays = self._with_texts(self._group(outputs, len(frame)), lambda name: frame[name].tolist())
        twins = self._unclipped_twins()
        if twins is not None:  # lenient: a value the clipped twin refused is already among the errors
            self._add_unclipped(arrays, twins[0].transform_rows(frame, source=source)[0]["dense"], twins[1])
        return arrays, dict(sorted(errors.items()))

    def transform_records(self, rows: Sequence[Any]) -> dict[str, np.ndarray] | None:
        """``transform`` of ``pd.DataFrame.from_records(rows)`` without building the frame, for a
        few records (a served request, a one-row predict); None when a column is absent from every
        row or a feature declines (see ``transform_lists``): the caller then builds the frame,
        which also raises the usual errors."""
        if not 0 < len(rows) <= SMALL_ROWS or not all(isinstance(row, Mapping) for row in rows):
            return None
        if not all(any(name in row for row in rows) for name in self.input_names):
            return None
        return self.transform_lists({name: [row.get(name) for row in rows] for name in self.input_names}, len(rows))

    def transform_small_frame(self, frame: pd.DataFrame) -> dict[str, np.ndarray] | None:
        """``transform(frame)`` for a frame of a few rows, read as Python values (``column_values``);
        None when a column is missing or categorical, or a feature declines."""
        if not 0 < len(frame) <= SMALL_ROWS:
            return None
        names = frame.columns.tolist()
        position = {name: j for j, name in enumerate(names)}
        if len(position) != len(names) or not all(name in position for name in self.input_names):
            return None  # duplicate or missing columns: the usual path says so
        values = column_values(frame)
        if values is None:
            return None
        return self.transform_lists({name: values[position[name]] for name in self.input_names}, len(frame))

    def transform_lists(self, columns: Mapping[str, list[Any]], rows: int) -> dict[str, np.ndarray] | None:
        """Arrays from each input column's values as a Python list (``Feature.transform_values``;
        plain number features together, ``NumberBlock``); None as soon as one feature declines."""
        block, in_block = self._number_block()
        outputs: list[np.ndarray | None] = [None] * len(self.features)
        if block is not None:
            matrix = block.transform_values([columns[name] for name in block.names])
            if matrix is None:
                return None
            for column, i in enumerate(in_block):
                outputs[i] = matrix[:, column : column + 1]
        for i, feature in enumerate(self.features):
            if outputs[i] is None:
                outputs[i] = feature.transform_values(columns[feature.name])
                if outputs[i] is None:
                    return None
        arrays = self._with_texts(self._group(outputs, rows), lambda name: list(columns[name]))
        twins = self._unclipped_twins()
        if twins is not None:
            unclipped = twins[0].transform_lists(columns, rows)
            if unclipped is None:
                return None
            self._add_unclipped(arrays, unclipped["dense"], twins[1])
        return arrays

    def _unclipped_twins(self) -> "tuple[FeatureSet, list[tuple[int, int]]] | None":
        """The number features that clip for the networks only (``unclipped_copy`` in their state) as
        twins with the same fill and scaling and no limits, in a FeatureSet of their own (so they take
        the same fast paths), and where each one's columns sit in "dense"; None when there are none
        (every bundle made before clean.outliers: auto). Built once per fit."""
        key = [id(f.state) for f in self.features]
        cached = self.__dict__.get("_twins")
        if cached is None or cached[0] != key:
            twins, places, offset = [], [], 0
            for feature in self.features:
                out = feature.output_spec()
                if out.kind != "dense":
                    continue
                if feature.state.get("unclipped_copy"):
                    state = {k: v for k, v in feature.state.items() if k != "unclipped_copy"}
                    twins.append(type(feature)(feature.config, {**state, "low": None, "high": None}))
                    places.append((offset, out.width))
                offset += out.width
            cached = self._twins = (key, (FeatureSet(twins, self.target), places) if twins else None)
        return cached[1]

    @staticmethod
    def _add_unclipped(arrays: dict[str, np.ndarray], twin_dense: np.ndarray, places: list[tuple[int, int]]) -> None:
        """``arrays[UNCLIPPED_KEY]``: "dense" with the twins' columns in their places."""
        unclipped = arrays["dense"].copy()
        column = 0
        for offset, width in places:
            unclipped[:, offset : offset + width] = twin_dense[:, column : column + width]
            column += width
        arrays[UNCLIPPED_KEY] = unclipped

    def _with_texts(self, arrays: dict[str, np.ndarray], values: Any) -> dict[str, np.ndarray]:
        """Adds ``text.<feature>`` (raw strings, ``text.raw_texts``) for each text feature: models
        that build their own n-gram vocabularies read those, networks read the token ids."""
        for feature in self.features:
            if feature.type_name == "text":
                from forgeml.features.text import TEXT_KEY, raw_texts

                arrays[TEXT_KEY + feature.name] = raw_texts(values(feature.name))
        return arrays

    def _number_block(self) -> tuple["NumberBlock | None", list[int]]:
        """The fitted number features that share one matrix op, and their positions (built once per
        fit; a single such feature gains nothing and keeps its own path)."""
        cached = self.__dict__.get("_block")
        if cached is None or cached[0] != [id(f.state) for f in self.features]:
            from forgeml.features.number import NumberBlock

            in_block = [i for i, feature in enumerate(self.features) if NumberBlock.takes(feature)]
            block = NumberBlock([self.features[i] for i in in_block]) if len(in_block) > 1 else None
            cached = self._block = ([id(f.state) for f in self.features], block, in_block)
        return cached[1], cached[2]

    def _group(self, outputs: list[np.ndarray], rows: int) -> dict[str, np.ndarray]:
        """Per-feature arrays → "dense" (concatenated), "codes" (stacked), "tokens.*"/"images.*"."""
        kinds = self.__dict__.get("_kinds")
        if kinds is None or len(kinds) != len(self.features):  # fixed once fitted
            kinds = self._kinds = [feature.output_spec().kind for feature in self.features]
        dense, codes, arrays = [], [], {}
        for feature, kind, values in zip(self.features, kinds, outputs):
            if kind == "dense":
                dense.append(values)
            elif kind == "codes":
                codes.append(values)
            else:
                arrays[f"{kind}.{feature.name}"] = values
        arrays["dense"] = np.concatenate(dense, axis=1) if dense else np.zeros((rows, 0), np.float32)
        arrays["codes"] = np.stack(codes, axis=1) if codes else np.zeros((rows, 0), np.int64)
        return arrays

    def input_spec(self) -> InputSpec:
        spec = InputSpec()
        for feature in self.features:
            out: OutputSpec = feature.output_spec()
            extra = out.extra or {}
            if out.kind == "dense":
                spec.dense_columns.extend(out.columns)
                spec.dense_groups.append((feature.name, len(out.columns)))
            elif out.kind == "codes":
                spec.codes.append((feature.name, out.cardinality, out.embedding_dim))
            elif out.kind == "tokens":
                spec.tokens.append(TokenInput(feature.name, out.cardinality, out.embedding_dim, out.width,
                                              extra.get("pad_id", 0), extra.get("pretrained")))
            else:
                spec.images.append(ImageInput(feature.name, extra["channels"], out.width, tuple(extra["mean"]),
                                              tuple(extra["std"]), extra.get("augment")))
        return spec

    def notes(self) -> list[str]:
        return [note for feature in self.features for note in feature.notes()]

    def drop_row_mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows to drop because a feature configured ``missing: drop_row`` is missing there."""
        mask = np.zeros(len(frame), dtype=bool)
        for feature in self.features:
            if getattr(feature.config, "missing", None) == "drop_row":
                mask |= feature.missing_mask(frame[feature.name])
        return mask

    def to_json(self) -> dict[str, Any]:
        return {"features": [f.to_json() for f in self.features], "target": self.target.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FeatureSet":
        return cls([feature_from_json(f) for f in data["features"]], target_from_json(data["target"]))
