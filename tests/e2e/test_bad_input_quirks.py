"""Bad input that trains anyway (an all-empty column, unlabelled rows, a one-row class) and a disk
that fills up while a bundle is written: the old bundle survives, no half-written one is left."""
from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.bad_input import snapshot


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
