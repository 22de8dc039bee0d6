"""What every explanation method shares: the unit explained, the baseline row, the map from a
model's columns back to the user's input features, and the result they all return.

The unit is the model's raw output for one class or target, made comparable across families so
the ensemble can average its members: for two classes, the log-odds of the explained class; for
more, that class's logit minus the mean logit (softmax ignores a shift, so this is the part that
matters); for regression, the prediction in the target's own units (log units for Poisson, whose
models predict the log of the rate). ``output_weights`` turns each family's raw outputs into it.

The baseline is one "neutral" row, the same for every method: numbers at their training mean
(0 once z-scored), categories at ``<other>`` (code 0: the value a never-seen category gets),
yes/no flags halfway, text empty (padding tokens), images of the training mean colour. An
attribution says how far each input moved the output from that row's output.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

# Feature type → its part of the baseline's ``dense`` row (a feature not listed: zeros, which is the
# mean of every standardised column and "not missing" for indicator columns).
def _number_dense(feature: Any, width: int) -> np.ndarray:
    state = feature.state
    row = np.zeros(width, np.float32)
    scaling = state.get("scaling")
    if scaling == "minmax":
        row[0] = (state["fill"] - state["min"]) / state["range"]
    elif scaling == "none":
        row[0] = state["fill"]
    return row  # zscore, power: 0 is the training mean; quantile: 0 is the median


DENSE_BASELINES: dict[str, Callable[[Any, int], np.ndarray]] = {
    "number": _number_dense,
    "binary": lambda feature, width: np.full(width, 0.5, np.float32),
}
# Feature type → its baseline code (a type not listed: 0, the "<other>" category)
CODE_BASELINES: dict[str, Callable[[Any], int]] = {
    "number": lambda feature: len(feature.state.get("bin_edges", [])) // 2,  # binned numbers: the middle bin
}


@dataclass
class Context:
    """What a method needs besides its estimator: the bundle's features and task, which output
    each row explains (``classes``: class index per row; 0 for regression's first target), and
    the integration steps of integrated gradients."""

    featureset: Any
    task: Any
    config: Any
    classes: np.ndarray
    n_steps: int = 50
    texts: dict[str, np.ndarray] = field(default_factory=dict)  # text feature → the rows' raw strings (highlights)

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.featureset.features]

    def index(self, name: str) -> int:
        return self.names.index(name)

    def feature(self, name: str) -> Any:
        return self.featureset.features[self.index(name)]

    def output_weights(self, raw_width: int) -> tuple[np.ndarray, float]:
        """(W [rows, raw_width], offset): the explained unit of row i is ``raw[i] @ W[i] + offset``."""
        rows = len(self.classes)
        weights = np.zeros((rows, raw_width))
        if self.task.name == "regression":
            state = self.featureset.target.state
            weights[:, 0] = float(np.asarray(state.get("std", [1.0]))[0])
            return weights, float(np.asarray(state.get("mean", [0.0]))[0])
        picked = np.asarray(self.classes, dtype=np.int64)
        if raw_width == 1:  # one logit: the log-odds of class 1
            weights[:, 0] = np.where(picked == 1, 1.0, -1.0)
        elif self.task.name == "binary":
            weights[np.arange(rows), picked] = 1.0
            weights[np.arange(rows), 1 - picked] = -1.0
        else:
            weights -= 1.0 / raw_width
            weights[np.arange(rows), picked] += 1.0
        return weights, 0.0

    def negligible(self) -> float:
        """A change of the output too small to matter: 0.01 log-odds, or 1 % of the target's spread."""
        if self.task.name == "regression":
            return 0.01 * float(np.asarray(self.featureset.target.state.get("std", [1.0]))[0])
        return 0.01

    def unit(self) -> str:
        """The explained unit, in words (the JSON's ``output`` and the page's axis)."""
        if self.task.name == "binary":
            return "log-odds of the explained class"
        if self.task.name == "multiclass":
            return "logit of the explained class minus the mean logit"
        target = self.config.target[0]
        return f"log of {target}" if self.task.loss == "poisson" else f"{target} (its own units)"


@dataclass
class Attribution:
    """Per row: each input feature's share of ``output − base`` (``values`` [rows, features], in
    the feature set's order); character scores of each text feature over its raw text (token
    highlights); a saliency map per image feature."""

    values: np.ndarray
    base: np.ndarray
    output: np.ndarray
    method: str
    text: dict[str, list[np.ndarray]] = field(default_factory=dict)
    images: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def gap(self, floor: float) -> np.ndarray:
        """Completeness gap per row: |Σ values − (output − base)| relative to |output − base|, or to
        ``floor`` (``Context.negligible``) when the change is smaller: a gap of 0.001 on a change
        of 0.002 log-odds is no failure to add up."""
        change = self.output - self.base
        return np.abs(self.values.sum(axis=1) - change) / np.maximum(np.abs(change), floor)


def average(parts: list[tuple[float, Attribution]], method: str) -> Attribution:
    """The weighted average of attributions (weights normalised to sum to 1): bagged folds and
    ensemble members. Text scores are averaged per character, saliency maps per pixel."""
    total = sum(weight for weight, _ in parts) or 1.0
    shares = [(weight / total, part) for weight, part in parts]
    text: dict[str, list[np.ndarray]] = {}
    images: dict[str, list[np.ndarray]] = {}
    for share, part in shares:
        for store, source in ((text, part.text), (images, part.images)):
            for name, rows in source.items():
                current = store.setdefault(name, [np.zeros_like(r, dtype=np.float64) for r in rows])
                for i, r in enumerate(rows):
                    current[i] = current[i] + share * r
    return Attribution(
        values=sum(share * part.values for share, part in shares),
        base=sum(share * part.base for share, part in shares),
        output=sum(share * part.output for share, part in shares),
        method=method, text=text, images=images,
    )


def concatenate(parts: list[Attribution]) -> Attribution:
    """Attributions of consecutive row ranges as one, rows in order."""
    text = {name: [r for part in parts for r in part.text.get(name, [])] for name in parts[0].text}
    images = {name: [m for part in parts for m in part.images.get(name, [])] for name in parts[0].images}
    return Attribution(np.concatenate([p.values for p in parts]), np.concatenate([p.base for p in parts]),
                       np.concatenate([p.output for p in parts]), parts[0].method, text=text, images=images)


def dense_owners(ctx: Context, spec: Any) -> np.ndarray:
    """The input feature (index) of each column of ``dense``."""
    return np.asarray([ctx.index(name) for name, width in spec.dense_groups for _ in range(width)], dtype=np.int64)


def code_owners(ctx: Context, spec: Any) -> np.ndarray:
    return np.asarray([ctx.index(name) for name, *_ in spec.codes], dtype=np.int64)


def baseline_dense(ctx: Context, spec: Any) -> np.ndarray:
    """The baseline row's ``dense`` columns [width]."""
    parts = [DENSE_BASELINES.get(ctx.feature(name).type_name, lambda f, w: np.zeros(w, np.float32))(ctx.feature(name), width)
             for name, width in spec.dense_groups]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def baseline_codes(ctx: Context, spec: Any) -> np.ndarray:
    """The baseline row's category codes [codes]."""
    return np.asarray([CODE_BASELINES.get(ctx.feature(name).type_name, lambda f: 0)(ctx.feature(name)) for name, *_ in spec.codes],
                      dtype=np.int64)


def add_columns(values: np.ndarray, owners: np.ndarray, columns: np.ndarray) -> None:
    """Adds each column's contributions [rows, columns] to its owner's feature in ``values``."""
    if columns.size:
        np.add.at(values.T, owners, columns.T)
