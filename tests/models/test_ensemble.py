"""The AutoML ensemble: portfolio members bagged over folds, greedy selection on out-of-fold
predictions, the time budget, the leaderboard, and one bundle that loads without pickle."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeml import Pipeline
from forgeml.errors import ConfigError, ForgeError
from forgeml.models.ensemble_selection import select_weights, selection_loss
from forgeml.train.budget import parse_duration

FAST = {"train.progress": False, "train.threads": 1, "train.epochs": 8, "model.folds": 2,
        "model.members": ["lightgbm", "catboost_not_installed_check", "mlp"]}


def _frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    colour = rng.choice(["red", "green", "blue"], size=rows)
    signal = x[:, 0] - 0.5 * x[:, 1] + (colour == "red") * 1.5 + rng.normal(0, 0.5, rows)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "colour": colour, "y": np.where(signal > 0.3, "yes", "no")})


def test_selection_gives_all_weight_to_a_perfect_member_and_mixes_complementary_ones() -> None:
    y = np.array([0, 1, 0, 1])
    perfect = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=float)
    coin = np.full((4, 2), 0.5)
    assert select_weights("binary", y, [coin, perfect]).tolist() == [0.0, 1.0]
    # regression: two members wrong in opposite directions average to the truth
    target = np.zeros((4, 1))
    weights = select_weights("regression", target, [target + 1, target - 1])
    assert weights.sum() == pytest.approx(1.0) and 0.4 <= weights[0] <= 0.6
    assert selection_loss("regression", target, target + 1) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    pytest.importorskip("lightgbm")
    frame = _frame()
    overrides = {**FAST, "model.members": ["lightgbm", "catboost", "mlp"], "train.time_budget": 120}
    pipeline = Pipeline(target="y", model="ensemble", overrides=overrides).fit(frame)
    bundle = tmp_path_factory.mktemp("ensemble") / "bundle"
    pipeline.save(bundle)
    return pipeline, bundle, frame


def test_members_are_bagged_weighted_and_listed_in_the_leaderboard(fitted) -> None:
    pipeline, _, frame = fitted
    board = pipeline.leaderboard()
    assert {"lightgbm", "mlp", "ensemble"} <= set(board["member"])
    fitted_rows = board[(board["status"] == "fitted") & (board["member"] != "ensemble")]
    assert fitted_rows["weight"].sum() == pytest.approx(1.0, abs=1e-3)
    assert (fitted_rows["score_name"] == "roc_auc").all() and (fitted_rows["score"] > 0.8).all()
    assert (fitted_rows["fit_seconds"] > 0).all() and (fitted_rows["predict_ms_per_row"] > 0).all()
    catboost = board[board["member"] == "catboost"]
    if "catboost" not in __import__("forgeml.models.families", fromlist=["FAMILIES"]).FAMILIES:
        assert catboost["status"].iloc[0].startswith("skipped")  # a family this install lacks is listed, not fatal
    assert pipeline.metrics_["roc_auc"] > 0.85
    # rows are precious: no validation split, the out-of-fold predictions validate
    split = pipeline.predictor_.config.data.split
    assert (split.train, split.validation) == (0.85, 0.0)
    assert len(pipeline.prepared_.frames["validation"]) == 0


def test_the_ensemble_bundle_loads_and_predicts_the_same(fitted) -> None:
    pipeline, bundle, frame = fitted
    assert (bundle / "ensemble.json").is_file() and not list(bundle.rglob("*.pkl"))
    loaded = Pipeline.load(bundle)
    pd.testing.assert_frame_equal(loaded.predict(frame.head(40)), pipeline.predict(frame.head(40)))
    assert set(loaded.leaderboard()["member"]) == set(pipeline.leaderboard()["member"])
    assert "Leaderboard" in (bundle / "report.html").read_text(encoding="utf-8")


def test_single_row_predict_of_the_ensemble_is_fast(fitted) -> None:
    """A smoke bound only (the figure is measured in bench/): a handful of ms, not AutoGluon's hundreds."""
    pipeline, _, frame = fitted
    row = frame.drop(columns="y").head(1)
    pipeline.predict(row)
    started = time.perf_counter()
    for _ in range(5):
        pipeline.predict(row)
    assert (time.perf_counter() - started) / 5 < 0.25


