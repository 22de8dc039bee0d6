"""Storage URLs: the schemes that work, one line for the others, the default file per study, and
trials left running by a dead worker process marked failed."""
from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from forgeml.errors import StudyError
from forgeml.tune import storage


@pytest.mark.parametrize("given, expected", [
    ("study.db", "sqlite:///"), ("study.journal", "journal:///"), ("sqlite:///x.db", "sqlite:///x.db"),
    ("postgresql://u:p@h/db", "postgresql://u:p@h/db"), ("postgres://u:p@h/db", "postgresql://u:p@h/db"),
    ("postgresql+psycopg://h/db", "postgresql+psycopg://h/db"),
])
def test_storage_specs_become_urls(given, expected):
    assert storage.normalise(given).startswith(expected)


@pytest.mark.parametrize("given", ["http://host/study", "mysql://u@h/db", "study.txt", "redis://h"])
def test_a_wrong_scheme_is_one_line_naming_the_ones_that_work(given):
    with pytest.raises(StudyError) as caught:
        storage.normalise(given)
    assert str(caught.value).startswith("--storage: ") and "postgresql://" in str(caught.value)


def test_passwords_are_hidden_in_messages():
    assert storage.shown("postgresql://ana:s3cret@db:5432/x") == "postgresql://ana:***@db:5432/x"


def test_default_storage_is_a_journal_file_unless_the_study_already_lives_in_sqlite(tmp_path):
    assert storage.default_storage(tmp_path, "s", 1).startswith("journal:///")
    assert storage.default_storage(tmp_path, "s", 2) == f"journal:///{tmp_path.resolve() / 's.journal'}"
    (tmp_path / "s.db").touch()
    assert storage.default_storage(tmp_path, "s", 2).startswith("sqlite:///")  # the study stays where it is


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask/tell by hand, not optimize: heartbeats are not the point here
@pytest.mark.parametrize("suffix", ["db", "journal"])
def test_a_trial_left_running_by_a_dead_process_is_marked_failed(tmp_path, suffix):
    study = optuna.create_study(storage=storage.open_storage(storage.normalise(str(tmp_path / f"s.{suffix}"))), study_name="s")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    orphan = study.ask()
    orphan.set_user_attr("worker", storage.worker_id().rpartition(":")[0] + ":" + dead)
    mine = study.ask()
    mine.set_user_attr("worker", storage.worker_id())  # this process: alive, left alone
    assert storage.fail_dead_workers(study) == [orphan.number]
    states = {t.number: t.state.name for t in study.get_trials()}
    assert states == {orphan.number: "FAIL", mine.number: "RUNNING"}


def test_an_unreachable_postgresql_server_is_one_line(tmp_path):
    pytest.importorskip("psycopg")
    with pytest.raises(StudyError) as caught:
        storage.open_storage("postgresql://forgeml:pw@127.0.0.1:9/none")  # port 9: nothing listens
    message = str(caught.value)
    assert message.startswith("--storage: cannot use the study storage postgresql://forgeml:***@127.0.0.1:9/none")
    assert "pw@" not in message and "\n" not in message
