"""LightGBM behind the estimator interface: its boosting rounds reach the run's callbacks (so
metrics.jsonl, loggers and the dashboard see learning curves), and small data can split on a
category (LightGBM's min_data_per_group follows model.min_data_in_leaf)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from forgeml import Pipeline
from forgeml.models.gbm import rounds_between_rows

QUIET = {"train.progress": False, "train.threads": 1}


class Rows:
    def __init__(self):
        self.rows: list[dict] = []

    def on_epoch_end(self, row: dict) -> None:
        self.rows.append(dict(row))


def _by_category(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(list("abcdefgh"), rows)
    return pd.DataFrame({"group": group, "noise": rng.normal(size=rows).round(4),
                         "y": np.where(np.isin(group, list("abcd")), "yes", "no")})


def test_rounds_reach_the_callbacks_every_n_rounds_and_the_last():
    seen = Rows()
    pipeline = Pipeline(target="y", model="gbm", overrides={**QUIET, "model.num_boost_round": 250, "model.early_stopping_rounds": 250})
    pipeline.fit(_by_category(), callbacks=[seen])
    every = rounds_between_rows(250)
    rounds = [row["epoch"] for row in seen.rows]
    assert every == 3
    assert rounds == [1, *range(every, 250, every), 250]
    assert all(set(row) == {"epoch", "train_loss", "val_loss"} for row in seen.rows)
    history = {row["epoch"]: row for row in pipeline.fit_summary_.history}
    for row in seen.rows:  # the same numbers as the fit's own history
        assert row["val_loss"] == history[row["epoch"]]["val_loss"]


def test_several_targets_send_their_mean_rounds_once_trained(make_regression):
    import warnings

    seen = Rows()
    pipeline = Pipeline(target=["price", "size"], model="gbm", overrides={**QUIET, "model.num_boost_round": 30})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline.fit(make_regression(), callbacks=[seen])
    assert not [w for w in caught if "sliced data" in str(w.message)]  # LightGBM's warning, printed to the user
    rounds = [row["epoch"] for row in seen.rows]
    assert rounds == sorted(set(rounds)) and rounds[0] == 1 and rounds[-1] == len(pipeline.fit_summary_.history)


def test_small_data_splits_on_a_many_valued_category():
    """The label is set by an 8-value category, 140 train rows: LightGBM's default
    min_data_per_group of 100 forbade every many-vs-many split and left the model at chance."""
    pipeline = Pipeline(target="y", model="gbm", overrides=QUIET).fit(_by_category())
    assert pipeline.metrics_["accuracy"] >= 0.9, pipeline.metrics_


def test_separable_data_stops_once_the_loss_only_creeps():
    """Validation log-loss creeping towards zero is not an improvement (train.early_stopping_min_delta
    reaches LightGBM's early stopping): fewer rounds than with min_delta 0, the same accuracy."""
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 2, size=400) * rng.choice([-1, 1], size=400)  # a clear gap at 0
    frame = pd.DataFrame({"x": x, "z": rng.normal(size=400), "y": np.where(x > 0, "pos", "neg")})

    def fit(**overrides):
        pipeline = Pipeline(target="y", model="gbm", overrides={**QUIET, **overrides}).fit(frame)
        return pipeline.predictor_.estimator.boosters[0].current_iteration(), pipeline.metrics_["accuracy"]

    (default_rounds, default_accuracy), (creeping_rounds, _) = fit(), fit(**{"train.early_stopping_min_delta": 0.0})
    assert default_rounds < creeping_rounds, (default_rounds, creeping_rounds)
    assert default_accuracy == 1.0
