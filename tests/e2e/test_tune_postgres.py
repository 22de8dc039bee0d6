"""`forgeml tune --storage postgresql://…` against a real PostgreSQL server that this test starts
(Debian's binaries, a throw-away cluster in a temporary folder on a free port): two worker
processes share one study, and a server that goes away mid-study ends the command with one line
while the finished trials stay in the database.

Skipped, with the reason, where PostgreSQL's binaries or the psycopg driver are absent (.ci/run
installs Debian's postgresql package when initdb is missing)."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest

from forgeml.errors import StudyError
from tests.conftest import cli_env
from tests.e2e.test_tune_cli import FAST_GBM, _table

pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed: pip install 'forgeml[postgres]'")


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A PostgreSQL cluster in ``folder``: initdb refuses to run as root, so as root it runs as the
    postgres user (or nobody) through runuser."""

    def __init__(self, binaries: Path, folder: Path):
        self.binaries, self.folder, self.port = binaries, folder, _free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(folder, user)
            self.prefix = ["runuser", "-u", user, "--"]
        self._run("initdb", "-D", str(folder / "data"), "-U", "forgeml", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.url = f"postgresql://forgeml@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.prefix, str(self.binaries / tool), *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{tool} failed: {done.stdout}\n{done.stderr}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-l", str(self.folder / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
def server():
    binaries = _binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): apt-get install postgresql")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("running as root without runuser: initdb cannot run as root")
    folder = Path(tempfile.mkdtemp(prefix="forgeml-pg-"))  # not under pytest's 0700 root folder: the server's user must reach it
    folder.chmod(0o755)
    instance = Server(binaries, folder)
    instance.start()
    yield instance
    subprocess.run([*instance.prefix, str(binaries / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tune_pg")
    _table().to_csv(folder / "table.csv", index=False)
    return folder


def _study(url: str, name: str) -> optuna.Study:
    from forgeml.tune.storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(url.replace("postgresql://", "postgresql+psycopg://")))


def test_two_worker_processes_share_a_postgresql_study(server, workdir, cli):
    result = cli("tune", "table.csv", "--target", "label", *FAST_GBM[:-2], "--trials", "6", "--workers", "2", "--storage", server.url,
                 "--study", "shared", "--no-refit", "--runs-dir", "runs", cwd=workdir)
    assert result.returncode == 0, result
    trials = _study(server.url, "shared").trials
    assert len([t for t in trials if t.state.is_finished()]) >= 6
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    # a second "host" (here: one more process) joins the same study and refits its best trial
    joined = cli("tune", "table.csv", "--target", "label", *FAST_GBM, "--trials", "2", "--storage", server.url, "--study", "shared",
                 "--runs-dir", "runs", cwd=workdir)
    assert joined.returncode == 0, joined
    assert len(_study(server.url, "shared").trials) >= 8 and "run: " in joined.stdout


def test_a_server_that_goes_away_is_one_line_and_the_finished_trials_stay(server, workdir):
    args = ["tune", "table.csv", "--target", "label", "--model", "mlp", "--trials", "200", "--storage", server.url, "--study", "gone",
            "--set", "train.epochs=8", "--set", "train.early_stopping_patience=0", "--pruner", "none", "--no-refit", "--runs-dir", "runs"]
    tune = subprocess.Popen([sys.executable, "-m", "forgeml.cli", *args], cwd=workdir, env=cli_env(workdir), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline, complete = time.monotonic() + 120, 0
    while complete < 2 and time.monotonic() < deadline and tune.poll() is None:
        time.sleep(0.3)
        try:
            complete = sum(t.state.name == "COMPLETE" for t in _study(server.url, "gone").trials)
        except (KeyError, StudyError):  # not created yet, or its tables are being created right now
            continue
    assert complete >= 2, f"no trial finished before the server was to be stopped: {tune.stderr.read() if tune.poll() is not None else ''}"
    server.stop()
    try:
        _, stderr = tune.communicate(timeout=120)
    finally:
        server.start()
    assert tune.returncode == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --storage: lost the study storage postgresql://forgeml@127.0.0.1"), stderr
    assert sum(t.state.name == "COMPLETE" for t in _study(server.url, "gone").trials) >= complete  # nothing finished was lost
