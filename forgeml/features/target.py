"""Targets: class labels ↔ codes, and standardised regression values ↔ original units."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import DataError
from forgeml.features.category import as_labels


class ClassTarget:
    """Labels are kept as strings internally; numeric labels (digits 0–9) decode back to ints."""

    def __init__(self, names: list[str], state: dict[str, Any] | None = None):
        self.names = names
        self.state = state or {}

    def fit(self, frame: pd.DataFrame) -> None:
        column = frame[self.names[0]]
        labels = as_labels(column.dropna(), "")
        numeric = pd.api.types.is_numeric_dtype(column) and all(_is_int(v) for v in labels.unique())
        classes = sorted(labels.unique().tolist(), key=(lambda v: int(v)) if numeric else str)
        self.state = {"classes": classes, "numeric": bool(numeric)}

    @property
    def classes(self) -> list[str]:
        return self.state["classes"]

    @property
    def output_size(self) -> int:
        return len(self.classes)

    def encode(self, frame: pd.DataFrame, *, source: str = "data") -> np.ndarray:
        labels = as_labels(frame[self.names[0]], "")
        codes = pd.Index(self.classes).get_indexer(labels)
        if (codes < 0).any():
            unknown = sorted(set(labels[codes < 0]))[:5]
            raise DataError(
                f"target {self.names[0]!r} has labels the model never saw in training: {unknown}",
                where=source,
                hint=f"the model knows {self.classes[:10]}; drop those rows or retrain with them",
            )
        return codes.astype(np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        labels = np.asarray(self.classes, dtype=object)[codes]
        return labels.astype(np.int64) if self.state["numeric"] else labels

    def to_json(self) -> dict[str, Any]:
        return {"kind": "class", "names": self.names, "state": self.state}


class RegressionTarget:
    """Standardised for training (stable losses whatever the units); decoded for users."""

    def __init__(self, names: list[str], state: dict[str, Any] | None = None, *, standardize: bool = True):
        self.names = names
        self.state = state or {}
        self.standardize = standardize

    def _values(self, frame: pd.DataFrame, source: str) -> np.ndarray:
        from forgeml.data.numbers import to_numeric

        # bundles written before targets kept their decimal mark read decimal points
        decimals = self.state.get("decimal") or ["."] * len(self.names)
        columns = [to_numeric(frame[name], decimal).to_numpy(dtype=np.float64) for name, decimal in zip(self.names, decimals)]
        values = np.stack(columns, axis=1)
        bad = np.isnan(values).any(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            name = self.names[int(np.flatnonzero(np.isnan(values[row]))[0])]
            raise DataError(f"target {name!r} value {frame[name].iloc[row]!r} in row {row + 1} is not a number", where=source,
                            hint="regression targets must be numbers: fix or remove that row")
        return values

    def fit(self, frame: pd.DataFrame) -> None:
        """Standardisation learned on the train split, and each target's decimal mark: "3101,66"
        is read as 3101.66 in training, evaluation and any later file, as number features are."""
        from forgeml.data.numbers import decimal_mark

        self.state = {"decimal": [decimal_mark(frame[name]) for name in self.names]}
        values = self._values(frame, "train split")
        if self.standardize:
            std = values.std(axis=0)
            self.state.update(mean=values.mean(axis=0).tolist(), std=np.where(std > 1e-12, std, 1.0).tolist())
        else:
            self.state.update(mean=[0.0] * len(self.names), std=[1.0] * len(self.names))

    @property
    def output_size(self) -> int:
        return len(self.names)

    def raw(self, frame: pd.DataFrame, *, source: str = "data") -> np.ndarray:
        return self._values(frame, source)

    def encode(self, frame: pd.DataFrame, *, source: str = "data") -> np.ndarray:
        return ((self._values(frame, source) - self.state["mean"]) / self.state["std"]).astype(np.float32)

    def decode(self, values: np.ndarray) -> np.ndarray:
        return values * np.asarray(self.state["std"]) + np.asarray(self.state["mean"])

    def to_json(self) -> dict[str, Any]:
        return {"kind": "regression", "names": self.names, "state": self.state, "standardize": self.standardize}


def target_from_json(data: dict[str, Any]) -> ClassTarget | RegressionTarget:
    if data["kind"] == "class":
        return ClassTarget(data["names"], data["state"])
    return RegressionTarget(data["names"], data["state"], standardize=data.get("standardize", True))


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True
