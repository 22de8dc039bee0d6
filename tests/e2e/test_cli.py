"""The command line end to end: init → train → evaluate → predict → report → runs, and demo.

Every command runs in a subprocess, as a user would type it; the trainings come from the
session's ``cli_trains`` (started together in the background, see conftest).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

BUNDLE_FILES = {"config.yaml", "features.json", "metrics.json", "report.html", "model_card.md", "manifest.json"}


def _printed_path(result, label: str) -> Path:
    match = re.search(rf"^{label}: (.+)$", result.stdout, re.MULTILINE)
    assert match, f"no '{label}:' line\n{result}"
    return Path(match.group(1).strip())


# ----------------------------------------------------------------------------- init
def test_init_writes_every_inferred_feature(trained):
    assert "wrote config.yaml" in trained.init.stdout, trained.init
    raw = yaml.safe_load((trained.workdir / "config.yaml").read_text(encoding="utf-8"))
    types = {feature["name"]: feature["type"] for feature in raw["features"]}
    assert types == {"age": "number", "income": "number", "city": "category", "signup": "date",
                     "review": "text", "price": "number", "size": "number"}
    assert raw["target"] == ["label"] and raw["task"] == "binary"
    assert raw["data"]["path"] == "mixed.csv"  # relative to the config, so the folder can move
    assert raw["train"]["epochs"] == 200 and raw["model"] == {**raw["model"], "type": "ensemble", "preset": "medium"}  # auto, resolved for a table


def test_init_refuses_to_overwrite_without_force(tmp_path, cli, make_mixed):
    make_mixed(rows=40).to_csv(tmp_path / "mixed.csv", index=False)
    (tmp_path / "config.yaml").write_text("# mine\n", encoding="utf-8")

    refused = cli("init", "mixed.csv", "--target", "label", cwd=tmp_path)
    assert refused.returncode == 2, refused
    assert "config.yaml" in refused.stderr and "exists" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (tmp_path / "config.yaml").read_text(encoding="utf-8") == "# mine\n"

    forced = cli("init", "mixed.csv", "--target", "label", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced
    assert "features:" in (tmp_path / "config.yaml").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- train
@pytest.mark.parametrize("flags", [(["size"], {}), (None, {"target": "size"})], ids=["--target", "--set target="])
def test_another_target_than_the_configs_is_inferred_afresh(tmp_path, flags):
    from forgeml.config import Config
    from forgeml.workflow import load_config

    (tmp_path / "config.yaml").write_text(Config(target="label", task="binary", data={"path": "d.csv"}).to_yaml())
    target, overrides = flags
    config, data = load_config(tmp_path / "config.yaml", target, None, dict(overrides))
    assert config.target == ["size"] and config.task == "auto"  # not the label's "binary"
    assert data == tmp_path / "d.csv"
    same, _ = load_config(tmp_path / "config.yaml", ["label"], None, {})
    assert same.task == "binary"  # same target: the config's task stands


def test_train_config_with_another_target_that_is_an_input(trained, tmp_path, cli):
    for name in ("config.yaml", "mixed.csv"):
        (tmp_path / name).write_bytes((trained.workdir / name).read_bytes())
    result = cli("train", "config.yaml", "--target", "price", "--runs-dir", "runs", cwd=tmp_path)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert "['price'] are both a target and an input feature" in result.stderr and "remove them" in result.stderr


def test_train_from_config_prints_metrics_and_writes_the_run(trained):
    out = trained.train.stdout
    assert "held-out metrics" in out and "f1_macro" in out and "accuracy" in out, trained.train
    report = _printed_path(trained.train, "report")
    assert (trained.workdir / report).is_file()

    run_dir = trained.run_dir
    for name in ("config.yaml", "metrics.jsonl", "train.log"):
        assert (run_dir / name).is_file(), name
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    folds = sorted({row.get("fold") for row in epochs}, key=str)  # a small table is bagged: every member's rows
    assert [row["epoch"] for row in epochs if row.get("fold") == folds[0]] == [1, 2, 3]
    assert len(epochs) == 3 * len(folds)
    assert "completed" in (run_dir / "train.log").read_text()

    files = {p.name for p in trained.bundle.rglob("*") if p.is_file()}  # bagged members sit in fold<k>/
    assert BUNDLE_FILES | {"weights.safetensors"} <= files
    manifest = json.loads((trained.bundle / "manifest.json").read_text())
    paths = {p.relative_to(trained.bundle).as_posix() for p in trained.bundle.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == paths - {"manifest.json"}
    assert manifest["task"] == "binary" and manifest["model"] == "mlp"
    assert (trained.bundle / "report.html").read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")


def test_train_gbm_writes_a_text_model(cli_trains):
    run = cli_trains["gbm"].result()
    assert run.train.returncode == 0, run.train
    assert "f1_macro" in run.train.stdout
    files = {p.name for p in run.bundle.iterdir()}
    assert BUNDLE_FILES | {"gbm_model_0.txt"} <= files
    assert "weights.safetensors" not in files
    assert json.loads((run.bundle / "manifest.json").read_text())["model"] == "gbm"


def test_multi_target_regression(cli_trains, tmp_path, cli, make_regression):
    run = cli_trains["multi"].result()
    assert run.train.returncode == 0, run.train
    assert "r2" in run.train.stdout and "mae" in run.train.stdout
    config = yaml.safe_load((run.bundle / "config.yaml").read_text())
    assert config["target"] == ["price", "size"] and config["task"] == "regression"

    new = make_regression(rows=25, seed=11).drop(columns=["price", "size"])
    new.to_csv(tmp_path / "new.csv", index=False)
    predicted = cli("predict", run.bundle, "new.csv", "-o", "out.csv", cwd=tmp_path)
    assert predicted.returncode == 0, predicted
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["price_prediction", "size_prediction"]
    assert len(out) == 25 and np.isfinite(out.to_numpy()).all()


# ----------------------------------------------------------------------------- evaluate, predict, report
def test_evaluate_prints_metrics_and_writes_a_report(trained, tmp_path, cli, make_mixed):
    make_mixed(rows=60, seed=7).to_csv(tmp_path / "test.csv", index=False)
    result = cli("evaluate", trained.bundle, "test.csv", "-o", "evaluation", cwd=tmp_path)
    assert result.returncode == 0, result
    assert "metrics on test.csv (60 rows)" in result.stdout and "f1_macro" in result.stdout
    report = _printed_path(result, "report")
    assert (tmp_path / report).is_file()
    metrics = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert metrics["n"] == 60 and 0 <= metrics["accuracy"] <= 1


def test_predict_writes_one_row_per_input_row(trained, tmp_path, cli, make_mixed):
    new = make_mixed(rows=37, seed=8).drop(columns=["label"])
    new.to_csv(tmp_path / "new.csv", index=False)
    result = cli("predict", trained.bundle, "new.csv", "-o", "predictions.csv", cwd=tmp_path)
    assert result.returncode == 0, result
    assert "wrote 37 predictions" in result.stdout
    assert (tmp_path / "predictions.csv").read_bytes().startswith(b"label_prediction,")  # ASCII only: no BOM
    out = pd.read_csv(tmp_path / "predictions.csv")
    assert list(out.columns) == ["label_prediction", "label_proba_no", "label_proba_yes"]
    assert len(out) == 37
    assert set(out["label_prediction"]) <= {"yes", "no"}
    np.testing.assert_allclose(out[["label_proba_no", "label_proba_yes"]].sum(axis=1), 1.0, atol=1e-5)
    expected = np.where(out["label_proba_yes"] > out["label_proba_no"], "yes", "no")
    assert (out["label_prediction"] == expected).all()


def test_predict_keeps_the_input_columns_asked_for(trained, tmp_path, cli, make_mixed):
    new = make_mixed(rows=12, seed=9).drop(columns=["label"])
    new.insert(0, "订单号", [f"A{i:03d}" for i in range(12)])  # an id the model never saw
    new.to_csv(tmp_path / "new.csv", index=False)
    result = cli("predict", trained.bundle, "new.csv", "-o", "kept.csv", "--keep", "订单号,age", cwd=tmp_path)
    assert result.returncode == 0, result
    kept = pd.read_csv(tmp_path / "kept.csv", encoding="utf-8-sig")
    assert list(kept.columns[:3]) == ["订单号", "age", "label_prediction"]
    assert kept["订单号"].tolist() == new["订单号"].tolist()
    assert cli("predict", trained.bundle, "new.csv", "-o", "plain.csv", cwd=tmp_path).returncode == 0
    alone = pd.read_csv(tmp_path / "plain.csv")
    pd.testing.assert_frame_equal(kept.drop(columns=["订单号", "age"]), alone)  # the same predictions
    everything = cli("predict", trained.bundle, "new.csv", "-o", "all.csv", "--keep-all", cwd=tmp_path)
    assert everything.returncode == 0 and list(pd.read_csv(tmp_path / "all.csv", encoding="utf-8-sig").columns[:len(new.columns)]) == list(new.columns)
    wrong = cli("predict", trained.bundle, "new.csv", "-o", "x.csv", "--keep", "order_id", cwd=tmp_path)
    assert wrong.returncode == 2 and "no column 'order_id' to keep" in wrong.stderr and "Traceback" not in wrong.stderr
    assert not (tmp_path / "x.csv").exists()


def test_report_prints_the_path(trained, cli):
    by_folder = cli("report", trained.bundle, cwd=trained.workdir)
    assert by_folder.returncode == 0, by_folder
    assert Path(by_folder.stdout.strip()) == (trained.bundle / "report.html").resolve()
    by_id = cli("report", trained.train.run_id, "--runs-dir", "runs", cwd=trained.workdir)
    assert by_id.returncode == 0, by_id
    assert by_id.stdout.strip() == by_folder.stdout.strip()


# ----------------------------------------------------------------------------- runs
def test_runs_list_show_compare(cli_trains, cli):
    mlp, gbm = cli_trains["config"].result(), cli_trains["gbm"].result()  # same runs folder
    ids = [mlp.train.run_id, gbm.train.run_id]
    cwd = mlp.workdir

    listed = cli("runs", "list", "--runs-dir", "runs", cwd=cwd)
    assert listed.returncode == 0, listed
    created = {run_id: json.loads((cwd / "runs" / run_id / "run.json").read_text())["created_at"] for run_id in ids}
    newest_first = sorted(ids, key=lambda run_id: created[run_id], reverse=True)
    assert listed.stdout.index(newest_first[0]) < listed.stdout.index(newest_first[1]), listed
    assert listed.stdout.count("f1_macro=") == 2 and listed.stdout.count("completed") == 2

    shown = cli("runs", "show", mlp.train.run_id, "--runs-dir", "runs", cwd=cwd)
    assert shown.returncode == 0, shown
    assert mlp.train.run_id in shown.stdout and "completed" in shown.stdout and "f1_macro" in shown.stdout

    compared = cli("runs", "compare", *ids, "--runs-dir", "runs", cwd=cwd)
    assert compared.returncode == 0, compared
    assert all(run_id in compared.stdout for run_id in ids) and "gbm" in compared.stdout


def test_a_killed_training_is_marked_and_pruned(tmp_path, cli, make_mixed):
    """kill -9 mid-training: `runs list` says failed (or interrupted, with a checkpoint), never
    running forever, and `runs prune` removes it after a dry run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    make_mixed(rows=120).to_csv(tmp_path / "mixed.csv", index=False)
    env = {**os.environ, "FORGEML_RUNS_DIR": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    training = subprocess.Popen([sys.executable, "-m", "forgeml.cli", "train", "mixed.csv", "--target", "label", "--threads", "1",
                                 "--model", "mlp", "--set", "train.epochs=100000", "--set", "train.progress=false"], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "runs").glob("*/metrics.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.2)  # training has begun: the run holds its lock and has written an epoch
        assert list((tmp_path / "runs").glob("*/metrics.jsonl")), "training never started"
        assert "running" in cli("runs", "list", cwd=tmp_path).stdout
    finally:
        training.send_signal(signal.SIGKILL)
        training.wait(30)
    listed = cli("runs", "list", cwd=tmp_path)
    assert "running" not in listed.stdout and re.search(r"\b(failed|interrupted)\b", listed.stdout), listed
    dry = cli("runs", "prune", "--failed", "--interrupted", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "would delete 1 " in dry.stdout, dry
    done = cli("runs", "prune", "--failed", "--interrupted", "--yes", cwd=tmp_path)
    assert done.returncode == 0 and "deleted 1 " in done.stdout, done
    assert not [p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.name.startswith(".")]


# ----------------------------------------------------------------------------- demo
def test_demo_trains_on_the_bundled_data(cli_trains):
    run = cli_trains["demo"].result()
    assert run.train.returncode == 0, run.train
    assert "held-out metrics" in run.train.stdout and "f1_macro" in run.train.stdout
    assert (run.workdir / _printed_path(run.train, "report")).is_file()
    assert (run.bundle / "manifest.json").is_file()


# ----------------------------------------------------------------------------- errors
def test_debug_shows_the_traceback_only_when_asked(tmp_path, cli):
    plain = cli("init", "nowhere.csv", "--target", "y", cwd=tmp_path)
    assert plain.returncode == 2, plain
    assert "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines() == [plain.stderr.strip()]
    assert plain.stderr.startswith("error: ") and "nowhere.csv" in plain.stderr

    debug = cli("--debug", "init", "nowhere.csv", "--target", "y", cwd=tmp_path)
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "DataError" in debug.stderr


@pytest.mark.parametrize("args", [["predict"], ["bogus"], ["train", "x.csv", "--no-such-option"]])
def test_usage_mistakes_are_a_short_message(args, tmp_path, cli):
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and "Error" in result.stderr


def test_help_exits_zero(tmp_path, cli):
    result = cli("--help", cwd=tmp_path)
    assert result.returncode == 0, result
    assert "train" in result.stdout and "demo" in result.stdout
