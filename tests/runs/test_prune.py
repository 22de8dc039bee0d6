"""``forgeml runs prune --failed``: lists, asks (or needs --yes off a terminal), then deletes the
failed runs' folders and index rows; --dry-run deletes nothing; running and completed runs stay."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from forgeml.errors import ConfigError, RunError
from forgeml.runs.cli import prune
from forgeml.runs.registry import RunRegistry


@pytest.fixture
def runs(tmp_path) -> tuple[RunRegistry, dict[str, str]]:
    registry = RunRegistry(tmp_path / "runs")
    ids = {}
    for status in ("completed", "failed", "interrupted", "running"):
        record = registry.create(status, "target: y\n", "d.csv")
        (record.dir / "train.log").write_text("x" * 1000, encoding="utf-8")
        if status != "running":
            registry.finish(record.id, status)
        ids[status] = record.id
    return registry, ids


def statuses(registry: RunRegistry) -> set[str]:
    return {record.status for record in registry.list()}


def test_dry_run_deletes_nothing_and_yes_deletes_the_failed(runs, capsys):
    registry, ids = runs
    assert prune(registry, ["failed"], dry_run=True, yes=False) == 0
    assert "would delete 1 failed run" in capsys.readouterr().out
    assert statuses(registry) == {"completed", "failed", "interrupted", "running"}
    assert prune(registry, ["failed"], dry_run=False, yes=True) == 1
    assert statuses(registry) == {"completed", "interrupted", "running"}
    assert not (registry.root / ids["failed"]).exists() and not (registry.root / ".trash" / ids["failed"]).exists()
    with pytest.raises(RunError, match="no run matches"):
        registry.get(ids["failed"])
    (registry.root / "index.sqlite").unlink()  # a rebuilt index does not bring the deleted run back
    assert {record.id for record in RunRegistry(registry.root).list()} == {ids["completed"], ids["interrupted"], ids["running"]}


def test_nothing_to_prune_and_no_status_asked(runs, capsys):
    registry, _ = runs
    prune(registry, ["failed"], dry_run=False, yes=True)
    assert prune(registry, ["failed"], dry_run=False, yes=True) == 0
    assert "nothing to prune: no failed runs" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--failed"):
        prune(registry, [], dry_run=False, yes=True)


def test_a_running_run_is_never_deleted(runs):
    registry, ids = runs
    with pytest.raises(RunError, match="still running"):
        registry.delete(ids["running"])


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "FORGEML_RUNS_DIR": str(cwd / "runs")}
    return subprocess.run([sys.executable, "-m", "forgeml.cli", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_command_refuses_without_a_terminal_or_yes(runs, tmp_path):
    registry, ids = runs
    refused = cli("runs", "prune", "--failed", "--interrupted", cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert re.fullmatch(r"error: forgeml runs prune: not deleting 2 failed or interrupted runs \(\d kB\) without a "
                        r"confirmation — add --yes to delete them, or --dry-run to only list them", refused.stderr.strip()), refused.stderr
    assert ids["failed"] in refused.stdout  # listed first, with full ids
    done = cli("runs", "prune", "--failed", "--interrupted", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "deleted 2 failed or interrupted runs" in done.stdout
    assert statuses(registry) == {"completed", "running"}
