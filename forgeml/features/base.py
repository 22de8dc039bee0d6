"""The feature-type contract and its registry.

A feature type knows how to *fit* state on the train split (JSON only: medians, vocabularies,
bin edges), *transform* a raw column into an array, and what shape that array has, so the model
builder can choose an encoder. Adding a feature type is one module plus one ``register`` line.

Arrays come in three kinds, grouped by ``FeatureSet`` so each batch is a handful of tensors
rather than one per column (slicing 64 tiny tensors per batch would dominate a small MLP):
- ``dense``: float columns, concatenated across features into one matrix;
- ``codes``: one int64 column per feature, embedded (one table per feature);
- ``tokens``: an int64 [N, L] matrix per text feature, padded with the tokenizer's pad id;
- ``images``: a uint8 [N, C, H, W] tensor per image feature, decoded once (the models turn it
  into normalised floats, and augment it in training, batch by batch).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from forgeml.config import FEATURE_CONFIGS


@dataclass(frozen=True)
class OutputSpec:
    """What ``transform`` returns, so models know which encoder to build."""

    kind: str  # "dense" | "codes" | "tokens" | "images"
    width: int = 0  # dense columns, token length, or image side
    cardinality: int = 0  # codes / token vocabulary size
    embedding_dim: int = 0
    columns: tuple[str, ...] = ()  # names of dense columns (reports, feature importance)
    extra: dict[str, Any] | None = None  # kind-specific facts a model needs (pad id, channels, mean/std, ...)


class Feature(ABC):
    """One input column: configuration in, JSON fitted state, arrays out."""

    type_name: ClassVar[str]

    def __init__(self, config: Any, state: dict[str, Any] | None = None):
        self.config = config
        self.state: dict[str, Any] = state or {}

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def is_fitted(self) -> bool:
        return bool(self.state)

    @abstractmethod
    def fit(self, column: pd.Series, context: "FitContext") -> None:
        """Learn state from the train split only (never from validation or test rows)."""

    @abstractmethod
    def transform(self, column: pd.Series, *, strict: bool = False) -> np.ndarray:
        """Raw column → array. ``strict`` (predict time) turns unparsable values into errors."""

    def transform_small(self, column: pd.Series) -> np.ndarray | None:
        """Optional fast path for a few rows (a served request, a one-row predict): exactly what
        ``transform`` returns, without pandas' per-call overhead; None means "use ``transform``"."""
        return None

    def transform_values(self, values: list[Any]) -> np.ndarray | None:
        """Optional fast path for a few records' values (Python scalars, None for missing): exactly
        what ``transform`` returns for the column pandas builds from those records
        (``pd.DataFrame.from_records``), or None to build that column and call ``transform``."""
        return None

    @abstractmethod
    def output_spec(self) -> OutputSpec:
        """Shape of ``transform``'s result; valid once fitted."""

    def missing_mask(self, column: pd.Series) -> np.ndarray:
        """Rows this feature treats as missing (used for ``missing: drop_row``)."""
        return column.isna().to_numpy()

    def transform_rows(self, column: pd.Series, *, strict: bool = False) -> tuple[np.ndarray, dict[int, str]]:
        """``transform`` plus per-row errors (row position → message) for inputs that can fail one
        row at a time, such as image files; the default has none."""
        return self.transform(column, strict=strict), {}

    def notes(self) -> list[str]:
        """Messages for the cleaning report (e.g. unreadable files skipped), once fitted."""
        return []

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config.model_dump(mode="json"), "state": self.state}


@dataclass
class FitContext:
    """What a feature may consult while fitting, beyond its own column."""

    clean: Any  # CleanConfig
    report: Any  # CleaningReport (records fills, clips, repairs)
    seed: int = 0
    checkpoint: str | None = None  # the pretrained text encoder's folder, whose tokenizer text features use
    target: Any = None  # features.missingness.TrainTarget: the train split's target (set by FeatureSet.fit)
    # clean.outliers: auto in an ensemble of trees and networks: a number feature that clips keeps its
    # unclipped values too (FeatureSet's UNCLIPPED_KEY), which the tree members read (workflow.outlier_plan)
    unclipped_copy: bool = False


FEATURE_TYPES: dict[str, type[Feature]] = {}


def register(cls: type[Feature]) -> type[Feature]:
    FEATURE_TYPES[cls.type_name] = cls
    return cls


def feature_from_json(data: dict[str, Any]) -> Feature:
    from forgeml.errors import BundleError

    config_data = data.get("config", {})
    type_name = config_data.get("type")
    if type_name not in FEATURE_TYPES:
        raise BundleError(f"unknown feature type {type_name!r} in features.json", hint="the bundle was made by a newer forgeml or edited by hand")
    config = FEATURE_CONFIGS[type_name].model_validate(config_data)
    return FEATURE_TYPES[type_name](config, data.get("state") or {})


def build_feature(config: Any) -> Feature:
    return FEATURE_TYPES[config.type](config)


def default_embedding_dim(cardinality: int) -> int:
    """fastai's rule of thumb: wide enough to separate, small enough not to overfit."""
    return int(min(32, max(2, round(1.6 * cardinality**0.56))))
