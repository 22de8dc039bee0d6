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


def small_labels(column: pd.Series, fill_value: str) -> list[str] | None:
    """``as_labels`` for a few values in plain Python, or None where the two could differ.

    Handles text, integers and missing values, and integer-valued floats in a float column; other
    mixes (floats among text, bools, pandas NA) go the pandas way.
    """
    values = column.tolist()
    if pd.api.types.is_float_dtype(column.dtype):
        if not all(v != v or (abs(v) < 2**53 and v == int(v)) for v in values):  # v != v: NaN
            return None
        return [fill_value if v != v else str(int(v)) for v in values]
    return value_labels(values, fill_value)


def value_labels(values: list, fill_value: str) -> list[str] | None:
    """``small_labels`` for a list of Python values (a text or mixed column, JSON rows, records)."""
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            out.append(fill_value)
        elif isinstance(v, str):
            out.append(v.strip())
        elif isinstance(v, int) and not isinstance(v, bool):
            out.append(str(v))
        else:
            return None
    return out


def repaired_labels(labels: list[str]) -> list[str]:
    """``clean.repair_cell`` on the labels that need it: exactly what ``repair_text`` changes (it
    looks at non-ASCII, control characters and space runs; the labels are already stripped)."""
    from forgeml.data.repair import repair_cell

    return [label if label.isascii() and label.isprintable() and "  " not in label else repair_cell(label)
            for label in labels]


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
            # Cleaning repaired this column before fit (NFKC: "北京\u3000" → "北京", "Ａ" → "A"), so
            # the vocabulary holds repaired values; values to predict must be repaired the same way.
            "repair": bool(context.clean.repair_text),
        }

    @property
    def vocabulary(self) -> list[str]:
        return self.state["vocabulary"]

    @property
    def repairs(self) -> bool:
        """Whether values are repaired as cleaning repaired the train split (``clean.repair_text``).
        Bundles from before this was recorded: on, the default; a vocabulary entry is its own repair."""
        return bool(self.state.get("repair", True))

    def codes(self, column: pd.Series) -> np.ndarray:
        """Index into the vocabulary; 0 (= "<other>") for rare and never-seen values."""
        if self.repairs:
            from forgeml.data.repair import repair_text

            column = repair_text(column)[0]
        index = pd.Index(self.vocabulary)
        codes = index.get_indexer(as_labels(column, self.state["fill"]))
        return np.where(codes < 0, 0, codes).astype(np.int64)

    def transform(self, column: pd.Series, *, strict: bool = False) -> np.ndarray:
        return self._encode(self.codes(column))

    def transform_small(self, column: pd.Series) -> np.ndarray | None:
        labels = small_labels(column, self.state["fill"])
        return None if labels is None else self._codes_of(labels)

    def _codes_of(self, labels: list[str]) -> np.ndarray:
        if self.repairs:
            labels = repaired_labels(labels)
        lookup = self.__dict__.get("_lookup")
        if lookup is None or lookup[0] is not self.vocabulary:  # built once per fitted vocabulary
            lookup = self._lookup = (self.vocabulary, {value: code for code, value in enumerate(self.vocabulary)})
        return self._encode(np.array([lookup[1].get(label, 0) for label in labels], dtype=np.int64))

    def transform_values(self, values: list) -> np.ndarray | None:
        labels = value_labels(values, self.state["fill"])
        return None if labels is None else self._codes_of(labels)

    def _encode(self, codes: np.ndarray) -> np.ndarray:
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
        if cfg.missing == "mode" and n_missing:  # the default: see features.missingness
            from forgeml.features.missingness import indicator_note, informative_missing

            p_value = informative_missing(column.isna().to_numpy(), context.target)
            if p_value is not None:  # missing becomes a third level: (filled flag, was missing)
                self.state["indicator"] = True
                context.report.messages.append(indicator_note(cfg.name, n_missing, p_value))

    @property
    def has_indicator(self) -> bool:
        return bool(self.state.get("indicator"))

    def transform(self, column: pd.Series, *, strict: bool = False) -> np.ndarray:
        labels = as_labels(column, self.state["fill"])
        flags = (labels == self.state["true_value"]).to_numpy(dtype=np.float32)[:, None]
        if self.has_indicator:
            flags = np.concatenate([flags, column.isna().to_numpy(dtype=np.float32)[:, None]], axis=1)
        return flags

    def transform_small(self, column: pd.Series) -> np.ndarray | None:
        if self.has_indicator:
            return None  # rare enough to take the pandas path
        labels = small_labels(column, self.state["fill"])
        return None if labels is None else self._flags(labels)

    def transform_values(self, values: list) -> np.ndarray | None:
        if self.has_indicator:
            return None
        labels = value_labels(values, self.state["fill"])
        return None if labels is None else self._flags(labels)

    def _flags(self, labels: list[str]) -> np.ndarray:
        return np.array([label == self.state["true_value"] for label in labels], dtype=np.float32)[:, None]

    def output_spec(self) -> OutputSpec:
        columns = (self.name,) + ((f"{self.name}__missing",) if self.has_indicator else ())
        return OutputSpec("dense", width=len(columns), columns=columns)
