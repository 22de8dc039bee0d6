"""Refit (models/refit.py): weighted tree members predict with one model fitted on every train
row with their folds' mean rounds; the bundle keeps only that model; no time, no refit."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from forgeml import Pipeline

BASE = {"train.progress": False, "train.threads": 1, "train.epochs": 8, "model.folds": 3, "model.members": ["lightgbm", "lightgbm_xt"],
        "train.time_budget": 120}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3))
    colour = rng.choice(["red", "green", "blue"], size=400)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "colour": colour, "y": x[:, 0] ** 2 - x[:, 1] + (colour == "red") + rng.normal(0, 0.2, 400)})


@pytest.fixture(scope="module")
def both(frame):
    refit = Pipeline(target="y", model="ensemble", overrides={**BASE, "model.refit": "full"}).fit(frame)
    bagged = Pipeline(target="y", model="ensemble", overrides={**BASE, "model.refit": "off"}).fit(frame)
    return refit, bagged


def test_weighted_tree_members_predict_with_one_model_on_every_row(both, frame) -> None:
    refit, bagged = both
    train_rows = len(refit.prepared_.targets["train"])
    for member in refit.predictor_.estimator.members:
        bag = member["estimator"]
        assert member["folds"] == 1 and len(bag.members) == 1
        booster = bag.members[0].boosters[0]
        assert booster.num_trees() == member["best_steps"] == member["model"]["num_boost_round"]  # the folds' mean rounds, no early stop
        assert member["refit"].startswith(f"all {train_rows} rows, {member['best_steps']} rounds")
    assert {len(m["estimator"].members) for m in bagged.predictor_.estimator.members} == {3}
    board = refit.leaderboard().set_index("member")
    assert board.loc["lightgbm", "refit"].startswith("all ") and refit.metrics_["r2"] > 0.8
    # the leaderboard's out-of-fold scores are the bags' (the same fits both ways), the test metric is close
    assert board.loc["lightgbm", "score"] == bagged.leaderboard().set_index("member").loc["lightgbm", "score"]
    assert abs(refit.metrics_["r2"] - bagged.metrics_["r2"]) < 0.05


def test_a_refitted_bundle_keeps_only_the_refit_models_and_predicts_the_same(both, frame, tmp_path) -> None:
    refit, _ = both
    bundle = refit.save(tmp_path / "bundle")
    assert not list(bundle.glob("member_*/fold1"))
    loaded = Pipeline.load(bundle)
    pd.testing.assert_frame_equal(loaded.predict(frame), refit.predict(frame))


def test_no_time_left_keeps_the_bag_and_says_why(frame) -> None:
    from forgeml.models.refit import refit_members

    pipeline = Pipeline(target="y", model="ensemble", overrides={**BASE, "model.refit": "off"}).fit(frame)
    ensemble = pipeline.predictor_.estimator
    refit_members(ensemble, pipeline.prepared_.arrays["train"], pipeline.prepared_.targets["train"], time.monotonic())
    assert all(len(m["estimator"].members) == 3 and m["refit"].startswith("no: about") for m in ensemble.members)


def test_a_refit_the_deadline_cut_short_is_dropped_for_the_bag(frame, monkeypatch) -> None:
    import forgeml.models.gbm as gbm
    from forgeml.models.estimator import FitSummary
    from forgeml.models.refit import refit_members

    pipeline = Pipeline(target="y", model="ensemble", overrides={**BASE, "model.refit": "off"}).fit(frame)
    ensemble = pipeline.predictor_.estimator

    class CutShort:
        spec = None

        def fit(self, *args, **kwargs):
            return FitSummary([{"epoch": 1}, {"epoch": 2}], 2, None, True, 0.1)  # stopped by the deadline after 2 rounds

    monkeypatch.setattr(gbm, "build", lambda *args: CutShort())
    refit_members(ensemble, pipeline.prepared_.arrays["train"], pipeline.prepared_.targets["train"], time.monotonic() + 60)
    assert all(len(m["estimator"].members) == 3 and "after 2 of" in m["refit"] for m in ensemble.members)


@pytest.fixture(scope="module")
def reviews() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    good, bad, filler = ["great", "lovely", "好评", "喜欢"], ["awful", "broken", "差评", "失望"], ["the", "a", "phone", "book", "hotel", "房间"]
    rows = []
    for i in range(360):
        label = "pos" if i % 2 else "neg"
        words = list(rng.choice(filler, size=5)) + list(rng.choice(good if label == "pos" else bad, size=1 + i % 2))
        if rng.random() < 0.15:  # some noise, so the folds' regularisation is a real choice
            label = "neg" if label == "pos" else "pos"
        rows.append({"text": " ".join(rng.permutation(words)), "n": float(rng.normal()), "label": label})
    return pd.DataFrame(rows)


def test_the_ngram_member_is_refitted_in_medium_at_its_folds_median_alpha_and_the_trees_keep_their_folds(reviews, tmp_path) -> None:
    options = {**BASE, "model.members": ["ngram", "lightgbm"], "model.preset": "medium"}
    pipeline = Pipeline(target="label", model="ensemble", overrides=options).fit(reviews)
    members = {m["member"]: m for m in pipeline.predictor_.estimator.members}
    ngram = members["ngram"]
    folds = pipeline.predictor_.estimator.bags_before_refit_["ngram"].members
    assert ngram["folds"] == 1 and len(ngram["estimator"].members) == 1
    assert ngram["model"]["alpha"] == float(np.median([fold.alpha_ for fold in folds])) == ngram["estimator"].members[0].alpha_
    assert "model.alpha" not in ngram["refit"] and "alpha" in ngram["refit"] and ngram["refit"].startswith("all ")
    if "lightgbm" in members:  # a weighted tree member keeps its fold models in medium (refit for speed is fast's)
        assert members["lightgbm"]["folds"] == 3
    loaded = Pipeline.load(pipeline.save(tmp_path / "bundle"))
    pd.testing.assert_frame_equal(loaded.predict(reviews), pipeline.predict(reviews))
    kept = Pipeline(target="label", model="ensemble", overrides={**options, "model.refit": "off"}).fit(reviews)
    assert {m["member"]: m["folds"] for m in kept.predictor_.estimator.members}["ngram"] == 3
