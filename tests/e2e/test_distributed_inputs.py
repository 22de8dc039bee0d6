"""``forgeml train --nproc-per-node 2`` on an image folder and on a text CSV (a frozen pretrained
encoder, whose outputs each rank computes for its share of the rows, then gathers): one run written by
rank 0, each rank trained on its half of the rows, and the bundle predicts."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.multimodal_data import english_reviews, shape_image, write_image_folder

TIMEOUT_S = 300  # as tests/e2e/test_distributed.py
GLOBAL_BATCH = 16
EPOCHS = {"images": 4, "text": 8}
TEXT_ROWS = {"train": 120, "validation": 20, "test": 20}


def _steps(rows: int, batch: int) -> int:
    """The Trainer's rule: whole batches, plus the remainder if it has at least 2 rows."""
    full, rest = divmod(rows, batch)
    return full + (1 if rest >= 2 else 0)


def _launch(workdir: Path, data: str, target: str, kind: str, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "forgeml.cli", "train", data, "--target", target, "--runs-dir", "runs", "--nproc-per-node", "2",
        "--set", f"train.epochs={EPOCHS[kind]}", "--set", f"train.batch_size={GLOBAL_BATCH}", "--set", "train.progress=false",
        "--set", "train.early_stopping_patience=0", "--set", "train.bagging_folds=1", *extra,
    ]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1", "FORGEML_RUNS_DIR": str(workdir / "runs")}
    return subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, minilm_dir) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Both trainings at once (each is two ranks plus the launcher), so the module waits for the slower only."""
    images = tmp_path_factory.mktemp("dist-images")
    write_image_folder(images / "shapes", per_class=30)
    text = tmp_path_factory.mktemp("dist-text")
    frame = english_reviews(sum(TEXT_ROWS.values()))
    frame["part"] = [part for part, rows in TEXT_ROWS.items() for _ in range(rows)]
    frame.to_csv(text / "reviews.csv", index=False)
    processes = {
        "images": (images, _launch(images, "shapes", "label", "images")),
        "text": (text, _launch(text, "reviews.csv", "sentiment", "text", "--model", "pretrained", "--encoder", str(minilm_dir),
                               "--set", "model.text.freeze=true", "--set", "data.split.column=part", "--set", "train.learning_rate=0.01")),
    }
    done = {}
    for kind, (workdir, process) in processes.items():
        try:
            out, err = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for _, other in processes.values():
                os.killpg(other.pid, signal.SIGKILL)  # torchrun and both ranks
            out, err = process.communicate()
            pytest.fail(f"{kind}: torchrun did not finish in {TIMEOUT_S} s\n{out}\n{err}")
        done[kind] = (workdir, subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


def _run_dir(workdir: Path, done: subprocess.CompletedProcess) -> Path:
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr and done.stdout.count("run: ") == 1
    (run_dir,) = [p for p in (workdir / "runs").iterdir() if p.is_dir()]  # rank 0 alone wrote a run
    assert "(world size 2)" in (run_dir / "train.log").read_text(encoding="utf-8")
    return run_dir


def _global_step(run_dir: Path) -> int:
    checkpoint = torch.load(run_dir / "checkpoint" / "last.pt", weights_only=True)
    assert checkpoint["world_size"] == 2
    return checkpoint["global_step"]


def test_image_folder_on_two_ranks(runs):
    from forgeml import Pipeline
    from forgeml.config import Config
    from forgeml.workflow import prepare

    workdir, done = runs["images"]
    run_dir = _run_dir(workdir, done)
    bundle = run_dir / "bundle"
    train_rows = len(prepare(Config.from_yaml(bundle / "config.yaml"), workdir / "shapes").frames["train"])
    # each rank walks half the train rows in batches of half the global batch
    assert _global_step(run_dir) == EPOCHS["images"] * _steps(train_rows // 2, GLOBAL_BATCH // 2)
    assert _global_step(run_dir) < EPOCHS["images"] * _steps(train_rows, GLOBAL_BATCH // 2)  # not every row on each rank
    rng = np.random.default_rng(9)
    new = workdir / "new"
    new.mkdir()
    for kind in ("left", "right", "stripes"):
        shape_image(kind, rng).save(new / f"{kind}.png")
    preds = Pipeline.load(bundle).predict(new)
    assert len(preds) == 3 and set(preds["label_prediction"]) <= {"left", "right", "stripes"}
    assert (preds["label_prediction"] == ["left", "right", "stripes"]).sum() >= 2


def test_text_csv_with_a_frozen_pretrained_encoder_on_two_ranks(runs):
    from forgeml import Pipeline

    workdir, done = runs["text"]
    run_dir = _run_dir(workdir, done)
    assert _global_step(run_dir) == EPOCHS["text"] * _steps(TEXT_ROWS["train"] // 2, GLOBAL_BATCH // 2)
    pipeline = Pipeline.load(run_dir / "bundle")
    assert "freeze: true" in (run_dir / "bundle" / "config.yaml").read_text()
    preds = pipeline.predict(pd.DataFrame({"review": ["love it, perfect and great", "awful, broken, want a refund"]}))
    assert preds["sentiment_prediction"].tolist() == ["pos", "neg"]
