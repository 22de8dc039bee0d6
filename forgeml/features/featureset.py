"""All of a run's features together: fit on train, transform any split into a few big arrays."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import SchemaError
from forgeml.features.base import Feature, FitContext, OutputSpec, build_feature, feature_from_json
from forgeml.features.target import ClassTarget, RegressionTarget, target_from_json


# Up to this many rows, features may take their plain-Python fast path (``Feature.transform_small``):
# pandas' fixed cost per call dominates there (bench/predict_latency.py).
SMALL_ROWS = 64


@dataclass
class InputSpec:
    """The shapes a model's input encoders must accept; derived from fitted features."""

    dense_columns: list[str] = field(default_factory=list)
    codes: list[tuple[str, int, int]] = field(default_factory=list)  # (feature, cardinality, dim)
    tokens: list[tuple[str, int, int, int]] = field(default_factory=list)  # (feature, vocab, dim, length)

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
        for feature in self.features:
            feature.fit(train[feature.name], context)
        self.target.fit(train)
        return self

    def check_columns(self, frame: pd.DataFrame, *, source: str) -> None:
        missing = [name for name in self.input_names if name not in frame.columns]
        if missing:
            raise SchemaError(
                f"missing input column(s) {missing}",
                where=source,
                hint=f"the model was trained on {self.input_names}; add the column (blank values are fine)",
            )

    def transform(self, frame: pd.DataFrame, *, strict: bool = False, source: str = "data") -> dict[str, np.ndarray]:
        """Arrays keyed "dense", "codes" and "tokens.<feature>"; see ``features.base``."""
        self.check_columns(frame, source=source)
        dense, codes, arrays = [], [], {}
        small = len(frame) <= SMALL_ROWS
        for feature in self.features:
            column = frame[feature.name]
            values = feature.transform_small(column) if small else None
            if values is None:
                values = feature.transform(column, strict=strict)
            kind = feature.output_spec().kind
            if kind == "dense":
                dense.append(values)
            elif kind == "codes":
                codes.append(values)
            else:
                arrays[f"tokens.{feature.name}"] = values
        rows = len(frame)
        arrays["dense"] = np.concatenate(dense, axis=1) if dense else np.zeros((rows, 0), np.float32)
        arrays["codes"] = np.stack(codes, axis=1) if codes else np.zeros((rows, 0), np.int64)
        return arrays

    def input_spec(self) -> InputSpec:
        spec = InputSpec()
        for feature in self.features:
            out: OutputSpec = feature.output_spec()
            if out.kind == "dense":
                spec.dense_columns.extend(out.columns)
            elif out.kind == "codes":
                spec.codes.append((feature.name, out.cardinality, out.embedding_dim))
            else:
                spec.tokens.append((feature.name, out.cardinality, out.embedding_dim, out.width))
        return spec

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
