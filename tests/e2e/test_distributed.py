"""``forgeml train`` under ``torchrun --nproc-per-node 2`` (gloo on CPU): one run, written by rank 0,
trained on two shards with a global batch shared between the ranks."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

EPOCHS = 3
# An explicit split column fixes the train rows: 240 train, 40 validation, 40 test.
TRAIN_ROWS, VAL_ROWS, TEST_ROWS = 240, 40, 40
GLOBAL_BATCH = 64
TIMEOUT_S = 300


def _steps(rows: int, batch: int) -> int:
    """The Trainer's rule: whole batches, plus the remainder if it has at least 2 rows."""
    full, rest = divmod(rows, batch)
    return full + (1 if rest >= 2 else 0)


@pytest.fixture(scope="module")
def torchrun(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    workdir = tmp_path_factory.mktemp("torchrun")
    rows = TRAIN_ROWS + VAL_ROWS + TEST_ROWS
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3)).round(5)
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["y"] = (x @ [1.0, -2.0, 3.0] + rng.normal(0, 0.1, rows)).round(5)
    frame["part"] = ["train"] * TRAIN_ROWS + ["validation"] * VAL_ROWS + ["test"] * TEST_ROWS
    frame.to_csv(workdir / "data.csv", index=False)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "forgeml.cli", "train", "data.csv", "--target", "y", "--runs-dir", "runs",
        "--set", f"train.epochs={EPOCHS}", "--set", f"train.batch_size={GLOBAL_BATCH}", "--set", "train.progress=false",
        "--set", "data.split.column=part",
        "--set", "train.bagging_folds=1",  # one model: these tests check the trainer's own checkpoint and steps
    ]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1", "FORGEML_RUNS_DIR": str(workdir / "runs")}
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # torchrun and both ranks
        out, err = process.communicate()
        pytest.fail(f"torchrun did not finish in {TIMEOUT_S} s\n{out}\n{err}")
    return workdir, subprocess.CompletedProcess(command, process.returncode, out, err)


def test_two_ranks_finish_and_rank_zero_alone_reports(torchrun) -> None:
    workdir, done = torchrun
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    assert done.stdout.count("run: ") == 1 and done.stdout.count("held-out metrics") == 1


def test_one_run_folder_written_by_rank_zero(torchrun) -> None:
    workdir, done = torchrun
    runs = [p for p in (workdir / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1 and f"run: {runs[0].name}" in done.stdout
    run_dir = runs[0]
    assert (run_dir / "bundle" / "manifest.json").is_file()
    assert sorted(p.name for p in (run_dir / "checkpoint").iterdir()) == ["last.pt"]
    assert "(world size 2)" in (run_dir / "train.log").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["epoch"] for row in rows] == list(range(1, EPOCHS + 1))  # one writer: no row twice
    assert json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["status"] == "completed"


def test_each_rank_trained_on_half_the_rows(torchrun) -> None:
    workdir, _ = torchrun
    (checkpoint_path,) = (workdir / "runs").glob("*/checkpoint/last.pt")
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    assert checkpoint["world_size"] == 2
    # each rank walks its 120-row shard in batches of 32 (half the global 64): 4 steps per epoch,
    # as many as one process over 240 rows in batches of 64 ...
    sharded = _steps(TRAIN_ROWS // 2, GLOBAL_BATCH // 2)
    assert sharded == _steps(TRAIN_ROWS, GLOBAL_BATCH) == 4
    assert checkpoint["global_step"] == EPOCHS * sharded
    # ... and half as many as a rank walking all 240 rows in its batches of 32 would take
    assert checkpoint["global_step"] * 2 == EPOCHS * _steps(TRAIN_ROWS, GLOBAL_BATCH // 2)
