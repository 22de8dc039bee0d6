"""Number features: parse, clip outliers, fill missing values, scale — all fitted on train."""
from __future__ import annotations

import numpy as np
import pandas as pd

from forgeml.errors import SchemaError
from forgeml.features.base import Feature, FitContext, OutputSpec, default_embedding_dim, register


def _yeo_johnson(x: np.ndarray, lmbda: float) -> np.ndarray:
    """Yeo-Johnson power transform; written out so the fitted state is one float, not a pickle."""
    out = np.empty_like(x)
    pos = x >= 0
    if abs(lmbda) > 1e-12:
        out[pos] = ((x[pos] + 1) ** lmbda - 1) / lmbda
    else:
        out[pos] = np.log1p(x[pos])
    if abs(lmbda - 2) > 1e-12:
        out[~pos] = -((-x[~pos] + 1) ** (2 - lmbda) - 1) / (2 - lmbda)
    else:
        out[~pos] = -np.log1p(-x[~pos])
    return out


@register
class NumberFeature(Feature):
    type_name = "number"

    def parse(self, column: pd.Series) -> np.ndarray:
        from forgeml.data.numbers import to_numeric

        return to_numeric(column, self.config.decimal).to_numpy(dtype=np.float64)

    def missing_mask(self, column: pd.Series) -> np.ndarray:
        return np.isnan(self.parse(column))

    def fit(self, column: pd.Series, context: FitContext) -> None:
        from forgeml.data.clean import outlier_limits

        cfg = self.config
        values = self.parse(column)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            finite = np.zeros(1)
        low, high = -np.inf, np.inf
        method = "iqr" if context.clean.outliers == "auto" else context.clean.outliers  # auto: the workflow resolves it per model
        unclipped_copy = False
        if method != "none" and context.clean.outlier_action == "clip":
            low, high = outlier_limits(finite, method, context.clean.outlier_threshold)
            clipped = int(((finite < low) | (finite > high)).sum())
            # a tree splitting between train values sends a value past the limits where it sends the
            # limit itself: only a column whose train values were clipped reads differently unclipped
            unclipped_copy = bool(clipped) and context.unclipped_copy
            if clipped:
                context.report.record_outliers(cfg.name, method, float(low), float(high), clipped=clipped,
                                               note="; the tree members read them unclipped" if unclipped_copy else "")
            finite = np.clip(finite, low, high)
        fill = {
            "mean": lambda: float(finite.mean()),
            "median": lambda: float(np.median(finite)),
            "indicator": lambda: float(np.median(finite)),
            "drop_row": lambda: float(np.median(finite)),
            "mode": lambda: float(pd.Series(finite).mode().iloc[0]),
            "constant": lambda: float(cfg.fill_value if cfg.fill_value is not None else 0.0),
        }[cfg.missing]()
        n_missing = int(np.isnan(values).sum())
        if n_missing:
            context.report.record_missing(cfg.name, n_missing, cfg.missing, fill)
        state: dict = {"low": _finite_or_none(low), "high": _finite_or_none(high), "fill": fill}
        if unclipped_copy:
            state["unclipped_copy"] = True
        if cfg.missing == "median" and n_missing:  # the default: the user chose nothing else
            from forgeml.features.missingness import indicator_note, informative_missing

            p_value = informative_missing(np.isnan(values), context.target)
            if p_value is not None:
                state["indicator"] = True
                context.report.messages.append(indicator_note(cfg.name, n_missing, p_value))
        filled = np.where(np.isnan(values), fill, np.clip(values, low, high))
        if cfg.bins:
            edges = np.unique(np.quantile(filled, np.linspace(0, 1, cfg.bins + 1))[1:-1])
            state["bin_edges"] = edges.tolist()
        else:
            state.update(_fit_scaling(cfg.scaling, filled))
        self.state = state

    def _clip_fill(self, column: pd.Series, strict: bool) -> tuple[np.ndarray, np.ndarray]:
        if strict:
            from forgeml.data.numbers import unparsable_mask

            bad = unparsable_mask(column, self.config.decimal)
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise SchemaError(
                    f"value {column.iloc[row]!r} in row {row + 1} is not a number",
                    where=f"column {self.name!r}",
                    hint="fix or blank that cell; blanks are filled like missing values",
                )
        return self._fill_clip(self.parse(column))

    def _fill_clip(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        missing = np.isnan(values)
        low = self.state["low"] if self.state["low"] is not None else -np.inf
        high = self.state["high"] if self.state["high"] is not None else np.inf
        # np.maximum/np.minimum: np.clip's argument handling costs more than the arithmetic on a few rows
        return np.where(missing, self.state["fill"], np.minimum(np.maximum(values, low), high)), missing

    def transform(self, column: pd.Series, *, strict: bool = False) -> np.ndarray:
        return self._encode(*self._clip_fill(column, strict))

    def transform_small(self, column: pd.Series) -> np.ndarray | None:
        """Numbers or missing values only (a float column, JSON numbers): no text parsing needed."""
        if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
            return self._encode(*self._fill_clip(column.to_numpy(dtype=np.float64, na_value=np.nan)))
        return self.transform_values(column.tolist())

    def transform_values(self, values: list) -> np.ndarray | None:
        """Python numbers or missing values (JSON rows, records); text, bools and huge ints go to pandas."""
        # In a text column, pandas reads inf as the word "inf" (→ missing): leave those to it.
        if not all(_plain_number(v) for v in values):
            return None
        return self._encode(*self._fill_clip(np.array([np.nan if v is None else v for v in values], dtype=np.float64)))

    @property
    def has_indicator(self) -> bool:
        """A was-missing column: configured (``missing: indicator``), or found informative on train."""
        return self.config.missing == "indicator" or bool(self.state.get("indicator"))

    def _encode(self, values: np.ndarray, missing: np.ndarray) -> np.ndarray:
        if "bin_edges" in self.state:
            return np.searchsorted(np.asarray(self.state["bin_edges"]), values, side="right").astype(np.int64)
        scaled = _apply_scaling(self.state, values).astype(np.float32)[:, None]
        if self.has_indicator:
            scaled = np.concatenate([scaled, missing.astype(np.float32)[:, None]], axis=1)
        return scaled

    def output_spec(self) -> OutputSpec:
        if "bin_edges" in self.state:
            cardinality = len(self.state["bin_edges"]) + 1
            return OutputSpec("codes", cardinality=cardinality, embedding_dim=default_embedding_dim(cardinality))
        columns = (self.name,) + ((f"{self.name}__missing",) if self.has_indicator else ())
        return OutputSpec("dense", width=len(columns), columns=columns)


# Scalings that are one shift and one divide, so several features can share a matrix op:
# scaling name → the state keys of (shift, scale).
_AFFINE = {"zscore": ("mean", "std"), "minmax": ("min", "range"), "none": (None, None)}


def _plain_number(value: object) -> bool:
    """A value the fast path reads as is: ``NumberFeature.transform_values``' rule, per value."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) != np.inf
                             and (isinstance(value, float) or abs(value) < 2**63))


class NumberBlock:
    """Several fitted number features with an affine scaling and no indicator or bins, transformed
    as one (rows, k) matrix: on a one-row prediction each feature's own handful of numpy calls
    cost more than the arithmetic, so k features in one go save nearly k-1 of them. Same float64
    operations in the same order as ``NumberFeature.transform_values``, so the same float32
    values (tests/test_predict_fast.py)."""

    def __init__(self, features: list[NumberFeature]):
        self.names = [feature.name for feature in features]
        states = [feature.state for feature in features]
        self.low = np.array([-np.inf if s["low"] is None else s["low"] for s in states], dtype=np.float64)
        self.high = np.array([np.inf if s["high"] is None else s["high"] for s in states], dtype=np.float64)
        self.fill = np.array([s["fill"] for s in states], dtype=np.float64)
        shift_key = [_AFFINE[s["scaling"]][0] for s in states]
        scale_key = [_AFFINE[s["scaling"]][1] for s in states]
        self.shift = np.array([s[k] if k else 0.0 for s, k in zip(states, shift_key)], dtype=np.float64)
        self.scale = np.array([s[k] if k else 1.0 for s, k in zip(states, scale_key)], dtype=np.float64)

    @staticmethod
    def takes(feature: Feature) -> bool:
        state = feature.state or {}
        return (type(feature) is NumberFeature and "bin_edges" not in state and state.get("scaling") in _AFFINE
                and not feature.has_indicator)

    def transform_values(self, columns: list[list]) -> np.ndarray | None:
        """(rows, k) float32 from each feature's list of values; None if any value is not a plain number."""
        matrix = _float_matrix(columns)
        if matrix is None:
            if not all(_plain_number(value) for values in columns for value in values):
                return None
            matrix = np.array([[np.nan if v is None else v for v in values] for values in columns], dtype=np.float64).T
        clipped = np.minimum(np.maximum(matrix, self.low), self.high)
        filled = np.where(np.isnan(matrix), self.fill, clipped)
        return ((filled - self.shift) / self.scale).astype(np.float32)


def _float_matrix(columns: list[list]) -> np.ndarray | None:
    """(rows, k) float64 when every value is a Python float or int (what numeric columns hold):
    ``_plain_number``'s rule checked on the matrix at once, not value by value (a third of a
    one-row prediction of 30 numbers). None: the caller checks each value."""
    if not all(type(value) is float or type(value) is int for values in columns for value in values):
        return None
    matrix = np.array(columns, dtype=np.float64).T
    magnitude = np.abs(matrix)
    if (magnitude == np.inf).any() or (magnitude >= 2.0**63).any():
        return None  # inf (pandas reads it as a word), or an int too large: per value
    return matrix


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _std_or_one(values: np.ndarray) -> float:
    std = float(values.std())
    return std if std > 1e-12 else 1.0  # a constant column scales to zeros, not NaN


def _fit_power(values: np.ndarray) -> dict:
    from scipy import stats

    lmbda = float(stats.yeojohnson_normmax(values)) if np.ptp(values) > 0 else 1.0
    transformed = _yeo_johnson(values, lmbda)
    return {"lambda": lmbda, "mean": float(transformed.mean()), "std": _std_or_one(transformed)}


def _minmax_state(values: np.ndarray) -> dict:
    low, high = float(values.min()), float(values.max())
    return {"min": low, "range": (high - low) if high > low else 1.0}


# name → (fit: train values → JSON state, apply: (state, values) → scaled values)
SCALERS = {
    "zscore": (lambda v: {"mean": float(v.mean()), "std": _std_or_one(v)}, lambda s, v: (v - s["mean"]) / s["std"]),
    "minmax": (_minmax_state, lambda s, v: (v - s["min"]) / s["range"]),
    "quantile": (
        lambda v: {"quantiles": np.quantile(v, np.linspace(0, 1, 101)).tolist()},
        lambda s, v: np.interp(v, s["quantiles"], np.linspace(0, 1, len(s["quantiles"]))) - 0.5,
    ),
    "power": (_fit_power, lambda s, v: (_yeo_johnson(v, s["lambda"]) - s["mean"]) / s["std"]),
    "none": (lambda v: {}, lambda s, v: v),
}


def _fit_scaling(method: str, values: np.ndarray) -> dict:
    return {"scaling": method, **SCALERS[method][0](values)}


def _apply_scaling(state: dict, values: np.ndarray) -> np.ndarray:
    return SCALERS[state["scaling"]][1](state, values)
