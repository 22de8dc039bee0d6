"""`forgeml tune` through the real CLI: a tiny search of LightGBM and of the MLP (architecture
included) whose refitted bundle predicts, pruning seen in the trials table, two worker processes
on one journal file, a worker killed mid-trial, and every bad input as one line."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from tests.conftest import cli_env

FAST_GBM = ["--model", "gbm", "--set", "model.num_boost_round=300", "--threads", "1"]


def _table(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 1, rows).round(3), rng.uniform(0, 10, rows).round(3)
    city = rng.choice(["paris", "lyon", "nice"], rows)
    score = x1 + 0.3 * x2 + (city == "paris") * 1.2 + rng.normal(0, 0.6, rows)
    return pd.DataFrame({"x1": x1, "x2": x2, "city": city, "price": (10 * x1 + 3 * x2 + rng.normal(0, 4, rows) + 50).round(2),
                         "label": np.where(score > np.median(score), "yes", "no")})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tune_cli")
    _table().to_csv(folder / "table.csv", index=False)
    _table(rows=15, seed=3).drop(columns=["label"]).to_csv(folder / "new.csv", index=False)
    return folder


def _trials(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "trials.csv")


def _run_dir(workdir: Path, result) -> Path:
    return workdir / "runs" / result.run_id


def test_tune_gbm_refits_the_best_trial_as_a_bundle_that_predicts(workdir, cli):
    result = cli("tune", "table.csv", "--target", "label", *FAST_GBM, "--trials", "8", "--pruner", "median", "--runs-dir", "runs", cwd=workdir)
    assert result.returncode == 0, result
    run_dir = _run_dir(workdir, result)
    trials = _trials(run_dir)
    assert len(trials) == 8 and {"model.num_leaves", "model.learning_rate", "loss", "state"} <= set(trials.columns)
    assert (trials.state == "pruned").any(), "the pruner never stopped a trial"  # on boosting rounds' validation loss
    assert trials.loc[trials.state == "pruned", "step"].max() < 300
    summary = json.loads((run_dir / "trials.json").read_text())
    best = summary["best"]
    assert best["values"][0] == trials.loc[trials.state == "complete", "loss"].min()
    config = (run_dir / "bundle" / "config.yaml").read_text()
    assert f"num_leaves: {best['params']['model.num_leaves']}" in config  # the refit has the best trial's options
    member = yaml.safe_load((run_dir / "member.yaml").read_text())["tuned_gbm"]  # the best trial, ready to join an ensemble
    assert member["model"]["type"] == "gbm" and member["model"]["num_leaves"] == best["params"]["model.num_leaves"]
    assert member["model"]["num_boost_round"] == 300 and "member.yaml" in result.stdout  # the --set it kept, and where it is
    assert 'id="tuning"' in (run_dir / "bundle" / "report.html").read_text()
    assert summary["scoring"].startswith("5-fold out-of-fold loss") and "5-fold out-of-fold loss" in (run_dir / "bundle" / "report.html").read_text()
    assert (workdir / "runs" / "tuning" / "table-gbm.journal").is_file()
    first = _study(workdir / "runs" / "tuning" / "table-gbm.journal", "table-gbm").trials[0]
    assert first.user_attrs.get("default") and first.params["model.num_leaves"] == 31  # the untuned default is tried first
    predicted = cli("predict", result.run_id, "new.csv", "-o", "gbm.csv", "--runs-dir", "runs", cwd=workdir)
    assert predicted.returncode == 0, predicted
    assert len(pd.read_csv(workdir / "gbm.csv")) == 15
    board = cli("leaderboard", result.run_id, "--runs-dir", "runs", cwd=workdir)
    assert board.returncode == 0 and "gbm" in board.stdout, board


def test_tune_mlp_searches_the_architecture_with_a_pareto_front(workdir, cli):
    result = cli("tune", "table.csv", "--target", "price", "--model", "mlp", "--trials", "4", "--objective", "loss,params",
                 "--set", "train.epochs=6", "--set", "train.bagging_folds=1", "--set", "train.progress=false", "--threads", "1",
                 "--set", "train.batch_size=32", "--runs-dir", "runs", cwd=workdir)
    assert result.returncode == 0, result
    run_dir = _run_dir(workdir, result)
    trials = _trials(run_dir)
    assert {"model.num_layers", "model.hidden_size", "model.combiner", "train.learning_rate", "params"} <= set(trials.columns)
    assert "train.batch_size" not in trials.columns  # fixed with --set: not searched
    assert (trials.loc[trials.state == "complete", "params"] > 0).all()
    summary = json.loads((run_dir / "trials.json").read_text())
    assert summary["pareto"] and summary["best"]["trial"] in summary["pareto"]
    assert "Pareto front" in (run_dir / "bundle" / "report.html").read_text()
    predicted = cli("predict", result.run_id, "table.csv", "-o", "mlp.csv", "--runs-dir", "runs", cwd=workdir)
    assert predicted.returncode == 0, predicted
    assert pd.read_csv(workdir / "mlp.csv")["price_prediction"].notna().all()


def _study(path: Path, name: str) -> optuna.Study:
    from forgeml.tune.storage import normalise, open_storage

    return optuna.load_study(study_name=name, storage=open_storage(normalise(str(path))))


def test_two_workers_on_one_journal_file_finish_the_trials_together(workdir, cli):
    result = cli("tune", "table.csv", "--target", "label", *FAST_GBM[:-2], "--trials", "8", "--workers", "2", "--study", "pair",
                 "--no-refit", "--runs-dir", "runs", cwd=workdir)
    assert result.returncode == 0, result
    study = _study(workdir / "runs" / "tuning" / "pair.journal", "pair")
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) >= 8 and not [t for t in study.trials if t.state.name == "RUNNING"]
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2, "both processes ran trials"
    assert "worker 1 · trial" in result.stdout


def test_a_worker_killed_mid_trial_fails_only_its_trial(workdir):
    """Kill the second worker while it trains; its trial is marked failed and the study finishes."""
    journal = workdir / "runs" / "tuning" / "killed.journal"
    args = ["tune", "table.csv", "--target", "label", "--model", "mlp", "--trials", "6", "--workers", "2", "--study", "killed",
            "--set", "train.epochs=40", "--set", "train.early_stopping_patience=0", "--pruner", "none", "--no-refit", "--runs-dir", "runs"]
    parent = subprocess.Popen([sys.executable, "-m", "forgeml.cli", *args], cwd=workdir, env=cli_env(workdir), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.2)
        try:
            running = [t for t in _study(journal, "killed").trials if t.state.name == "RUNNING"] if journal.exists() else []
        except KeyError:  # the file is there, the study not yet
            continue
        if running:
            victim = next((int(t.user_attrs["worker"].rpartition(":")[2]) for t in running
                           if t.user_attrs.get("worker", "").rpartition(":")[2] != str(parent.pid)), None)
    assert victim is not None, "the worker process never started a trial"
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = parent.communicate(timeout=300)
    assert parent.returncode == 0, stderr
    assert f"worker process {victim} ended with signal 9" in stdout
    study = _study(journal, "killed")
    states = [t.state.name for t in study.trials]
    assert states.count("FAIL") == 1 and "RUNNING" not in states and states.count("COMPLETE") >= 5
    assert "Traceback" not in stderr


def test_a_study_of_another_target_or_family_is_refused(workdir, cli):
    first = cli("tune", "table.csv", "--target", "label", *FAST_GBM, "--trials", "1", "--study", "kept", "--no-refit", "--runs-dir", "runs", cwd=workdir)
    assert first.returncode == 0, first
    for args, expected in ((["--target", "price", *FAST_GBM], "was made for another target"),
                           (["--target", "label", "--model", "linear"], "was made for another model family")):
        again = cli("tune", "table.csv", *args, "--trials", "1", "--study", "kept", "--runs-dir", "runs", cwd=workdir)
        assert again.returncode == 2 and expected in again.stderr and len(again.stderr.strip().splitlines()) == 1, again
    assert len(_study(workdir / "runs" / "tuning" / "kept.journal", "kept").trials) == 1  # the old study is untouched


@pytest.mark.parametrize("args, expected", [
    (["--model", "forest"], "--model: unknown model family 'forest' — one of mlp, cnn"),
    (["--model", "ensemble"], "--model: the ensemble family has no search space"),
    (["--storage", "http://host/study"], "--storage: 'http://host/study' is not a storage forgeml can use"),
    (["--storage", "postgresql://me:secret@127.0.0.1:9/db"], "--storage: cannot use the study storage postgresql://me:***@127.0.0.1:9/db"),
    (["--objective", "loss,speed"], "--objective: --objective loss,speed is not one forgeml tunes for"),
    (["--model", "mlp", "--time-budget", "1.5s", "--set", "train.epochs=100000", "--set", "train.early_stopping_patience=0"], "--time-budget"),
    (["--time-budget", "soon"], "--time-budget: 'soon' is not a time budget"),
])
def test_bad_input_is_one_line(workdir, cli, args, expected):
    if "postgresql" in " ".join(args):
        pytest.importorskip("psycopg")
    result = cli("tune", "table.csv", "--target", "label", "--trials", "2", *args, "--runs-dir", "bad", cwd=workdir)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result
    assert not list((workdir / "bad").glob("2*")), "a refused tune left a run folder"
