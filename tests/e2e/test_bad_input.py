"""Bad input at every door: each mistake is one clear line (what, where, what to do), exit code 2,
no traceback, and nothing the user had is changed or lost.

Each case runs the real CLI in its own folder; the cases are independent, so they are started
together (``outcomes``) and each test waits for its own. A snapshot of the folder (and of any
bundle the case reads) before and after proves the inputs are untouched.
"""
from __future__ import annotations

import errno
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SENTINEL = "an older predictions file the user wants to keep\n"


def snapshot(*folders: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and mtime, outside the run registry a training creates."""
    files = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "runs" not in path.relative_to(folder).parts:
                files[str(path)] = (path.read_bytes(), path.stat().st_mtime_ns)
    return files


@dataclass
class Outcome:
    result: object  # conftest.CLIResult
    before: dict
    after: dict
    folder: Path


# ----------------------------------------------------------------------------- cases
# name → (make the files in the case folder and return the CLI arguments). ``bundle`` is the
# session's trained bundle (read-only); cases that damage a bundle damage their own copy.
Case = Callable[[Path, Path, pd.DataFrame], list]


def _train(file: str, target: str = "price") -> list:
    return ["train", file, "--target", target, "--runs-dir", "runs"]


def _init(file: str, target: str = "price") -> list:
    # init reads and checks the data exactly as train does, without importing torch: the cheaper
    # door for the loader's errors (the commonest typos still go through train above)
    return ["init", file, "--target", target]


def _copy_bundle(bundle: Path, folder: Path) -> Path:
    return Path(shutil.copytree(bundle, folder / "bundle"))


def case_missing_file(folder, bundle, frame):
    frame.to_csv(folder / "prices.csv", index=False)
    return _train("price.csv")


def case_directory(folder, bundle, frame):
    (folder / "tables").mkdir()
    frame.to_csv(folder / "tables" / "prices.csv", index=False)
    return _init("tables")


def case_empty_csv(folder, bundle, frame):
    (folder / "empty.csv").write_bytes(b"")
    return _init("empty.csv")


def case_header_only(folder, bundle, frame):
    (folder / "header.csv").write_text(",".join(frame.columns) + "\n", encoding="utf-8")
    return _init("header.csv")


def case_target_absent(folder, bundle, frame):
    frame.to_csv(folder / "data.csv", index=False)
    return _train("data.csv", target="prise")


def case_single_class(folder, bundle, frame):
    frame.assign(label="yes").to_csv(folder / "data.csv", index=False)
    return _init("data.csv", target="label")


def case_random_bytes(folder, bundle, frame):
    (folder / "data.csv").write_bytes(np.random.default_rng(0).bytes(4096))
    return _init("data.csv")


def _predict(bundle: Path | str, folder: Path) -> list:
    (folder / "predictions.csv").write_text(SENTINEL, encoding="utf-8")  # must survive a failure
    return ["predict", bundle, "new.csv", "-o", "predictions.csv"]


def case_text_in_number(folder, bundle, frame):
    new = frame.drop(columns=["label"]).astype({"income": object})
    new.loc[5, "income"] = "lots"
    new.to_csv(folder / "new.csv", index=False)
    return _predict(bundle, folder)


def case_missing_columns(folder, bundle, frame):
    frame.drop(columns=["label", "age", "city"]).to_csv(folder / "new.csv", index=False)
    return _predict(bundle, folder)


def case_unseen_and_extra(folder, bundle, frame):
    new = frame.assign(notes="ignore me", score=1.5)  # two extra columns, and label stays too
    new.loc[:4, "city"] = "atlantis"  # never seen in training
    new.to_csv(folder / "new.csv", index=False)
    return ["predict", bundle, "new.csv", "-o", "predictions.csv"]


def case_output_is_a_folder(folder, bundle, frame):
    frame.to_csv(folder / "new.csv", index=False)
    (folder / "out").mkdir()
    (folder / "out" / "keep.txt").write_text("mine", encoding="utf-8")
    return ["predict", bundle, "new.csv", "-o", "out"]


def case_truncated_weights(folder, bundle, frame):
    copy = _copy_bundle(bundle, folder)
    weights = next(copy.rglob("weights.safetensors"))  # fold0/ when bagged
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    frame.to_csv(folder / "new.csv", index=False)
    return _predict("bundle", folder)


def case_tampered_config(folder, bundle, frame):
    copy = _copy_bundle(bundle, folder)
    config = copy / "config.yaml"
    config.write_text(re.sub(r"epochs: \d+", "epochs: 999", config.read_text(encoding="utf-8")), encoding="utf-8")
    frame.to_csv(folder / "new.csv", index=False)
    return _predict("bundle", folder)


def case_foreign_folder(folder, bundle, frame):
    (folder / "model").mkdir()
    (folder / "model" / "weights.bin").write_bytes(b"\x00" * 64)
    frame.to_csv(folder / "new.csv", index=False)
    return _predict("model", folder)


def case_file_not_folder(folder, bundle, frame):
    frame.to_csv(folder / "new.csv", index=False)
    (folder / "model.zip").write_bytes(b"PK\x03\x04 not really")
    return _predict("model.zip", folder)


# ----------------------------------------------------------------------------- silent wrong answers (issue 18)
def _quick(file: str, target: str, *extra: str) -> list:
    return [*_train(file, target), "--model", "mlp", "--set", "train.epochs=3", *extra]


def case_row_number_sorted_by_class(folder, bundle, frame):
    # pandas' to_csv with its index, of a frame sorted by the label: the row number predicts the class
    frame.sort_values("label").reset_index(drop=True).to_csv(folder / "data.csv")
    return _quick("data.csv", "label")


def _comma_prices(frame: pd.DataFrame) -> pd.DataFrame:
    # a German export: semicolons, and "3101,66" prices; read as text, they were 60 classes
    return frame.assign(price=[f"{value * 60:.2f}".replace(".", ",") for value in frame["price"]])


def case_decimal_comma_target(folder, bundle, frame):
    _comma_prices(frame).to_csv(folder / "data.csv", index=False, sep=";")
    return _quick("data.csv", "price")


def case_decimal_comma_target_told_regression(folder, bundle, frame):
    _comma_prices(frame).to_csv(folder / "data.csv", index=False, sep=";")
    return _quick("data.csv", "price", "--set", "task=regression")


def case_a_class_per_row(folder, bundle, frame):
    frame.assign(order=[f"A-{i:04d}" for i in range(len(frame))]).to_csv(folder / "data.csv", index=False)
    return _quick("data.csv", "order")


def case_missing_as_information(folder, bundle, frame):
    rng = np.random.default_rng(7)
    yes = (frame["label"] == "yes").to_numpy()
    alley = rng.choice(["Grvl", "Pave"], len(frame)).astype(object)
    alley[rng.random(len(frame)) < 0.9] = None  # 90% blank: no alley, not the commoner paving
    bonus = rng.normal(100, 10, len(frame)).round(1)
    bonus[yes & (rng.random(len(frame)) < 0.8)] = np.nan  # blank mostly where the label is yes
    frame.assign(alley=alley, bonus=bonus).to_csv(folder / "data.csv", index=False)
    return _quick("data.csv", "label")


def case_test_file_overlapping_training(folder, bundle, frame):
    frame.iloc[:50].to_csv(folder / "train.csv", index=False)
    frame.iloc[35:].to_csv(folder / "test.csv", index=False)  # 15 rows in both files
    return _quick("train.csv", "label", "--set", "data.split.test_path=test.csv")


def case_a_column_derived_from_the_target(folder, bundle, frame):
    # who checked the order, known only once its label was: a leak that looks like a perfect feature
    frame.assign(checked_by=frame["label"].map({"yes": "anna", "no": "ben"})).to_csv(folder / "data.csv", index=False)
    return [*_train("data.csv", "label"), "--model", "gbm", "--set", "model.text_columns=ignore"]


def case_prune_without_a_status(folder, bundle, frame):
    return ["runs", "prune", "--runs-dir", "runs"]


def case_show_an_unknown_run(folder, bundle, frame):
    return ["runs", "show", "20990101-nope", "--runs-dir", "runs"]


CASES: dict[str, Case] = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, trained, cli, cli_pool, make_mixed) -> dict:
    """Every case started at once; ``outcomes[name].result()`` is its ``Outcome``."""
    frame = make_mixed(rows=60, seed=5)

    def run(name: str, case: Case) -> Outcome:
        folder = tmp_path_factory.mktemp(name)
        args = case(folder, trained.bundle, frame)
        before = snapshot(folder, trained.bundle)
        result = cli(*args, cwd=folder)
        return Outcome(result, before, snapshot(folder, trained.bundle), folder)

    return {name: cli_pool.submit(run, name, case) for name, case in CASES.items()}


def assert_one_clear_line(outcome: Outcome, *needles: str) -> str:
    result = outcome.result
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in: {lines[0]}"
    assert " — " in lines[0], f"no hint (what to do) in: {lines[0]}"
    assert outcome.after == outcome.before, "an input file was changed, added or removed"
    assert not list(outcome.folder.glob("runs/*/bundle")), "a failed run wrote a bundle"
    return lines[0]


# ----------------------------------------------------------------------------- unreadable data
def test_missing_file(outcomes):
    line = assert_one_clear_line(outcomes["missing_file"].result())
    assert line.startswith("error: price.csv: file not found")
    assert "did you mean 'prices.csv'" in line


def test_directory_instead_of_file(outcomes):
    assert_one_clear_line(outcomes["directory"].result(), "tables", "folder")


def test_empty_csv(outcomes):
    assert_one_clear_line(outcomes["empty_csv"].result(), "empty.csv", "empty")


def test_header_only(outcomes):
    assert_one_clear_line(outcomes["header_only"].result(), "header.csv", "no rows")


def test_not_a_table(outcomes):
    assert_one_clear_line(outcomes["random_bytes"].result(), "data.csv", "not a table")


def test_target_column_absent_suggests_the_near_name(outcomes):
    outcome = outcomes["target_absent"].result()
    line = assert_one_clear_line(outcome, "'prise'", "not found")
    assert "did you mean 'price'" in line
    assert not (outcome.folder / "runs").exists(), "a run folder for a run that never started"


def test_target_with_a_single_class(outcomes):
    assert_one_clear_line(outcomes["single_class"].result(), "'label'", "single value")


# ----------------------------------------------------------------------------- predict time
def test_text_in_a_number_column_names_column_and_row(outcomes):
    outcome = outcomes["text_in_number"].result()
    assert_one_clear_line(outcome, "'income'", "row 6", "'lots'")
    assert (outcome.folder / "predictions.csv").read_text(encoding="utf-8") == SENTINEL


def test_missing_columns_are_named(outcomes):
    outcome = outcomes["missing_columns"].result()
    assert_one_clear_line(outcome, "new.csv", "missing", "'age'", "'city'")
    assert (outcome.folder / "predictions.csv").read_text(encoding="utf-8") == SENTINEL


def _inputs_unchanged(outcome: Outcome) -> None:
    def kept(files: dict) -> dict:
        return {name: value for name, value in files.items() if not name.endswith("predictions.csv")}

    assert kept(outcome.after) == kept(outcome.before)


def test_unseen_category_predicts(outcomes):
    outcome = outcomes["unseen_and_extra"].result()
    assert outcome.result.returncode == 0, outcome.result
    _inputs_unchanged(outcome)
    predictions = pd.read_csv(outcome.folder / "predictions.csv")
    assert len(predictions) == 60 and predictions["label_prediction"].notna().all()


def test_extra_columns_are_ignored(outcomes):
    outcome = outcomes["unseen_and_extra"].result()
    assert outcome.result.returncode == 0, outcome.result
    _inputs_unchanged(outcome)
    predictions = pd.read_csv(outcome.folder / "predictions.csv")
    assert len(predictions) == 60
    assert list(predictions.columns) == ["label_prediction", "label_proba_no", "label_proba_yes"]


def test_output_path_that_is_a_folder(outcomes):
    assert_one_clear_line(outcomes["output_is_a_folder"].result(), "out", "Is a directory")  # no temp file left either


# ----------------------------------------------------------------------------- bundles
def test_truncated_weights_fail_the_checksum(outcomes):
    assert_one_clear_line(outcomes["truncated_weights"].result(), "weights.safetensors", "checksum")


def test_tampered_config_fails_the_checksum(outcomes):
    assert_one_clear_line(outcomes["tampered_config"].result(), "config.yaml", "checksum")


def test_foreign_folder(outcomes):
    assert_one_clear_line(outcomes["foreign_folder"].result(), "model", "not a forgeml bundle", "manifest.json")


def test_file_instead_of_folder(outcomes):
    assert_one_clear_line(outcomes["file_not_folder"].result(), "model.zip", "folder")


# ----------------------------------------------------------------------------- silent wrong answers
def _trained(outcome: Outcome) -> tuple[str, Path]:
    """The run's stderr (its ``data:`` lines) and bundle, after checking it succeeded, no traceback."""
    result = outcome.result
    assert result.returncode == 0 and "Traceback" not in result.stderr, result
    assert {k: v for k, v in outcome.after.items() if k in outcome.before} == outcome.before, "an input changed"
    bundles = list(outcome.folder.glob("runs/*/bundle"))
    assert len(bundles) == 1, result
    return " ".join(result.stderr.split()), bundles[0]  # rich wraps long data: lines


def _config(bundle: Path) -> dict:
    import yaml

    return yaml.safe_load((bundle / "config.yaml").read_text(encoding="utf-8"))


def test_a_row_number_column_is_dropped_with_a_data_line(outcomes):
    stderr, bundle = _trained(outcomes["row_number_sorted_by_class"].result())
    assert "data: dropped column 'Unnamed: 0': looks like a row number" in stderr
    config = _config(bundle)
    assert config["data"]["drop_reasons"]["Unnamed: 0"].startswith("looks like a row number")
    assert "Unnamed: 0" not in [feature["name"] for feature in config["features"]]


@pytest.mark.parametrize("case", ["decimal_comma_target", "decimal_comma_target_told_regression"])
def test_a_decimal_comma_target_is_a_regression(outcomes, case):
    outcome = outcomes[case].result()
    stderr, bundle = _trained(outcome)
    assert json.loads((bundle / "manifest.json").read_text())["task"] == "regression"
    metrics = json.loads((bundle / "metrics.json").read_text())["test"]
    assert {"r2", "mae"} <= set(metrics) and 1 < metrics["mae"] < 3000  # in the file's units, not 1000x off


def test_a_class_per_row_fails_instead_of_an_empty_metrics_table(outcomes):
    assert_one_clear_line(outcomes["a_class_per_row"].result(), "'order'", "nothing left to evaluate on", "task: regression")


def test_missing_values_that_tell_something_are_kept_as_information(outcomes):
    stderr, bundle = _trained(outcomes["missing_as_information"].result())
    features = {feature["name"]: feature for feature in _config(bundle)["features"]}
    assert features["alley"]["type"] == "category" and "missing is its own level" in features["alley"]["note"]
    assert "'bonus' is missing in" in stderr and "a was-missing indicator keeps that information" in stderr


def test_rows_in_both_the_training_and_the_test_file_leave_training(outcomes):
    stderr, bundle = _trained(outcomes["test_file_overlapping_training"].result())
    said = "dropped 15 training row(s) that are also in the test data (test.csv)"
    assert f"data: {said}" in stderr and said in (bundle / "report.html").read_text(encoding="utf-8")
    assert json.loads((bundle / "metrics.json").read_text())["test"]["n"] == 25  # the test file whole


def test_a_dominant_input_is_reported_as_a_possible_leak(outcomes):
    stderr, bundle = _trained(outcomes["a_column_derived_from_the_target"].result())
    assert "data: possible leak: 'checked_by' holds 100% of the permutation importance" in stderr
    report = (bundle / "report.html").read_text(encoding="utf-8")
    assert '<section id="warnings">' in report and "possible leak: &#x27;checked_by&#x27;" in report


# ----------------------------------------------------------------------------- runs
def test_prune_asks_which_runs(outcomes):
    assert_one_clear_line(outcomes["prune_without_a_status"].result(), "forgeml runs prune", "--failed")


def test_an_unknown_run_id(outcomes):
    assert_one_clear_line(outcomes["show_an_unknown_run"].result(), "no run matches '20990101-nope'")


# ----------------------------------------------------------------------------- trains anyway
@pytest.fixture(scope="module")
def quirks(cli_trains):
    """mixed data with an all-empty column, 10 unlabelled rows and a one-row class (conftest)."""
    run = cli_trains["quirks"].result()
    assert run.train.returncode == 0, run.train
    return run


def test_all_missing_column_is_dropped_with_a_note(quirks):
    config = (quirks.bundle / "config.yaml").read_text(encoding="utf-8")
    assert "blank: all values missing" in config  # data.drop_reasons
    assert "name: blank" not in config
    summary = json.loads((quirks.bundle / "data_summary.json").read_text())
    blank = next(column for column in summary["per_column"] if column["name"] == "blank")
    assert blank["type"] == "dropped" and blank["note"] == "all values missing"
    report = (quirks.bundle / "report.html").read_text(encoding="utf-8")
    assert re.search(r"<td>blank</td>.*?all values missing", report)


def test_rows_without_a_target_are_dropped_and_counted(quirks):
    cleaning = json.loads((quirks.bundle / "cleaning.json").read_text())
    assert cleaning["target_missing_dropped"] == 10
    assert cleaning["rows_out"] == cleaning["rows_in"] - 10
    report = (quirks.bundle / "report.html").read_text(encoding="utf-8")
    assert re.search(r'<section id="cleaning">.*target_missing_dropped</th><td>10<', report)
    assert "dropped 10 rows with a missing target" in report


def test_a_class_with_one_row_trains(quirks):
    assert "held-out metrics" in quirks.train.stdout
    manifest = json.loads((quirks.bundle / "manifest.json").read_text())
    assert manifest["task"] == "multiclass"


# ----------------------------------------------------------------------------- disk full
def _full_disk_after(monkeypatch, written_files: int) -> None:
    """The (n+1)-th JSON file written into a bundle half-writes, then fails with ENOSPC."""
    import forgeml.bundle

    real = forgeml.bundle._write_json
    calls = {"n": 0}

    def write_json(path, value):
        calls["n"] += 1
        if calls["n"] > written_files:
            path.write_text('{"half": ', encoding="utf-8")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, value)

    monkeypatch.setattr(forgeml.bundle, "_write_json", write_json)


