"""An ML engineer's session on Chinese data with LightGBM, through the real CLI: train, predict
(a CSV Excel opens), refer to runs by id prefix, typos in the config, a failed run, the gbm
report and learning curves, export, the model card.

One ``forgeml train --model gbm`` (and one that fails) shared by the module; each runs in seconds.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

CITIES_YES = ["北京", "上海", "广州", "深圳"]
CITIES_NO = ["杭州", "成都", "武汉", "西安"]


def orders(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """``标签`` (是/否) depends on the city alone (8 cities: LightGBM's many-vs-many category
    splits); ``面积`` and ``尺寸|cm`` are noise, the second with a ``|`` in its name."""
    rng = np.random.default_rng(seed)
    city = rng.choice(CITIES_YES + CITIES_NO, rows)
    return pd.DataFrame({
        "城市": city,
        "面积": rng.uniform(20, 200, rows).round(1),
        "尺寸|cm": rng.normal(50, 10, rows).round(2),
        "标签": np.where(np.isin(city, CITIES_YES), "是", "否"),
    })


class Session:
    def __init__(self, workdir, train, failed):
        self.workdir, self.train, self.failed = workdir, train, failed

    @property
    def run_id(self) -> str:
        return self.train.run_id

    @property
    def run_dir(self):
        return self.workdir / "runs" / self.run_id

    @property
    def bundle(self):
        return self.run_dir / "bundle"

    @property
    def broken_id(self) -> str:
        return next(p.name for p in (self.workdir / "runs").iterdir() if "-broken-" in p.name)


@pytest.fixture(scope="module")
def session(tmp_path_factory, cli_pool, cli) -> Session:
    workdir = tmp_path_factory.mktemp("gbm_chinese")
    orders().to_csv(workdir / "订单.csv", index=False)
    train = cli_pool.submit(cli, "train", "订单.csv", "--target", "标签", "--model", "gbm", "--threads", "1",
                            "--runs-dir", "runs", cwd=workdir)
    # a run that fails once the run folder exists: a time budget spent before the first member starts
    failed = cli_pool.submit(cli, "train", "订单.csv", "--target", "标签", "--model", "ensemble", "--threads", "1",
                             "--set", "train.time_budget=0.01", "--runs-dir", "runs", "--name", "broken", cwd=workdir)
    result = Session(workdir, train.result(), failed.result())
    assert result.train.returncode == 0, result.train
    return result


# ----------------------------------------------------------------------------- 2. predictions CSV for Excel
def test_predictions_with_chinese_text_are_written_with_a_bom(session, cli):
    new = orders(rows=30, seed=5).drop(columns=["标签"])
    new.to_csv(session.workdir / "新订单.csv", index=False)
    done = cli("predict", session.bundle, "新订单.csv", "-o", "预测.csv", cwd=session.workdir)
    assert done.returncode == 0, done
    raw = (session.workdir / "预测.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel then reads UTF-8, not the ANSI code page
    out = pd.read_csv(session.workdir / "预测.csv", encoding="utf-8-sig")
    assert list(out.columns) == ["标签_prediction", "标签_proba_否", "标签_proba_是"]
    assert len(out) == 30 and set(out["标签_prediction"]) <= {"是", "否"}


# ----------------------------------------------------------------------------- 3. run ids for bundles
def test_predict_evaluate_export_take_a_run_id_prefix(session, cli):
    prefix = session.run_id[:-2]
    orders(rows=30, seed=6).to_csv(session.workdir / "labelled.csv", index=False)
    predicted = cli("predict", prefix, "labelled.csv", "-o", "by_id.csv", "--runs-dir", "runs", cwd=session.workdir)
    assert predicted.returncode == 0, predicted
    assert len(pd.read_csv(session.workdir / "by_id.csv", encoding="utf-8-sig")) == 30
    evaluated = cli("evaluate", session.run_id, "labelled.csv", "--runs-dir", "runs", cwd=session.workdir)
    assert evaluated.returncode == 0 and "f1_macro" in evaluated.stdout, evaluated
    assert (session.bundle.parent / "evaluations" / "labelled" / "report.html").is_file()


@pytest.mark.parametrize("which", ["ambiguous", "unknown", "failed run"])
def test_a_bad_run_reference_is_one_line_naming_the_candidates(session, cli, which):
    broken = session.broken_id
    reference = {"ambiguous": "20", "unknown": "nope", "failed run": broken}[which]
    done = cli("predict", reference, "订单.csv", "--runs-dir", "runs", cwd=session.workdir)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done
    if which == "failed run":
        assert "has no bundle (status: failed)" in done.stderr
    else:
        assert session.run_id in done.stderr and broken in done.stderr  # the candidates, named


def test_serve_takes_a_run_id(session):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    process = subprocess.Popen([sys.executable, "-m", "forgeml.cli", "serve", session.run_id[:-3], "--runs-dir", "runs",
                                "--port", str(port)], cwd=session.workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read().decode()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server not ready"
            time.sleep(0.2)
        info = httpx.get(f"http://127.0.0.1:{port}/v1/model").json()
        assert info["model"] == "gbm" and info["model_version"].startswith(session.run_id + "@")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


# ----------------------------------------------------------------------------- 4. config typos
@pytest.mark.parametrize("setting, wanted", [
    ("train.epoch=5", "unknown key train.epoch — did you mean train.epochs?"),
    ("trian.epochs=5", "unknown key trian.epochs — did you mean train.epochs?"),
    ("model.num_boost_roud=5", "unknown key model.num_boost_roud — did you mean model.num_boost_round?"),
])
def test_a_config_key_typo_names_the_real_key(session, cli, setting, wanted):
    done = cli("train", "订单.csv", "--target", "标签", "--model", "gbm", "--set", setting, "--runs-dir", "typo-runs", cwd=session.workdir)
    assert done.returncode == 2, done
    assert wanted in done.stderr and len(done.stderr.strip().splitlines()) == 1, done
    assert not (session.workdir / "typo-runs").exists()  # refused before any run was created


def test_a_typo_in_config_yaml_names_the_real_key(session, cli):
    (session.workdir / "typo.yaml").write_text("target: 标签\ndata:\n  path: 订单.csv\ntrain:\n  epoch: 5\n", encoding="utf-8")
    done = cli("train", "typo.yaml", "--runs-dir", "typo-runs", cwd=session.workdir)
    assert done.returncode == 2, done
    assert "typo.yaml: unknown key train.epoch — did you mean train.epochs?" in done.stderr, done


# ----------------------------------------------------------------------------- 5. a failed run says why
def test_a_failed_run_writes_the_error_to_its_log_and_is_marked_failed(session):
    assert session.failed.returncode == 2 and "Traceback" not in session.failed.stderr, session.failed
    run_dir = session.workdir / "runs" / session.broken_id
    log = (run_dir / "train.log").read_text(encoding="utf-8")
    assert "ERROR failed: ForgeError: train.time_budget: the time budget ended before any model was fitted" in log
    assert "Traceback (most recent call last)" in log
    assert json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["status"] == "failed"


# ----------------------------------------------------------------------------- 6. gbm curves and wording
def test_gbm_rounds_reach_metrics_jsonl_and_the_report_says_boosting_rounds(session, cli):
    rows = [json.loads(line) for line in (session.run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    history = json.loads((session.bundle / "history.json").read_text(encoding="utf-8"))
    rounds = [row["epoch"] for row in rows]
    assert len(rows) >= 2 and rounds == sorted(rounds) and rounds[0] == 1 and rounds[-1] == len(history)
    assert all({"train_loss", "val_loss"} <= set(row) for row in rows)
    report = (session.bundle / "report.html").read_text(encoding="utf-8")
    assert f"trained {len(history)} boosting rounds" in report and "epochs in" not in report
    shown = cli("runs", "show", session.run_id, "--runs-dir", "runs", cwd=session.workdir)
    assert re.search(rf"boosting rounds run\s+{len(history)}\b", shown.stdout), shown


def test_gbm_splits_on_a_category_in_small_data(session):
    """200 rows, the label set by an 8-value category: LightGBM's default min_data_per_group (100)
    forbade every such split, leaving the model at chance."""
    metrics = json.loads((session.bundle / "metrics.json").read_text(encoding="utf-8"))["test"]
    assert metrics["accuracy"] >= 0.9, metrics


# ----------------------------------------------------------------------------- 7. export of a gbm bundle
def test_export_of_a_gbm_bundle_names_its_lightgbm_model_file(session, cli, tmp_path):
    import shutil

    import lightgbm

    bundle = shutil.copytree(session.bundle, tmp_path / "bundle")  # other tests read the original
    done = cli("export", bundle, "--format", "onnx", cwd=session.workdir)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done
    assert "gbm_model_0.txt" in done.stderr and "--format lightgbm" in done.stderr and (bundle / "gbm_model_0.txt").is_file()
    assert not (bundle / "exports").exists()

    native = cli("export", bundle, "--format", "lightgbm", cwd=session.workdir)
    assert native.returncode == 0 and "model.txt" in native.stdout, native
    entry = json.loads((bundle / "exports" / "manifest.json").read_text(encoding="utf-8"))["exports"]["lightgbm"]
    assert entry["file"] == "model.txt" and entry["max_abs_diff"] == 0.0
    assert lightgbm.Booster(model_file=str(bundle / "exports" / "model.txt")).num_feature() == 3


# ----------------------------------------------------------------------------- 9. model card
def test_model_card_escapes_pipes_in_column_names(session):
    card = (session.bundle / "model_card.md").read_text(encoding="utf-8")
    row = next(line for line in card.splitlines() if line.startswith("| 尺寸"))
    assert row.startswith("| 尺寸\\|cm | number |")
    assert len(re.findall(r"(?<!\\)\|", row)) == 4  # three cells, as in the header


# ----------------------------------------------------------------------------- 11. the data file in the report
def test_the_report_and_bundle_config_name_the_data_file(session):
    config = yaml.safe_load((session.bundle / "config.yaml").read_text(encoding="utf-8"))
    assert config["data"]["path"] and config["data"]["path"].endswith("订单.csv")
    run_config = yaml.safe_load((session.run_dir / "config.yaml").read_text(encoding="utf-8"))
    assert run_config["data"]["path"] == config["data"]["path"]
