"""Bad-input table: options, configs and file formats. A mistyped option, an option of another
task, a format forgeml does not read, a path that is not a file, a command pointed at something
missing: one ``error:`` line naming it and what to do (``data:`` notes may come first when the
mistake is only visible once the data is read); a file that is merely unusual trains or predicts.
Harness: tests/e2e/bad_input.py.
"""
from __future__ import annotations

import gzip
import os

import pytest

from tests.e2e.bad_input import assert_one_line_or_result, cases_of, init_args, start_cases, train_args


def _mixed(folder, frame) -> list:
    frame.to_csv(folder / "mixed.csv", index=False)
    return train_args("mixed.csv", "label")


def _new(folder, frame) -> None:
    frame.drop(columns=["label"]).to_csv(folder / "new.csv", index=False)


# ----------------------------------------------------------------------------- train options
def case_unknown_preset(folder, bundle, frame):
    return [*_mixed(folder, frame), "--preset", "turbo"]


def case_time_budget_zero(folder, bundle, frame):
    return [*_mixed(folder, frame), "--time-budget", "0"]


def case_time_budget_in_words(folder, bundle, frame):
    return [*_mixed(folder, frame), "--time-budget", "soon"]


def case_misspelt_set_key(folder, bundle, frame):
    return [*_mixed(folder, frame), "--set", "train.epochz=3"]


def case_set_value_out_of_range(folder, bundle, frame):
    return [*_mixed(folder, frame), "--set", "train.epochs=-1"]


def case_set_without_a_value(folder, bundle, frame):
    return [*_mixed(folder, frame), "--set", "train.epochs"]


def case_unknown_model_family(folder, bundle, frame):
    return [*_mixed(folder, frame), "--model", "xgboost"]


def case_early_stopping_metric_of_another_task(folder, bundle, frame):
    return [*_mixed(folder, frame), "--set", "train.early_stopping_metric=r2"]


def case_gbm_on_a_text_column(folder, bundle, frame):
    return [*_mixed(folder, frame), "--model", "gbm", "--set", "model.text_columns=refuse"]  # reading it (features) is the default


def case_ensemble_under_torchrun(folder, bundle, frame):
    return [*_mixed(folder, frame), "--model", "ensemble", "--nproc-per-node", "2"]


def case_preset_over_two_hosts(folder, bundle, frame):
    return [*_mixed(folder, frame), "--preset", "fast", "--nnodes", "2"]


def case_resume_with_nothing_to_resume(folder, bundle, frame):
    return [*_mixed(folder, frame), "--resume"]


def case_regression_asked_of_yes_no_labels(folder, bundle, frame):
    return [*_mixed(folder, frame), "--set", "task=regression"]


def case_test_file_missing(folder, bundle, frame):
    return [*_mixed(folder, frame), "--set", "data.split.test_path=tset.csv"]


def case_zero_bagging_folds(folder, bundle, frame):
    return [*_mixed(folder, frame), "--set", "train.bagging_folds=0"]


def case_zero_threads(folder, bundle, frame):
    return [*_mixed(folder, frame), "--threads", "0"]


def case_broken_yaml_config(folder, bundle, frame):
    (folder / "config.yaml").write_text("target: [label\nmodel: {type: mlp\n", encoding="utf-8")
    return ["train", "config.yaml", "--runs-dir", "runs"]


# ----------------------------------------------------------------------------- files
def case_a_fifo_as_the_data_file(folder, bundle, frame):
    os.mkfifo(folder / "data.csv")  # reading it would wait for a writer forever
    return init_args("data.csv", "label")


def case_a_spreadsheet(folder, bundle, frame):
    (folder / "data.xlsx").write_bytes(b"PK\x03\x04 a spreadsheet")
    return init_args("data.xlsx", "label")


def case_not_really_parquet(folder, bundle, frame):
    (folder / "data.parquet").write_bytes(b"PAR1" + bytes(range(256)) * 2)
    return init_args("data.parquet", "label")


