"""``forgeml train --resume`` as a user meets it: no checkpoint, SIGTERM, SIGKILL, then resume.

Every command runs the real CLI in a subprocess with ``--runs-dir`` inside ``tmp_path``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

EPOCHS = 20
ROWS, BATCH = 600, 32  # 420 train rows: 14 steps per epoch (13 full, one of 4), 280 in all
STEPS_PER_EPOCH = 14
TRAIN = [
    "train", "data.csv", "--target", "y", "--threads", "1", "--model", "mlp",
    "--set", f"train.epochs={EPOCHS}", "--set", f"train.batch_size={BATCH}", "--set", "train.progress=false",
    "--set", "train.checkpoint_every_steps=5", "--set", "train.early_stopping_patience=0",
    "--set", "train.bagging_folds=1",  # one model: bagged resume is tested in tests/models/test_bagging.py
    "--runs-dir", "runs",
]
TIMEOUT_S = 240


def _env(cwd: Path) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1", "FORGEML_RUNS_DIR": str(cwd / "runs")}


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forgeml.cli", *args], cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=TIMEOUT_S)


def _start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "forgeml.cli", *args], cwd=cwd, env=_env(cwd),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"training ended (exit {process.returncode}) before {what}\n{out}\n{err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {what} after {TIMEOUT_S} s")
        time.sleep(0.02)


def _checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint" / "last.pt", weights_only=True)


def _epochs(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if (run_dir / "metrics.jsonl").exists() else []
    return [json.loads(line)["epoch"] for line in lines]


def _status(cwd: Path, run_id: str) -> str:
    listing = _run(cwd, "runs", "list", "--runs-dir", "runs")
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if run_id[:15] in line)
    return next(status for status in ("running", "interrupted", "completed", "failed") if status in row)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 4)).round(5)
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    frame["y"] = (x @ [1.0, -2.0, 0.5, 3.0] + rng.normal(0, 0.1, ROWS)).round(5)
    frame.to_csv(tmp_path / "data.csv", index=False)
    return tmp_path


def test_resume_without_any_checkpoint_is_one_clear_line(workdir: Path) -> None:
    done = _run(workdir, *TRAIN, "--resume")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "no interrupted run named 'data' with a checkpoint" in lines[0] and "without --resume" in lines[0]
    assert not list((workdir / "runs").glob("*/"))  # no run was created


def test_resume_never_continues_another_data_sets_run(tmp_path: Path) -> None:
    from forgeml.config import Config
    from forgeml.errors import CheckpointError
    from forgeml.runs.registry import RunRegistry
    from forgeml.train_run import run_training

    registry = RunRegistry(tmp_path / "runs")
    other = registry.create("other", "target: [z]\n", "other.csv")
    other.checkpoint_path.parent.mkdir()
    other.checkpoint_path.write_bytes(b"a checkpoint")
    registry.finish(other.id, "interrupted")
    with pytest.raises(CheckpointError, match="no interrupted run named 'data'"):
        run_training(Config(target="y"), tmp_path / "data.csv", registry=registry, name="data", resume=True)
    assert registry.get(other.id).status == "interrupted"


def test_killed_then_interrupted_run_resumes_to_the_same_end(workdir: Path) -> None:
    # 1. SIGKILL (no chance to clean up) once the first periodic checkpoint exists
    process = _start(workdir, *TRAIN)
    _wait_for(lambda: list((workdir / "runs").glob("*/checkpoint/last.pt")), process, "a checkpoint")
    process.kill()
    process.communicate(timeout=TIMEOUT_S)
    (run_dir,) = [p for p in (workdir / "runs").iterdir() if p.is_dir()]
    # nobody was left to say so, but its lock is free: `runs list` marks it, resumable with its checkpoint
    assert _status(workdir, run_dir.name) == "interrupted"
    killed = _checkpoint(run_dir)
    assert 0 < killed["global_step"] < EPOCHS * STEPS_PER_EPOCH
    assert _epochs(run_dir) == list(range(1, killed["epoch"] + 1))  # rows only for checkpointed epochs

    # 2. resume it, then SIGTERM once it has written a newer checkpoint: exit 2 with a --resume hint
    process = _start(workdir, *TRAIN, "--resume")
    _wait_for(lambda: _checkpoint(run_dir)["global_step"] > killed["global_step"], process, "a newer checkpoint")
    from forgeml.runs.registry import RunRegistry

    assert RunRegistry(workdir / "runs").get(run_dir.name).status == "running"  # resumed: running again (a quick look, not the CLI)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 2, f"{out}\n{err}"
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0 and "interrupted" in err and "--resume" in err
    assert _status(workdir, run_dir.name) == "interrupted"
    stopped = _checkpoint(run_dir)
    assert killed["global_step"] < stopped["global_step"] < EPOCHS * STEPS_PER_EPOCH
    assert _epochs(run_dir) == list(range(1, stopped["epoch"] + 1))

    # 3. resume again: it continues from the last checkpoint and completes the same run
    done = _run(workdir, *TRAIN, "--resume")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert f"run: {run_dir.name}" in done.stdout
    assert [p for p in (workdir / "runs").iterdir() if p.is_dir()] == [run_dir]  # no new run
    assert (run_dir / "bundle" / "manifest.json").is_file()
    assert _epochs(run_dir) == list(range(1, EPOCHS + 1))  # each epoch once, none lost
    final = _checkpoint(run_dir)
    assert (final["epoch"], final["global_step"]) == (EPOCHS, EPOCHS * STEPS_PER_EPOCH)
    history = json.loads((run_dir / "bundle" / "history.json").read_text(encoding="utf-8"))
    assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))
    assert _status(workdir, run_dir.name) == "completed"
    log = (run_dir / "train.log").read_text(encoding="utf-8")
    assert log.count("resuming run") == 2 and "interrupted; checkpoint" in log
