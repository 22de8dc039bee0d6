"""A run that fails says so where it is looked up later: its train.log holds the error (one line,
then the traceback) and the registry marks it failed — also when the failure comes after training."""
from __future__ import annotations

import warnings

import pandas as pd
import pytest

from forgeml.config import Config
from forgeml.errors import DataNote
from forgeml.runs.registry import RunRegistry
from forgeml.train_run import run_training


@pytest.fixture
def data(tmp_path, make_mixed):
    path = tmp_path / "mixed.csv"
    make_mixed(rows=80).drop(columns=["review", "signup"]).to_csv(path, index=False)
    return path


def _config() -> Config:
    return Config(target="label", model={"type": "gbm", "num_boost_round": 5}, train={"progress": False, "threads": 1})


def _only_run(registry: RunRegistry):
    (record,) = registry.list()
    return record


def test_an_error_mid_training_lands_in_train_log_and_the_run_is_failed(tmp_path, data, monkeypatch):
    from forgeml.models import gbm

    def broken_fit(self, *args, **kwargs):
        raise RuntimeError("LightGBM ran out of memory\nsecond line")

    monkeypatch.setattr(gbm.GBMEstimator, "fit", broken_fit)
    registry = RunRegistry(tmp_path / "runs")
    with pytest.raises(RuntimeError):
        run_training(_config(), data, registry=registry, name="mixed", resume=False)
    record = _only_run(registry)
    assert record.status == "failed"
    log = record.log_path.read_text(encoding="utf-8")
    assert "ERROR failed: RuntimeError: LightGBM ran out of memory\n" in log
    assert "Traceback (most recent call last)" in log and "broken_fit" in log


def test_a_bundle_that_cannot_be_written_fails_the_run_instead_of_leaving_it_running(tmp_path, data, monkeypatch):
    from forgeml.api import Pipeline
    from forgeml.errors import BundleError

    def full_disk(self, path):
        raise BundleError("could not write the bundle (No space left on device)", where=str(path))

    monkeypatch.setattr(Pipeline, "save", full_disk)
    registry = RunRegistry(tmp_path / "runs")
    with pytest.raises(BundleError):
        run_training(_config(), data, registry=registry, name="mixed", resume=False)
    record = _only_run(registry)
    assert record.status == "failed"
    assert "No space left on device" in record.log_path.read_text(encoding="utf-8")


def test_what_cleaning_did_is_in_train_log_and_on_stderr_before_training(tmp_path, make_mixed, capsys):
    frame = make_mixed(rows=80).drop(columns=["review", "signup"])
    path = tmp_path / "dupes.csv"
    pd.concat([frame, frame.head(7)]).to_csv(path, index=False)
    registry = RunRegistry(tmp_path / "runs")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_training(_config(), path, registry=registry, name="dupes", resume=False)
    assert not [w for w in caught if issubclass(w.category, DataNote)]  # printed as data: lines, not also warned
    log = _only_run(registry).log_path.read_text(encoding="utf-8").splitlines()
    data_lines = [i for i, line in enumerate(log) if "INFO data: dropped 7 exact duplicate rows" in line]
    assert data_lines and data_lines[0] < next(i for i, line in enumerate(log) if "completed in" in line)
    assert "data: dropped 7 exact duplicate rows" in capsys.readouterr().err


def test_long_data_lines_are_not_wrapped_off_a_terminal(tmp_path, make_mixed, capsys):
    """Written to a file (or a pipe), a data: note stays on one line, whatever its length."""
    long_name = "average_monthly_household_income_before_taxes_in_euros"
    frame = make_mixed(rows=80).drop(columns=["review", "signup"]).rename(columns={"age": long_name})
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    run_training(_config(), path, registry=RunRegistry(tmp_path / "runs"), name="long", resume=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if long_name in line]
    assert lines and all(line.startswith("data: ") and len(line) > 100 for line in lines), lines


def test_a_wrong_target_fails_before_a_run_folder_exists(tmp_path, data):
    from forgeml.errors import DataError

    with pytest.raises(DataError, match="target column not found"):
        run_training(Config(target="lable", train={"progress": False}), data, registry=RunRegistry(tmp_path / "runs"), name="typo", resume=False)
    assert not (tmp_path / "runs").exists()