def test_disk_full_while_writing_a_new_bundle_leaves_nothing(fitted_pipeline, tmp_path, monkeypatch):
    from forgeml.errors import BundleError

    _full_disk_after(monkeypatch, written_files=1)
    with pytest.raises(BundleError, match="No space left on device") as caught:
        fitted_pipeline.save(tmp_path / "bundle")
    assert "bundle" in str(caught.value) and caught.value.hint
    assert list(tmp_path.iterdir()) == []  # neither the bundle nor a temporary folder


def test_disk_full_while_replacing_a_bundle_keeps_the_old_one(fitted_pipeline, saved_bundle, tmp_path, monkeypatch):
    from forgeml import Pipeline
    from forgeml.bundle import write_bundle
    from forgeml.errors import BundleError

    target = Path(shutil.copytree(saved_bundle, tmp_path / "bundle"))
    before = snapshot(target)
    _full_disk_after(monkeypatch, written_files=2)
    with pytest.raises(BundleError, match="No space left on device"):  # the report is not needed to fail
        write_bundle(target, fitted_pipeline.predictor_, metrics={}, report_html=None, model_card="", extra={"history.json": []})
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
    assert snapshot(target) == before
    monkeypatch.undo()
    Pipeline.load(target)  # still a valid, verifiable bundle
