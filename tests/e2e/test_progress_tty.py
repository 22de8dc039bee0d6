"""What ``forgeml train`` draws on a terminal (issue 18, item 14): a bagged run says which member is
training ("member 2/5 · epoch 1/2"), and a bar shows "loss …" until its first batch, never
"loss nan". stderr is a pseudo-terminal here, so rich draws the bars as it would for a user.
"""
from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _train_on_a_terminal(cwd: Path, *args: str, timeout: float = 240) -> tuple[int, str]:
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1", "OMP_NUM_THREADS": "1", "FORGEML_RUNS_DIR": str(cwd / "runs")}
    process = subprocess.Popen([sys.executable, "-m", "forgeml.cli", "train", *args], cwd=cwd, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    drawn, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            drawn.append(chunk)
        elif process.poll() is not None:
            break
    os.close(leader)
    process.stdout.read()
    returncode = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    return returncode, ANSI.sub("", b"".join(drawn).decode("utf-8", errors="replace"))


def test_a_bagged_run_names_each_member_and_never_shows_loss_nan(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).round(4)
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=(x @ [1.0, -1.0, 0.5]).round(4))
    frame.to_csv(tmp_path / "data.csv", index=False)
    returncode, drawn = _train_on_a_terminal(tmp_path, "data.csv", "--target", "y", "--model", "mlp", "--threads", "1",
                                             "--set", "train.epochs=2", "--runs-dir", "runs")
    assert returncode == 0, drawn
    assert "Traceback" not in drawn
    labels = re.findall(r"member (\d)/(\d) · +epoch (\d)/2", drawn)
    members = [int(k) for k, _, _ in labels]
    assert {n for _, n, _ in labels} == {"5"}, labels  # a bag of 5 (auto: under 1,000 train rows)
    assert sorted(set(members)) == [1, 2, 3, 4, 5] and members == sorted(members), labels  # 1/5 … 5/5, in order
    assert "member 2/5 · " in drawn
    assert not re.search(r"loss\s+nan", drawn), drawn  # nothing to show before the first batch is "…"
    assert "loss …" in drawn and re.search(r"loss \d+\.\d{4}", drawn)