def test_a_budget_too_small_for_any_member_is_one_clear_error() -> None:
    with pytest.raises(ForgeError, match="time budget ended before any model was fitted"):
        Pipeline(target="y", model="ensemble", overrides={**FAST, "model.members": ["lightgbm"], "train.time_budget": 0.001}).fit(_frame(120))


def test_unknown_members_and_bad_budgets_are_refused() -> None:
    with pytest.raises(ForgeError, match="unknown portfolio member"):
        Pipeline(target="y", model="ensemble", overrides={**FAST, "model.members": ["nope"]}).fit(_frame(120))
    assert parse_duration("90s") == 90 and parse_duration("10m") == 600 and parse_duration("1.5h") == 5400 and parse_duration("45") == 45
    for bad in ("soon", "-3s", "0", "10 parsecs"):
        with pytest.raises(ConfigError, match="not a time budget"):
            parse_duration(bad)


def test_cli_time_budget_preset_and_leaderboard(tmp_path: Path) -> None:
    _frame(200, seed=1).to_csv(tmp_path / "data.csv", index=False)
    env = {"FORGEML_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    import os

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "forgeml.cli", *args], cwd=tmp_path, env={**os.environ, **env},
                              capture_output=True, text=True, timeout=600, check=False)

    done = cli("train", "data.csv", "--target", "y", "--preset", "fast", "--time-budget", "60s", "--set", "train.epochs=5",
               "--set", "train.progress=false", "--set", "model.members=[lightgbm]")
    assert done.returncode == 0, done.stderr
    run_id = next(line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("run: "))
    board = cli("leaderboard", run_id)
    assert board.returncode == 0, board.stderr
    assert "lightgbm" in board.stdout and "ensemble" in board.stdout and "roc_auc" in board.stdout
    bad = cli("train", "data.csv", "--target", "y", "--time-budget", "soon")
    assert bad.returncode == 2 and "not a time budget" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("train", "data.csv", "--target", "y", "--preset", "ultra")
    assert bad.returncode == 2 and "model.preset" in bad.stderr and "Traceback" not in bad.stderr


def test_a_table_with_text_gives_the_text_to_the_networks_and_the_rest_to_the_trees(make_mixed) -> None:
    frame = make_mixed()
    pipeline = Pipeline(target="label", model="ensemble", overrides={**FAST, "model.members": ["lightgbm", "mlp"], "train.time_budget": 120}).fit(frame)
    board = pipeline.leaderboard().set_index("member")
    assert board.loc["lightgbm", "status"] == "fitted" and board.loc["mlp", "status"] == "fitted"
    members = {m["member"]: m["estimator"] for m in pipeline.predictor_.estimator.members}
    if "lightgbm" in members:
        assert not members["lightgbm"].spec.tokens  # the trees never saw the text column
    if "mlp" in members:
        assert members["mlp"].spec.tokens  # the network reads it


def test_the_ensemble_refuses_torchrun_with_one_line() -> None:
    from types import SimpleNamespace

    from forgeml.models.estimator import FitOptions
    from forgeml.models.ensemble import EnsembleEstimator

    estimator = EnsembleEstimator(SimpleNamespace(), None, None)
    with pytest.raises(ConfigError, match="the ensemble trains in one process"):
        estimator.fit({}, np.zeros(3), None, None, FitOptions(dist=SimpleNamespace(enabled=True)))


def test_the_second_level_is_kept_only_when_it_beats_the_weighted_average_on_held_out_folds() -> None:
    from forgeml.models.stacking import choose_level

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    logit = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.0, 400)
    overconfident = 1 / (1 + np.exp(-6 * logit))  # right in ranking, badly calibrated: only a second level rescales it
    coin = np.full(400, 0.5)
    members = [np.stack([1 - p, p], axis=1) for p in (overconfident, coin)]
    choice = choose_level("binary", y, members, rounds=25, seed=0)
    assert choice.stacker is not None and choice.stack_loss < choice.average_loss
    stacked = choice.stacker.scores(members)
    assert stacked.shape == (400, 2) and np.allclose(stacked.sum(axis=1), 1)
    assert selection_loss("binary", y, stacked) < selection_loss("binary", y, members[0])
    calibrated = 1 / (1 + np.exp(-2 * logit))  # the truth's own probabilities: nothing for a stacker to add
    truth = [np.stack([1 - calibrated, calibrated], axis=1), np.stack([1 - coin, coin], axis=1)]
    assert choose_level("binary", y, truth, rounds=25, seed=0).stack_loss >= choose_level("binary", y, truth, rounds=25, seed=0).average_loss - 0.01


