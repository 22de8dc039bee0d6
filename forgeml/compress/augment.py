"""New rows for a distillation transfer set, made from the training rows (raw columns, so the
teacher and the student read them through the same fitted features).

A student that sees only the training rows learns the teacher where the data is and guesses
between; the teacher's answers on rows near the data say more about its decision surface.
Bucila, Caruana & Niculescu-Mizil (2006, "Model compression") made such rows with MUNGE:
perturb a row's numbers, swap its categories with its neighbour's; mixup (Zhang et al. 2018)
interpolates two rows. Here, half the new rows are each kind:

- perturbed: numbers jittered by ``jitter`` × their column's spread (standard deviation),
  clipped to the observed range; each category (and yes/no, date) value resampled, with
  probability ``resample``, from its column's frequencies; text left unchanged, or (with the
  same probability) swapped with the text of another row of the same class; images unchanged.
- mixed: two rows of the same class (any two rows for regression) and λ ~ Beta(α, α) (α = 0.4);
  numbers λa + (1 − λ)b, every other column from whichever row λ favours.

Blank values stay blank (a blank can mean something: ``features.missingness``). The target
columns of the new rows are left blank: the teacher labels them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MIXUP_ALPHA = 0.4  # Beta(0.4, 0.4): most mixes stay near one of the two rows (mixup's small-α regime)


@dataclass(frozen=True)
class AugmentOptions:
    multiplier: float = 4.0  # new rows per training row (0: the training rows only)
    jitter: float = 0.1  # numbers: Gaussian noise of this many standard deviations of their column
    resample: float = 0.2  # categories (and text swaps): the chance each value is redrawn
    mixup_share: float = 0.5  # of the new rows, the share made by mixup (the rest are perturbed)
    seed: int = 0


def augment(frame: pd.DataFrame, features: list[Any], groups: np.ndarray, options: AugmentOptions) -> pd.DataFrame:
    """``round(multiplier × len(frame))`` new rows built from ``frame`` (the train split, raw
    columns). ``features``: the fitted features (``FeatureSet.features``: ``name``, ``type_name``
    and, for numbers, ``parse``). ``groups``: a group per row (the class; all zeros for
    regression): text swaps and mixup stay within it. ``frame`` is not modified."""
    count = int(round(options.multiplier * len(frame)))
    if count <= 0 or len(frame) == 0:
        return frame.iloc[:0].copy()
    rng = np.random.default_rng(options.seed)
    frame = frame.reset_index(drop=True)
    groups = np.asarray(groups)
    mixed = int(round(count * options.mixup_share))
    parts = [_perturbed(frame, features, groups, count - mixed, options, rng), _mixed(frame, features, groups, mixed, rng)]
    return pd.concat([part for part in parts if len(part)], ignore_index=True)


def _numbers(frame: pd.DataFrame, feature: Any) -> np.ndarray:
    return feature.parse(frame[feature.name])  # float64, NaN where blank or unreadable


def _perturbed(frame: pd.DataFrame, features: list[Any], groups: np.ndarray, count: int, options: AugmentOptions,
               rng: np.random.Generator) -> pd.DataFrame:
    base = rng.integers(0, len(frame), count)
    out = frame.iloc[base].reset_index(drop=True).copy()
    for feature in features:
        kind = feature.type_name
        if kind == "number":
            values = _numbers(frame, feature)
            finite = values[np.isfinite(values)]
            if not finite.size:
                continue
            spread = float(finite.std()) or 0.0
            jittered = values[base] + rng.normal(0.0, options.jitter * spread, count)
            out[feature.name] = np.clip(jittered, finite.min(), finite.max())  # NaN stays NaN
        elif kind in ("category", "binary", "date"):
            redraw = rng.random(count) < options.resample
            if redraw.any():
                column = np.array(out[feature.name], dtype=object)  # a writable copy (pandas 3 hands out read-only views)
                column[redraw] = frame[feature.name].astype(object).to_numpy()[rng.integers(0, len(frame), int(redraw.sum()))]
                out[feature.name] = column  # drawn from the column: its frequencies, blanks included
        elif kind == "text":
            swap = rng.random(count) < options.resample
            if swap.any():
                column = np.array(out[feature.name], dtype=object)  # a writable copy (pandas 3 hands out read-only views)
                partners = _partners(base[swap], groups, rng)
                column[swap] = frame[feature.name].astype(object).to_numpy()[partners]
                out[feature.name] = column
    return out


def _mixed(frame: pd.DataFrame, features: list[Any], groups: np.ndarray, count: int, rng: np.random.Generator) -> pd.DataFrame:
    if count <= 0:
        return frame.iloc[:0].copy()
    first = rng.integers(0, len(frame), count)
    second = _partners(first, groups, rng)
    lam = rng.beta(MIXUP_ALPHA, MIXUP_ALPHA, count)
    from_first = lam >= 0.5
    out = frame.iloc[np.where(from_first, first, second)].reset_index(drop=True).copy()
    for feature in features:
        if feature.type_name != "number":
            continue  # taken whole from the row λ favours (out's rows are those)
        values = _numbers(frame, feature)
        a, b = values[first], values[second]
        mix = lam * a + (1 - lam) * b
        out[feature.name] = np.where(np.isnan(a) | np.isnan(b), np.where(from_first, a, b), mix)  # a blank is not mixed
    return out


def _partners(rows: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each row, a random row of the same group."""
    partners = np.empty(len(rows), dtype=np.int64)
    for group in np.unique(groups[rows]):
        members = np.flatnonzero(groups == group)
        where = groups[rows] == group
        partners[where] = members[rng.integers(0, len(members), int(where.sum()))]
    return partners
