"""clean.outliers: auto — the networks and linear models read clipped numbers, the trees read them
as they are (``NUMBERS = "unclipped"`` in their family modules), in an ensemble and alone; an
explicit method applies to every model; bundles made before read as they did."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeml import Pipeline
from forgeml.features.featureset import UNCLIPPED_KEY

QUIET = {"train.progress": False, "train.threads": 1, "train.epochs": 2}
OLD = Path(__file__).resolve().parents[1] / "fixtures" / "bundles_0596f02"  # made by make.py there, with main at 0596f02


def _frame(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0, 1.5, rows)  # a long right tail: IQR clipping bites
    b = rng.normal(size=rows)
    return pd.DataFrame({"a": a.round(4), "b": b.round(4), "y": np.where(np.log(a) + b > 0.2, "yes", "no")})


def _a_column(pipeline: Pipeline) -> int:
    return pipeline.predictor_.featureset.input_spec().dense_columns.index("a")


def test_in_an_ensemble_the_tree_member_reads_unclipped_numbers_and_the_network_clipped(monkeypatch) -> None:
    pytest.importorskip("lightgbm")
    from forgeml.models.bagging import BaggedEstimator

    seen: list[tuple[str, str, float]] = []  # (family, fit or scores, the largest value of column a it was given)
    real_fit, real_scores = BaggedEstimator.fit, BaggedEstimator.scores

    def fit(self, train, *args, **kwargs):
        seen.append((self.config.model.type, "fit", float(train["dense"][:, 0].max())))
        assert UNCLIPPED_KEY not in train  # each member gets one matrix: its own
        return real_fit(self, train, *args, **kwargs)

    def scores(self, arrays):
        seen.append((self.config.model.type, "scores", float(arrays["dense"][:, 0].max())))
        return real_scores(self, arrays)

    monkeypatch.setattr(BaggedEstimator, "fit", fit)
    monkeypatch.setattr(BaggedEstimator, "scores", scores)
    frame = _frame()
    pipeline = Pipeline(target="y", model="ensemble", overrides={**QUIET, "model.folds": 2, "model.members": ["lightgbm", "mlp"],
                                                                 "model.stacking": "on", "train.time_budget": 60}).fit(frame)
    assert _a_column(pipeline) == 0
    state = pipeline.predictor_.featureset.features[0].state
    assert state["unclipped_copy"] and state["high"] is not None  # the clipping limits stay: the network reads them
    assert any("the tree members read them unclipped" in m for m in pipeline.prepared_.cleaning.messages)
    scale = (pipeline.prepared_.frames["train"]["a"].max() - state["mean"]) / state["std"]  # the largest train value, z-scored, unclipped
    fitted = {family: value for family, stage, value in seen if stage == "fit"}
    assert fitted["gbm"] == pytest.approx(scale, rel=1e-5)
    assert fitted["mlp"] == pytest.approx((state["high"] - state["mean"]) / state["std"], rel=1e-5) and fitted["mlp"] < scale / 2
    seen.clear()
    pipeline.predict(pd.DataFrame({"a": [1e4], "b": [0.0]}))
    predicted = {family: value for family, stage, value in seen if stage == "scores"}
    assert predicted.get("gbm", 0) > 1e3 and predicted.get("mlp", 1e9) < scale  # when both are kept (the stacker keeps every member)


def test_a_saved_ensemble_with_unclipped_trees_predicts_the_same_after_loading(tmp_path) -> None:
    pytest.importorskip("lightgbm")
    frame = _frame()
    pipeline = Pipeline(target="y", model="ensemble", overrides={**QUIET, "model.folds": 2, "model.members": ["lightgbm", "linear"],
                                                                 "model.stacking": "on", "train.time_budget": 60}).fit(frame)
    pipeline.save(tmp_path / "bundle")
    rows = _frame(30, seed=1).drop(columns="y")
    rows.loc[0, "a"] = 1e4
    np.testing.assert_allclose(Pipeline.load(tmp_path / "bundle").predict(rows).filter(like="proba").to_numpy(),
                               pipeline.predict(rows).filter(like="proba").to_numpy(), rtol=1e-9)


@pytest.mark.parametrize(("model", "outliers", "clipped"), [("gbm", "auto", False), ("mlp", "auto", True), ("gbm", "iqr", True),
                                                            ("mlp", "none", False)])
def test_a_single_model_clips_as_its_family_reads_unless_the_user_says(model: str, outliers: str, clipped: bool) -> None:
    """auto: a single tree model is fitted without clipping (and no copy is kept), a network with
    it; an explicit method applies whatever the family."""
    pytest.importorskip("lightgbm")
    pipeline = Pipeline(target="y", model=model, overrides={**QUIET, "clean.outliers": outliers}).fit(_frame())
    state = pipeline.predictor_.featureset.features[0].state
    assert (state["high"] is not None) == clipped and "unclipped_copy" not in state
    assert any("clipped" in m for m in pipeline.prepared_.cleaning.messages) == clipped
    arrays = pipeline.predictor_.featureset.transform(pd.DataFrame({"a": [1e4], "b": [0.0]}))
    assert UNCLIPPED_KEY not in arrays and (arrays["dense"][0, _a_column(pipeline)] < 100) == clipped


@pytest.mark.parametrize("bundle", ["gbm", "ensemble"])
def test_bundles_made_before_auto_still_clip_for_their_trees_and_predict_the_same(bundle: str) -> None:
    """A LightGBM bundle and an ensemble (a bagged LightGBM member) saved by 0596f02, when the
    default clipped every model's numbers: loaded now, they predict what they predicted then,
    a value far beyond the clipping limit included (rows.csv's first row)."""
    pytest.importorskip("lightgbm")
    loaded = Pipeline.load(OLD / f"{bundle}_bundle")
    assert loaded.predictor_.config.clean.outliers == "iqr"
    rows = pd.read_csv(OLD / "rows.csv")
    then = pd.read_csv(OLD / f"{bundle}_predictions.csv")
    now = loaded.predict(rows)
    assert now["y_prediction"].astype(str).tolist() == then["y_prediction"].astype(str).tolist()
    np.testing.assert_allclose(now.filter(like="proba").to_numpy(), then.filter(like="proba").to_numpy(), rtol=1e-9, atol=1e-12)
