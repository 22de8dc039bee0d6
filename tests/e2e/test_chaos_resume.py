"""Chaos: ``kill -9`` at 10 random training steps, ``forgeml train --resume`` after each, and the
bundle ends with exactly the weights of a run that was never interrupted.

The run is the MLP family on a small table, so a bag of 5 MLPs (dropout on), and the kills land in
every member: mid-epoch, at an epoch's end, between members, maybe mid-checkpoint-write. Each
resume must restore the weights, the optimizer and scheduler, the random state (dropout), the
batch order and the best epoch's weights, or the tensors differ. The kill steps come from a
seeded generator; a kill lands where the process is when the checkpoint at or after its step
is seen (polled every few ms), so the work since the last checkpoint is lost and redone.

About 50 s on a quiet 2-core machine (12 CLI starts, most of it importing torch): one bounded
test, marked slow.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.slow

KILLS, SEED = 10, 18
ROWS, BATCH, EPOCHS, EVERY = 400, 32, 8, 7  # 280 train rows, 5 members of 224 rows: 7 steps per epoch
FOLDS, STEPS_PER_EPOCH = 5, 7
TOTAL_STEPS = FOLDS * EPOCHS * STEPS_PER_EPOCH  # 280
TRAIN = [
    "train", "data.csv", "--target", "y", "--model", "mlp", "--threads", "1", "--runs-dir", "runs",
    "--set", f"train.epochs={EPOCHS}", "--set", f"train.batch_size={BATCH}", "--set", "train.progress=false",
    "--set", f"train.checkpoint_every_steps={EVERY}",
    "--set", "train.early_stopping_patience=0",  # a fixed number of steps to aim at; the best epoch is still kept
]
DEADLINE_S = 300


def _env(cwd: Path) -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "OMP_NUM_THREADS": "1", "FORGEML_RUNS_DIR": str(cwd / "runs")}


def _start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "forgeml.cli", *TRAIN, *args], cwd=cwd, env=_env(cwd),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _folder(path: Path) -> Path:
    path.mkdir()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 4)).round(5)
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    frame["y"] = (x @ [1.0, -2.0, 0.5, 3.0] + np.sin(3 * x[:, 0]) + rng.normal(0, 0.1, ROWS)).round(5)
    frame.to_csv(path / "data.csv", index=False)
    return path


class _Steps:
    """Training steps done as the checkpoints on disk say (the sum over the members' last.pt);
    a checkpoint is read again only when its file changed."""

    def __init__(self, runs: Path):
        self.runs, self.seen = runs, {}

    def __call__(self) -> int:
        total = 0
        for path in self.runs.glob("*/checkpoint/fold*/last.pt"):
            try:
                stamp = path.stat().st_mtime_ns
                if self.seen.get(path, (None,))[0] != stamp:
                    self.seen[path] = (stamp, int(torch.load(path, weights_only=True)["global_step"]))
            except (OSError, RuntimeError, EOFError):
                pass  # replaced while being read: the next look sees the new one
            total += self.seen.get(path, (0, 0))[1]
        return total


def _weights(cwd: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The bundle's tensors (each member at its best epoch) and each member's last weights and
    optimizer moments from its final checkpoint (the best epoch may come before a kill; the last
    step never does)."""
    from safetensors.torch import load_file

    (bundle,) = (cwd / "runs").glob("*/bundle")
    run = bundle.parent
    found = {str(p.relative_to(run)): load_file(p) for p in sorted((run / "bundle").rglob("*.safetensors"))}
    for path in sorted((run / "checkpoint").glob("fold*/last.pt")):
        checkpoint = torch.load(path, weights_only=True)
        moments = {f"{n}.{k}": v for n, state in checkpoint["optimizer"]["state"].items() for k, v in state.items()}
        found[str(path.relative_to(run))] = {**checkpoint["model"], **moments}
    return found


def test_ten_kill_9s_at_random_steps_resume_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    clean = _start(_folder(tmp_path / "clean"))  # the uninterrupted run, alongside
    chaos = _folder(tmp_path / "chaos")
    targets = sorted(random.Random(SEED).sample(range(EVERY, TOTAL_STEPS - 2 * STEPS_PER_EPOCH), KILLS))
    steps, deadline, killed_at = _Steps(chaos / "runs"), time.monotonic() + DEADLINE_S, []
    for number, target in enumerate(targets):
        resumed_from = steps()
        process = _start(chaos, *(["--resume"] if number else []))
        # the kill lands once a checkpoint at or past the target, newer than where this process began, is on disk
        while not (steps() >= target and steps() > resumed_from):
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"kill {number + 1} (step {target}): training ended (exit {process.returncode}) first\n{out}\n{err}")
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"kill {number + 1} (step {target}) not reached in {DEADLINE_S} s")
            time.sleep(0.003)
        process.kill()  # SIGKILL: no handler, no last checkpoint, no cleanup
        process.communicate()
        killed_at.append(steps())
    assert len(set(killed_at)) == KILLS, killed_at  # ten different places
    done = subprocess.run([sys.executable, "-m", "forgeml.cli", *TRAIN, "--resume"], cwd=chaos, env=_env(chaos),
                          capture_output=True, text=True, timeout=DEADLINE_S)
    assert done.returncode == 0 and "Traceback" not in done.stderr, f"{done.stdout}\n{done.stderr}"
    assert steps() == TOTAL_STEPS
    out, err = clean.communicate(timeout=DEADLINE_S)
    assert clean.returncode == 0, f"{out}\n{err}"

    expected, got = _weights(tmp_path / "clean"), _weights(chaos)
    assert list(got) == list(expected) and len(expected) == 2 * FOLDS, (list(expected), list(got))
    for name, tensors in expected.items():
        assert tensors.keys() == got[name].keys() and tensors
        for key, tensor in tensors.items():
            assert torch.equal(tensor, got[name][key]), f"{name}:{key} differs after {KILLS} kills at {killed_at}"
    log = (next((chaos / "runs").glob("*/train.log"))).read_text(encoding="utf-8")
    assert log.count("resuming run") == KILLS
