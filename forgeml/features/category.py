"""Category and binary features: vocabularies fitted on train, rare and unseen values folded."""
from __future__ import annotations

import numpy as np
import pandas as pd

from forgeml.features.base import Feature, FitContext, OutputSpec, default_embedding_dim, register

OTHER = "<other>"


def as_labels(column: pd.Series, fill_value: str) -> pd.Series:
    """Values as strings, with integer-valued floats written as ints (3.0 → "3") and missing filled.

    Category values may arrive as numbers (a parquet int column) or as text (a CSV): both must map
    to the same vocabulary entry at train and predict time.
    """
    if pd.api.types.is_float_dtype(column):
        as_int = column.dropna()
        if (as_int == as_int.round()).all():
            column = column.astype("Int64")
    labels = column.astype("string").str.strip()
    return labels.fillna(fill_value).astype(object)


@register
class CategoryFeature(Feature):
    type_name = "category"

    def fit(self, column: pd.Series, context: FitContext) -> None:
        cfg = self.config
        n_missing = int(column.isna().sum())
        fill = cfg.fill_value
        if cfg.missing == "mode" and column.notna().any():
            fill = str(as_labels(column.dropna(), cfg.fill_value).mode().iloc[0])
        if n_missing:
            context.report.record_missing(cfg.name, n_missing, cfg.missing, fill)
        counts = as_labels(column, fill).value_counts()
        kept = counts[counts >= cfg.min_count].index[: cfg.max_categories]
        self.state = {
            "fill": fill,
            "vocabulary": [OTHER] + sorted(str(v) for v in kept),
            "folded": int(len(counts) - len(kept)),
        }

    @property
    def vocabulary(self) -> list[str]:
        return self.state["vocabulary"]

    def codes(self, column: pd.Series) -> np.ndarray:
        """Index into the vocabulary; 0 (= "<other>") for rare and never-seen values."""
        index = pd.Index(self.vocabulary)
        codes = index.get_indexer(as_labels(column, self.state["fill"]))
        return np.where(codes < 0, 0, codes).astype(np.int64)

    def transform(self, column: pd.Series, *, strict: bool = False) -> np.ndarray:
        codes = self.codes(column)
        if self.config.encoding == "onehot":
            return np.eye(len(self.vocabulary), dtype=np.float32)[codes]
        return codes

    def output_spec(self) -> OutputSpec:
        size = len(self.vocabulary)
        if self.config.encoding == "onehot":
            return OutputSpec("dense", width=size, columns=tuple(f"{self.name}={v}" for v in self.vocabulary))
        dim = self.config.embedding_dim or default_embedding_dim(size)
        return OutputSpec("codes", cardinality=size, embedding_dim=dim)


TRUE_WORDS = ("1", "true", "yes", "y", "t", "是", "positive", "pos")


@register
class BinaryFeature(Feature):
    type_name = "binary"

    def fit(self, column: pd.Series, context: FitContext) -> None:
        cfg = self.config
        labels = as_labels(column.dropna(), "")
        values = sorted(labels.unique().tolist())
        fill = cfg.fill_value if cfg.missing == "constant" and cfg.fill_value is not None else (labels.mode().iloc[0] if len(labels) else "")
        n_missing = int(column.isna().sum())
        if n_missing:
            context.report.record_missing(cfg.name, n_missing, cfg.missing, fill)
        true_value = cfg.true_value
        if true_value is None:
            true_value = next((v for v in values if v.lower() in TRUE_WORDS), values[-1] if values else "")
        self.state = {"values": values, "true_value": str(true_value), "fill": str(fill)}

    def transform(self, column: pd.Series, *, strict: bool = False) -> np.ndarray:
        labels = as_labels(column, self.state["fill"])
        return (labels == self.state["true_value"]).to_numpy(dtype=np.float32)[:, None]

    def output_spec(self) -> OutputSpec:
        return OutputSpec("dense", width=1, columns=(self.name,))
