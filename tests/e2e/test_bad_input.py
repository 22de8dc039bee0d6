"""Bad input at every door: each mistake is one clear line (what, where, what to do), exit code 2,
no traceback, and nothing the user had is changed or lost.

This is the first of the bad-input tables (the harness: tests/e2e/bad_input.py): unreadable
data, predict time, damaged bundles and the runs commands. The others: test_bad_input_options.py
(options, configs, file formats), test_bad_input_silent.py (answers that were silently wrong),
test_bad_input_server.py (hostile HTTP requests); test_bad_input_quirks.py holds what trains anyway.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tests.e2e.bad_input import (
    SENTINEL, Outcome, assert_one_clear_line, assert_one_line_or_result, cases_of, copy_bundle, init_args, predict_args,
    start_cases, train_args,
)


# ----------------------------------------------------------------------------- cases
def case_missing_file(folder, bundle, frame):
    frame.to_csv(folder / "prices.csv", index=False)
    return train_args("price.csv")


def case_directory(folder, bundle, frame):
    (folder / "tables").mkdir()
    frame.to_csv(folder / "tables" / "prices.csv", index=False)
    return init_args("tables")


def case_empty_csv(folder, bundle, frame):
    (folder / "empty.csv").write_bytes(b"")
    return init_args("empty.csv")


def case_header_only(folder, bundle, frame):
    (folder / "header.csv").write_text(",".join(frame.columns) + "\n", encoding="utf-8")
    return init_args("header.csv")


def case_target_absent(folder, bundle, frame):
    frame.to_csv(folder / "data.csv", index=False)
    return train_args("data.csv", target="prise")


def case_single_class(folder, bundle, frame):
    frame.assign(label="yes").to_csv(folder / "data.csv", index=False)
    return init_args("data.csv", target="label")


def case_random_bytes(folder, bundle, frame):
    (folder / "data.csv").write_bytes(np.random.default_rng(0).bytes(4096))
    return init_args("data.csv")


def case_text_in_number(folder, bundle, frame):
    new = frame.drop(columns=["label"]).astype({"income": object})
    new.loc[5, "income"] = "lots"
    new.to_csv(folder / "new.csv", index=False)
    return predict_args(bundle, folder)


def case_missing_columns(folder, bundle, frame):
    frame.drop(columns=["label", "age", "city"]).to_csv(folder / "new.csv", index=False)
    return predict_args(bundle, folder)


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
    copy = copy_bundle(bundle, folder)
    weights = next(copy.rglob("weights.safetensors"))  # fold0/ when bagged
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    frame.to_csv(folder / "new.csv", index=False)
    return predict_args("bundle", folder)


def case_tampered_config(folder, bundle, frame):
    copy = copy_bundle(bundle, folder)
    config = copy / "config.yaml"
    config.write_text(re.sub(r"epochs: \d+", "epochs: 999", config.read_text(encoding="utf-8")), encoding="utf-8")
    frame.to_csv(folder / "new.csv", index=False)
    return predict_args("bundle", folder)


def case_foreign_folder(folder, bundle, frame):
    (folder / "model").mkdir()
    (folder / "model" / "weights.bin").write_bytes(b"\x00" * 64)
    frame.to_csv(folder / "new.csv", index=False)
    return predict_args("model", folder)


def case_file_not_folder(folder, bundle, frame):
    frame.to_csv(folder / "new.csv", index=False)
    (folder / "model.zip").write_bytes(b"PK\x03\x04 not really")
    return predict_args("model.zip", folder)


def case_prune_without_a_status(folder, bundle, frame):
    return ["runs", "prune", "--runs-dir", "runs"]


def case_show_an_unknown_run(folder, bundle, frame):
    return ["runs", "show", "20990101-nope", "--runs-dir", "runs"]


CASES = cases_of(globals())


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, trained, cli, cli_pool, make_mixed) -> dict:
    return start_cases(CASES, tmp_path_factory, trained.bundle, cli, cli_pool, make_mixed(rows=60, seed=5))


@pytest.mark.parametrize("name", list(CASES))
def test_every_case_is_one_error_line_or_a_result(outcomes, name):
    assert_one_line_or_result(outcomes[name].result())


def test_the_bad_input_tables_hold_at_least_60_cases():
    """Issue 18's figure: at least 60 bad inputs, each one error line or a correct result."""
    from tests.e2e import test_bad_input_options, test_bad_input_server, test_bad_input_silent

    tables = [CASES, test_bad_input_options.CASES, test_bad_input_silent.CASES, test_bad_input_server.CASES]
    assert sum(len(table) for table in tables) >= 60, [len(table) for table in tables]


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


# ----------------------------------------------------------------------------- runs
def test_prune_asks_which_runs(outcomes):
    assert_one_clear_line(outcomes["prune_without_a_status"].result(), "forgeml runs prune", "--failed")


def test_an_unknown_run_id(outcomes):
    assert_one_clear_line(outcomes["show_an_unknown_run"].result(), "no run matches '20990101-nope'")