def case_a_cut_gzip(folder, bundle, frame):
    packed = gzip.compress(frame.to_csv(index=False).encode())
    (folder / "data.csv.gz").write_bytes(packed[: len(packed) // 2])
    return init_args("data.csv.gz", "label")


def case_a_folder_without_images(folder, bundle, frame):
    (folder / "pictures" / "cats").mkdir(parents=True)
    (folder / "pictures" / "cats" / "notes.txt").write_text("no images here", encoding="utf-8")
    return init_args("pictures", "label")


def case_latin1_semicolons_and_crlf(folder, bundle, frame):
    # an old Excel export: cp1252, semicolons, CRLF, accents in a category: reads as the same table
    text = frame.assign(city=frame["city"].replace({"nice": "nîmes", "lille": "besançon"})).to_csv(index=False, sep=";", lineterminator="\r\n")
    (folder / "data.csv").write_bytes(text.encode("cp1252"))
    return init_args("data.csv", "label")


# ----------------------------------------------------------------------------- other commands
def case_predict_with_a_missing_bundle(folder, bundle, frame):
    _new(folder, frame)
    return ["predict", "bundel", "new.csv", "--runs-dir", "runs"]


def case_keep_a_column_not_in_the_file(folder, bundle, frame):
    _new(folder, frame)
    return ["predict", bundle, "new.csv", "--keep", "order_id", "-o", "predictions.csv"]


def case_predict_dates_that_are_not_dates(folder, bundle, frame):
    new = frame.drop(columns=["label"]).astype({"signup": object})
    new.loc[:4, "signup"] = ["yesterday", "2020-13-45", "", "0000-00-00", "31/02/2021"]
    new.to_csv(folder / "new.csv", index=False)
    return ["predict", bundle, "new.csv", "-o", "predictions.csv"]


def case_evaluate_without_the_target(folder, bundle, frame):
    _new(folder, frame)
    return ["evaluate", bundle, "new.csv"]


def case_export_to_an_unknown_format(folder, bundle, frame):
    return ["export", bundle, "--format", "tflite"]


def case_serve_a_missing_bundle(folder, bundle, frame):
    return ["serve", "bundel", "--runs-dir", "runs"]


def case_serve_with_an_image_root_that_is_a_file(folder, bundle, frame):
    (folder / "images.txt").write_text("not a folder", encoding="utf-8")
    return ["serve", bundle, "--image-root", "images.txt"]


def case_serve_with_a_missing_key_file(folder, bundle, frame):
    return ["serve", bundle, "--api-key-file", "keys.txt"]


def case_report_of_an_unknown_run(folder, bundle, frame):
    return ["report", "20990101-nope", "--runs-dir", "runs"]


def case_leaderboard_of_an_unknown_run(folder, bundle, frame):
    return ["leaderboard", "20990101-nope", "--runs-dir", "runs"]


CASES = cases_of(globals())

# what the error line must name (the option, file or value, and the way out); a result has none
NEEDLES: dict[str, tuple[str, ...]] = {
    "unknown_preset": ("model.preset", "'fast', 'medium' or 'best'"),
    "time_budget_zero": ("--time-budget", "'0'", "90s"),
    "time_budget_in_words": ("--time-budget", "'soon'"),
    "misspelt_set_key": ("train.epochz", "did you mean train.epochs"),
    "set_value_out_of_range": ("train.epochs", "greater than or equal to 1"),
    "set_without_a_value": ("--set 'train.epochs'", "key=value"),
    "unknown_model_family": ("'xgboost'", "'gbm'"),
    "early_stopping_metric_of_another_task": ("train.early_stopping_metric", "'r2'", "roc_auc"),
    "gbm_on_a_text_column": ("'review'", "model.text_columns=features", "ignore to leave it out"),
    "ensemble_under_torchrun": ("ensemble", "one process", "--nproc-per-node"),
    "preset_over_two_hosts": ("ensemble", "one process"),
    "resume_with_nothing_to_resume": ("no interrupted run named 'mixed'", "without --resume"),
    "regression_asked_of_yes_no_labels": ("'label'", "not a number"),
    "test_file_missing": ("tset.csv", "file not found"),
    "zero_bagging_folds": ("train.bagging_folds",),
    "zero_threads": ("train.threads", "greater than or equal to 1"),
    "broken_yaml_config": ("config.yaml", "not valid YAML"),
    "a_fifo_as_the_data_file": ("data.csv", "not a regular file"),
    "a_spreadsheet": ("data.xlsx", "save the sheet as CSV"),
    "not_really_parquet": ("data.parquet", "Parquet"),
    "a_cut_gzip": ("data.csv.gz", "damaged gzip"),
    "a_folder_without_images": ("pictures", "no image files"),
    "predict_with_a_missing_bundle": ("bundel", "bundle not found"),
    "keep_a_column_not_in_the_file": ("'order_id'", "--keep"),
    "evaluate_without_the_target": ("new.csv", "['label']", "use `predict`"),
    "export_to_an_unknown_format": ("'tflite'", "onnx"),
    "serve_a_missing_bundle": ("bundel", "bundle not found"),
    "serve_with_an_image_root_that_is_a_file": ("--image-root", "not a folder"),
    "serve_with_a_missing_key_file": ("keys.txt", "API key file"),
    "report_of_an_unknown_run": ("20990101-nope", "run id"),
    "leaderboard_of_an_unknown_run": ("20990101-nope", "run id"),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, trained, cli, cli_pool, make_mixed) -> dict:
    return start_cases(CASES, tmp_path_factory, trained.bundle, cli, cli_pool, make_mixed(rows=60, seed=5))


@pytest.mark.parametrize("name", list(CASES))
def test_every_case_is_one_error_line_or_a_result(outcomes, name):
    assert_one_line_or_result(outcomes[name].result())


@pytest.mark.parametrize("name", list(NEEDLES))
def test_the_error_line_names_the_mistake_and_the_way_out(outcomes, name):
    outcome = outcomes[name].result()
    assert outcome.result.returncode == 2, outcome.result
    line = outcome.result.stderr.strip().splitlines()[-1]
    for needle in NEEDLES[name]:
        assert needle in line, f"{needle!r} not in: {line}"
    assert not (outcome.folder / "runs").exists() or not list(outcome.folder.glob("runs/*/bundle"))


def test_unusual_files_are_read_as_tables(outcomes):
    latin = outcomes["latin1_semicolons_and_crlf"].result()
    assert latin.result.returncode == 0, latin.result
    config = (latin.folder / "config.yaml").read_text(encoding="utf-8")
    assert "- label" in config and "name: city" in config and "name: price" in config
    dates = outcomes["predict_dates_that_are_not_dates"].result()
    assert dates.result.returncode == 0, dates.result
    import pandas as pd

    predictions = pd.read_csv(dates.folder / "predictions.csv")
    assert len(predictions) == 60 and predictions.notna().all().all()
    assert set(CASES) - set(NEEDLES) == {"latin1_semicolons_and_crlf", "predict_dates_that_are_not_dates"}
