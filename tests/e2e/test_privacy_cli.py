"""``forgeml train --privacy-epsilon`` through the real command line: a private run's spent ε and δ
in metrics.json, the model card and report.html, its bundle predicting, and every impossible
setting refused with one line before training (harness: tests/e2e/bad_input.py)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import write_csv
from tests.e2e.bad_input import assert_one_clear_line, cases_of, start_cases, train_args

QUICK = ["--set", "train.epochs=3", "--set", "train.progress=false", "--threads", "1"]


def test_a_private_run_reports_what_it_spent_and_its_bundle_predicts(tmp_path, cli, make_mixed):
    write_csv(make_mixed(), tmp_path / "mixed.csv")
    train = cli(*train_args("mixed.csv", "label"), "--privacy-epsilon", "3", *QUICK, cwd=tmp_path)  # model.type auto
    assert train.returncode == 0, train
    assert "privacy: DP-SGD through Opacus, target ε = 3" in train.stderr + train.stdout
    assert "model.norm batch → layer" in train.stderr + train.stdout
    assert ":INFO:" not in train.stderr, train  # Opacus's import-time logging.basicConfig is undone
    assert "Warning" not in train.stderr, train  # nor do its (and torch's hook) warnings reach the user
    bundle = tmp_path / "runs" / train.run_id / "bundle"
    spent = json.loads((bundle / "metrics.json").read_text(encoding="utf-8"))["privacy"]
    assert 0 < spent["epsilon"] <= 3 and spent["delta"] == 1e-5 and spent["steps"] > 0
    config = (bundle / "config.yaml").read_text(encoding="utf-8")
    assert "type: mlp" in config and "norm: layer" in config and "epsilon: 3.0" in config  # auto chose the network
    card = (bundle / "model_card.md").read_text(encoding="utf-8")
    assert f"ε = {spent['epsilon']:.3g} spent of 3" in card and "δ = 1e-05" in card
    assert f"ε = {spent['epsilon']:.3g} spent of 3" in (bundle / "report.html").read_text(encoding="utf-8")
    from forgeml import Pipeline

    assert f"ε = {spent['epsilon']:.3g} spent of 3" in Pipeline.load(bundle).report()  # a report rendered again from the bundle says it too

    make_mixed(rows=20, seed=9).drop(columns=["label"]).to_csv(tmp_path / "new.csv", index=False)
    predict = cli("predict", bundle, "new.csv", "-o", "predictions.csv", cwd=tmp_path)  # the fixed network reloads
    assert predict.returncode == 0, predict
    assert len(pd.read_csv(tmp_path / "predictions.csv")) == 20


def _mixed(folder, frame) -> list:
    frame.to_csv(folder / "mixed.csv", index=False)
    return [*train_args("mixed.csv", "label"), *QUICK]


def case_epsilon_zero(folder, bundle, frame):
    return [*_mixed(folder, frame), "--privacy-epsilon", "0"]


def case_negative_epsilon(folder, bundle, frame):
    return [*_mixed(folder, frame), "--privacy-epsilon=-1"]


def case_delta_not_below_one_over_n(folder, bundle, frame):
    return [*_mixed(folder, frame), "--privacy-epsilon", "1", "--set", "train.privacy.delta=0.05"]


def case_delta_zero(folder, bundle, frame):
    return [*_mixed(folder, frame), "--privacy-epsilon", "1", "--set", "train.privacy.delta=0"]


def case_max_grad_norm_zero(folder, bundle, frame):
    return [*_mixed(folder, frame), "--privacy-epsilon", "1", "--set", "train.privacy.max_grad_norm=0"]


def case_gbm(folder, bundle, frame):
    return [*_mixed(folder, frame), "--privacy-epsilon", "1", "--model", "gbm"]


def case_ensemble_preset(folder, bundle, frame):
    return [*_mixed(folder, frame), "--privacy-epsilon", "1", "--preset", "fast"]


def case_under_torchrun(folder, bundle, frame):
    return [*_mixed(folder, frame), "--privacy-epsilon", "1", "--nproc-per-node", "2"]


CASES = cases_of(globals())
NEEDLES: dict[str, tuple[str, ...]] = {
    "epsilon_zero": ("train.privacy.epsilon", "greater than 0"),
    "negative_epsilon": ("train.privacy.epsilon", "greater than 0"),
    "delta_not_below_one_over_n": ("train.privacy.delta", "1/n = 1/42", "below"),
    "delta_zero": ("train.privacy.delta", "greater than 0"),
    "max_grad_norm_zero": ("train.privacy.max_grad_norm", "greater than 0"),
    "gbm": ("model.type gbm", "no DP guarantee", "--model mlp"),
    "ensemble_preset": ("model.type ensemble", "--model mlp"),
    "under_torchrun": ("--privacy-epsilon", "one process", "Opacus's DDP"),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, cli, cli_pool, make_mixed) -> dict:
    return start_cases(CASES, tmp_path_factory, tmp_path_factory.mktemp("no_bundle"), cli, cli_pool, make_mixed(rows=60, seed=5))


@pytest.mark.parametrize("name", list(CASES))
def test_an_impossible_setting_is_one_line_before_training(outcomes, name):
    assert_one_clear_line(outcomes[name].result(), *NEEDLES[name])


def test_without_opacus_a_private_run_says_which_extra_to_install(tmp_path, make_mixed):
    from tests.test_extras import one_line, without

    make_mixed(rows=40).to_csv(tmp_path / "mixed.csv", index=False)
    line = one_line(without(["opacus"], "train", "mixed.csv", "--target", "label", "--privacy-epsilon", "3", cwd=tmp_path))
    assert line == "error: train.privacy: needs opacus, which is not installed — pip install 'forgeml[privacy]'"