def test_a_stacked_ensemble_saves_and_loads_without_pickle(tmp_path, monkeypatch) -> None:
    pytest.importorskip("lightgbm")
    from forgeml.models import stacking

    choose = stacking.choose_level

    def always_stack(task, y, predictions, rounds, seed):  # the save/load path, whichever level these rows favour
        choice = choose(task, y, predictions, rounds, seed)
        return stacking.LevelChoice(stacking.fit_stacker(task, y, predictions), choice.average_loss, choice.stack_loss)

    monkeypatch.setattr(stacking, "choose_level", always_stack)
    frame = _frame(rows=240, seed=3)
    overrides = {**FAST, "model.members": ["lightgbm", "linear"], "model.stacking": "on", "train.time_budget": 60}
    pipeline = Pipeline(target="y", model="ensemble", overrides=overrides).fit(frame)
    board = pipeline.leaderboard()
    assert board.loc[board["member"] == "ensemble", "level"].item().startswith("stacked (held-out-fold loss: weighted average")
    pipeline.save(tmp_path / "bundle")
    assert (tmp_path / "bundle" / "stacker.safetensors").exists()
    assert {"member_lightgbm", "member_linear"} <= {p.name for p in (tmp_path / "bundle").iterdir()}  # a stacker keeps every member
    loaded = Pipeline.load(tmp_path / "bundle")
    before, after = pipeline.predict(frame.head(20)), loaded.predict(frame.head(20))
    probabilities = before.filter(like="_proba_").to_numpy()
    assert probabilities.shape == (20, 2) and np.allclose(probabilities, after.filter(like="_proba_").to_numpy())


def test_export_says_an_ensemble_is_served_as_it_is(fitted) -> None:
    from forgeml.export.exporter import ExportError, export_bundle

    _, bundle, _ = fitted
    with pytest.raises(ExportError, match="this ensemble bundle has no torch network") as caught:
        export_bundle(bundle, "onnx")
    said = str(caught.value)
    assert "served as it is" in said and "ensemble.json" in said and "no pickle" in said and "--model mlp" in said


def test_members_of_your_own_join_the_preset_and_survive_save_and_load(tmp_path) -> None:
    """model.members_from: a YAML file of members (forgeml tune's member.yaml) fitted after the
    preset's, listed in the leaderboard, saved in the bundle (the file is not needed to load)."""
    members = tmp_path / "member.yaml"
    members.write_text("tuned_gbm:\n  model: {type: gbm, num_leaves: 7, learning_rate: 0.2}\n", encoding="utf-8")
    overrides = {**FAST, "model.members": ["lightgbm"], "model.members_from": [str(members)], "train.time_budget": 120}
    pipeline = Pipeline(target="y", model="ensemble", overrides=overrides).fit(_frame(200))
    board = pipeline.leaderboard().set_index("member")
    assert board.loc["tuned_gbm", "status"] == "fitted" and board.loc["tuned_gbm", "model"]["num_leaves"] == 7
    members.unlink()
    loaded = Pipeline.load(pipeline.save(tmp_path / "bundle"))
    rows = _frame(20, seed=3).drop(columns=["y"])
    pd.testing.assert_frame_equal(loaded.predict(rows), pipeline.predict(rows))


@pytest.mark.parametrize("content, expected", [(None, "does not exist"), ("[1, 2]", "not a members file"),
                                               ("inner:\n  model: {type: ensemble}\n", "is itself an ensemble")])
def test_a_bad_members_file_is_one_clear_error(tmp_path, content, expected) -> None:
    path = tmp_path / "member.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected) as caught:
        Pipeline(target="y", model="ensemble", overrides={**FAST, "model.members": ["lightgbm"], "model.members_from": [str(path)]}).fit(_frame(120))
    assert "model.members_from" in str(caught.value)
