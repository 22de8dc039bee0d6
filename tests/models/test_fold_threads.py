"""Folds fitted side by side (models/fold_threads.py): the same models as one after the other,
every fold's curve and out-of-fold prediction, errors and give-ups raised in the caller."""
from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from forgeml import Pipeline
from forgeml.config import Config
from forgeml.errors import ForgeError
from forgeml.models.bagging import MemberOutOfTime, build_bagged
from forgeml.models.estimator import FitOptions, FitSummary
from forgeml.models.tasks import Task


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": rng.choice(["u", "v", "w"], 600),
                         "y": 2 * x[:, 0] - x[:, 1] ** 2 + rng.normal(0, 0.1, 600)})


def _gbm_bag(frame: pd.DataFrame, threads: int) -> Pipeline:
    overrides = {"model.type": "gbm", "model.num_boost_round": 60, "train.bagging_folds": 4, "train.threads": threads, "train.progress": False}
    return Pipeline(target="y", overrides=overrides).fit(frame)


def test_two_threads_fit_the_folds_side_by_side_and_the_models_are_the_ones_fitted_in_turn(frame) -> None:
    side_by_side, in_turn = _gbm_bag(frame, 2), _gbm_bag(frame, 1)
    bag = side_by_side.predictor_.estimator
    assert bag.workers == 2 and in_turn.predictor_.estimator.workers == 1
    assert {member.config.train.threads for member in bag.members} == {1}  # one core per fold
    assert not np.isnan(bag.oof_).any()
    np.testing.assert_array_equal(bag.oof_, in_turn.predictor_.estimator.oof_)
    assert {row["fold"] for row in side_by_side.fit_summary_.history} == {0, 1, 2, 3}
    big = pd.concat([frame] * 2, ignore_index=True)  # > 256 rows: predicted side by side too
    pd.testing.assert_frame_equal(side_by_side.predict(big), in_turn.predict(big))


def test_a_saved_side_by_side_bag_loads_with_one_thread_per_fold(frame, tmp_path) -> None:
    pipeline = _gbm_bag(frame, 2)
    loaded = Pipeline.load(pipeline.save(tmp_path / "bundle"))
    assert loaded.predictor_.estimator.workers == 2
    assert {member.config.train.threads for member in loaded.predictor_.estimator.members} == {1}
    pd.testing.assert_frame_equal(loaded.predict(frame), pipeline.predict(frame))


class _Member:
    """A stand-in fold model: sleeps, records which thread fitted it, optionally fails."""

    files = ()
    threads: set[str] = set()

    def __init__(self, seconds: float = 0.05, fail: bool = False):
        self.seconds, self.fail = seconds, fail

    def fit(self, train, y, val, y_val, options):
        type(self).threads.add(threading.current_thread().name)
        time.sleep(self.seconds)
        if self.fail:
            raise ForgeError("fold broke")
        for callback in options.callbacks:
            callback.on_epoch_end({"epoch": 1})
        return FitSummary([{"epoch": 1}], 1, 0.5, False, self.seconds)

    def scores(self, arrays):
        return np.ones((len(arrays["dense"]), 1))


def _bag(members: list[_Member]):
    config = Config.from_dict({"target": "y", "model": {"type": "gbm"}, "train": {"threads": 2}})
    members = iter(members)
    return build_bagged(config, Task.resolve("regression", "auto", 1), None, 4, lambda *a: next(members), lambda *a: None, side_by_side=True)


def test_fold_errors_and_give_ups_reach_the_caller_and_rows_reach_the_callbacks() -> None:
    arrays, y = {"dense": np.zeros((40, 2), np.float32)}, np.zeros((40, 1))
    rows = []

    class Rows:
        def on_epoch_end(self, row):
            rows.append(row)

    _Member.threads = set()
    bag = _bag([_Member() for _ in range(4)])
    bag.fit(arrays, y, None, None, FitOptions(callbacks=[Rows()]))
    assert len(_Member.threads) == 2 and sorted(row["fold"] for row in rows) == [0, 1, 2, 3]
    with pytest.raises(ForgeError, match="fold broke"):
        _bag([_Member(), _Member(fail=True), _Member(), _Member()]).fit(arrays, y, None, None, FitOptions())
    with pytest.raises(MemberOutOfTime, match="other 3 folds"):
        _bag([_Member(0.3) for _ in range(4)]).fit(arrays, y, None, None,
                                                   FitOptions(deadline=time.monotonic() + 0.35, abandon_when_late=True))
