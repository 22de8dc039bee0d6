"""The n-gram member keeps its time share (issue 13, "the time budget is a promise"): its folds
share one vectoriser, the later folds fit the first fold's alpha only, and a solve stops at its
deadline, which the leaderboard then says. No test waits on real time: a fake solver clock
(``linear.clock``) makes every deadline pass."""
from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeml import Pipeline
from forgeml.config import Config
from forgeml.features.featureset import InputSpec, TokenInput
from forgeml.models import linear
from forgeml.models.bagging import build_bagged
from forgeml.models.estimator import FitOptions
from forgeml.models.ngram import NgramEstimator, build, load
from forgeml.models.tasks import Task
from forgeml.models.text_vectors import SharedTexts, TextVectors

QUIET = {"train.progress": False, "train.threads": 1}
REVIEWS = Path(__file__).parents[1] / "fixtures" / "reviews_zh_300.csv"


@pytest.fixture(scope="module")
def reviews() -> pd.DataFrame:
    return pd.read_csv(REVIEWS)


def _arrays(texts: list[str]) -> dict[str, np.ndarray]:
    column = np.empty(len(texts), dtype=object)
    column[:] = texts
    return {"dense": np.zeros((len(texts), 0), np.float32), "codes": np.zeros((len(texts), 0), np.int64), "text.review": column}


def _config(**model) -> Config:
    return Config.from_dict({"target": "y", "train": {"progress": False, "threads": 1}, "model": {"type": "ngram", "segmenter": "none", **model}})


SPEC = InputSpec(dense_columns=[], tokens=[TokenInput("review", 100, 8, 16)])
BINARY = Task.resolve("binary", "auto", 2)


@pytest.fixture
def late_clock(monkeypatch):
    """A solver clock that advances 1,000 s per reading: every solve's pace says no time is left."""
    ticks = itertools.count(time.monotonic(), step=1000.0)
    monkeypatch.setattr(linear, "clock", lambda: float(next(ticks)))
    monkeypatch.setattr(linear, "FIRST_CHUNK", 2)  # fewer iterations than any of these solves needs


def test_shared_texts_give_the_rows_transform_gives_new_texts_included(reviews):
    texts = reviews["review"].tolist()
    vectors = TextVectors(["review"], (1, 2), (1, 3), segmenter="none")
    shared = SharedTexts.fit(vectors, _arrays(texts[:200]))
    fold = [texts[i] for i in (5, 0, 199, 5)] + ["从来没见过的句子", texts[250]]  # repeats, unseen texts, any order
    np.testing.assert_allclose(shared.matrix(_arrays(fold)).toarray(), vectors.transform(_arrays(fold)).toarray(), atol=1e-6)


def test_the_folds_share_one_vectoriser_and_the_later_ones_fit_the_first_folds_alpha(reviews, monkeypatch):
    texts, labels = reviews["review"].tolist(), (reviews["sentiment"] == "pos").to_numpy().astype(np.int64)
    fitted = []
    real = TextVectors.fit_transform
    monkeypatch.setattr(TextVectors, "fit_transform", lambda self, arrays: fitted.append(1) or real(self, arrays))
    bag = build_bagged(_config(), BINARY, SPEC, 3, build, load)
    summary = bag.fit(_arrays(texts), labels, None, None, FitOptions())
    assert len(fitted) == 1  # once for the bag, not once per fold
    assert len({id(member.vectors) for member in bag.members}) == 1
    steps = [[row["alpha"] for row in summary.history if row["fold"] == k] for k in range(3)]
    assert len(steps[0]) >= 2 and steps[1] == steps[2] == [bag.members[0].alpha_]  # the path once, then its choice
    assert np.isfinite(bag.oof_).all() and summary.note is None
    assert all(member._shared is None for member in bag.members)  # new rows are vectorised, not looked up
    np.testing.assert_allclose(bag.members[1].scores(_arrays(texts[:5])), bag.members[1].scores(_arrays(texts[:5])))


def test_a_solve_past_its_deadline_stops_and_says_so(reviews, late_clock):
    texts, labels = reviews["review"].tolist(), (reviews["sentiment"] == "pos").to_numpy().astype(np.int64)
    estimator = NgramEstimator(_config(), BINARY, SPEC)
    unhurried = NgramEstimator(_config(), BINARY, SPEC)
    unhurried.fit(_arrays(texts[:200]), labels[:200], _arrays(texts[200:]), labels[200:], FitOptions())
    summary = estimator.fit(_arrays(texts[:200]), labels[:200], _arrays(texts[200:]), labels[200:], FitOptions(deadline=time.monotonic() + 600))
    assert len(summary.history) == 1 and estimator.iterations_ == 2  # the first alpha, cut: no time for the path
    assert "stopped by its time share after 2 solver iterations" in summary.note
    assert unhurried.iterations_ > 2 and unhurried.cut_ == []  # the same fit without a deadline runs to convergence
    assert (estimator.scores(_arrays(texts[200:])).argmax(axis=1) == labels[200:]).mean() > 0.6  # cut, still a model


def test_the_leaderboard_says_the_member_was_cut_by_its_time_share(reviews, late_clock):
    overrides = {**QUIET, "model.folds": 2, "model.members": ["ngram"], "train.time_budget": 600}
    pipeline = Pipeline(target="sentiment", model="ensemble", overrides=overrides).fit(reviews)
    row = pipeline.leaderboard().set_index("member").loc["ngram"]
    assert row["status"] == "fitted" and row["note"].startswith("fold 1: alpha 1 stopped by its time share")
    assert row["refit"].startswith("no: alpha") and "fold models predict" in row["refit"]  # a cut refit is worse than the bag
    assert pipeline.metrics_["roc_auc"] > 0.7
