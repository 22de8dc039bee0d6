"""Permutation importance: the column the model reads ranks first, and a time allowance bounds
its cost (an ensemble's predictions are slow, and the time budget pays for them)."""
from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pandas as pd

from forgeml.evaluate.importance import FLOOR_ROWS, permutation_importance


class SlowModel:
    """Predicts from column 'a' only, at a fixed cost per row; remembers how many rows it saw."""

    def __init__(self, seconds_per_row: float):
        self.seconds_per_row, self.rows_seen = seconds_per_row, []
        self.task = SimpleNamespace(is_classification=False)
        self.featureset = SimpleNamespace(input_names=["a", "b", "c"])

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        self.rows_seen.append(len(frame))
        time.sleep(self.seconds_per_row * len(frame))
        return frame[["a"]].to_numpy(dtype=float)


def _data(rows: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    return frame, frame["a"].to_numpy()


def test_without_an_allowance_every_row_is_used_and_the_read_column_ranks_first() -> None:
    frame, y = _data(400)
    model = SlowModel(0.0)
    importance = permutation_importance(model, frame, y)
    assert set(model.rows_seen) == {400}
    assert importance["a"] > 1.0 and importance["b"] == importance["c"] == 0.0


def test_an_allowance_subsamples_the_rows_to_fit_and_none_fit_means_no_importance() -> None:
    frame, y = _data(2000)
    model = SlowModel(20e-6)  # 40 ms per full prediction: 3 columns of 2,000 rows cost 0.12 s
    importance = permutation_importance(model, frame, y, seconds=0.03)  # affords ~300 rows (fewer on a busy machine)
    assert model.rows_seen[0] == 2000 and len(set(model.rows_seen[1:])) == 1 and FLOOR_ROWS <= model.rows_seen[1] < 2000
    assert max(importance, key=importance.get) == "a"
    cramped = SlowModel(20e-6)
    assert permutation_importance(cramped, frame, y, seconds=0.0005) is None  # ~5 rows would be noise: none, on time
    assert cramped.rows_seen == [2000]
