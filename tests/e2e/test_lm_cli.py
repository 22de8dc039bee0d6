"""``forgeml lm train | generate | eval`` end to end, as a user types them, and every bad input
the issue lists that reaches the command line (each a one-line error, exit code 2)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import string
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TIMEOUT_S = 240
TINY = ["--preset", "tiny", "--batch-tokens", "256", "--set", "model.block_size=32", "--set", "train.eval_every=2",
        "--set", "train.eval_batches=2", "--set", "train.log_every=1", "--set", "train.progress=false", "--threads", "1"]
BUNDLE_FILES = {"config.yaml", "tokenizer.json", "weights.safetensors", "metrics.json", "corpus.json", "model_card.md", "manifest.json"}


def env(workdir: Path) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1",
            "FORGEML_RUNS_DIR": str(workdir / "runs"), "FORGEML_CACHE_DIR": str(workdir / "cache")}


def forgeml(workdir: Path, *args: str | Path, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forgeml.cli", *map(str, args)], cwd=workdir, env=env(workdir),
                          capture_output=True, text=True, timeout=timeout, check=False)


def make_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for module in (string, textwrap, json.decoder, json.encoder):
        shutil.copy(module.__file__, folder / Path(module.__file__).name)
    return folder


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lm-cli")
    corpus = make_corpus(workdir / "corpus")
    done = forgeml(workdir, "lm", "train", corpus, *TINY, "--steps", "4")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    run_id = next(line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("run: "))
    return workdir, done, run_id


def test_train_writes_a_registered_run_with_a_verified_bundle(trained) -> None:
    workdir, done, run_id = trained
    assert "corpus: 4 files, 4 documents" in done.stdout and "bits/byte" in done.stdout and "tokens/s" in done.stdout
    run_dir = workdir / "runs" / run_id
    bundle = run_dir / "bundle"
    assert {p.name for p in bundle.iterdir()} == BUNDLE_FILES
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["task"] == "lm" and manifest["model"] == "gpt" and set(manifest["files"]) == BUNDLE_FILES - {"manifest.json"}
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in rows if "train_loss" in r] == [1, 2, 3, 4] and [r["step"] for r in rows if "val_loss" in r] == [2, 4]
    assert all(r["tokens_per_s"] > 0 and "mfu" in r for r in rows if "train_loss" in r)
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "completed" and record["task"] == "lm" and record["headline_metric"] == "val_loss"
    listed = forgeml(workdir, "runs", "list")
    assert run_id in listed.stdout


def test_generate_streams_the_prompt_and_is_reproducible_with_a_seed(trained) -> None:
    workdir, _, run_id = trained
    args = ("lm", "generate", run_id, "--prompt", "def parse_args(", "--max-new-tokens", "12", "--seed", "4", "--top-p", "0.95", "--top-k", "50")
    first, second = forgeml(workdir, *args), forgeml(workdir, *args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and first.stdout.startswith("def parse_args(") and len(first.stdout) > len("def parse_args(\n")
    batch = forgeml(workdir, "lm", "generate", workdir / "runs" / run_id / "bundle", "-p", "import ", "-p", "class ", "--max-new-tokens", "5", "--seed", "0")
    assert batch.returncode == 0 and "--- 1\nimport " in batch.stdout and "--- 2\nclass " in batch.stdout


def test_eval_reports_loss_perplexity_and_bits_per_byte(trained) -> None:
    workdir, _, run_id = trained
    held = workdir / "heldout.txt"
    held.write_text(Path(textwrap.__file__).read_text(encoding="utf-8")[:4000], encoding="utf-8")
    done = forgeml(workdir, "lm", "eval", run_id, held)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    loss = float(lines[1].split()[1])
    ppl = float(lines[2].split()[1])
    bpb = float(lines[3].split()[-1])
    assert 0 < loss < 8 and abs(ppl - 2.718281828 ** loss) / ppl < 1e-3 and 0 < bpb < loss


def test_bad_generation_input_is_one_clear_line(trained) -> None:
    workdir, _, run_id = trained
    long_prompt = one_line_error(forgeml(workdir, "lm", "generate", run_id, "--prompt", "word " * 80, "--max-new-tokens", "5"))
    assert "the prompt is" in long_prompt and "context is 32" in long_prompt
    zero = one_line_error(forgeml(workdir, "lm", "generate", run_id, "--max-new-tokens", "0"))
    assert "--max-new-tokens" in zero and "at least 1" in zero
    if not __import__("torch").cuda.is_available():
        no_gpu = one_line_error(forgeml(workdir, "lm", "generate", run_id, "--device", "cuda", "--max-new-tokens", "2"))
        assert "--device" in no_gpu and "no CUDA GPU" in no_gpu
    (workdir / "rows.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    wrong_tool = one_line_error(forgeml(workdir, "predict", workdir / "runs" / run_id / "bundle", workdir / "rows.csv"))
    assert "language-model bundle" in wrong_tool and "forgeml lm generate" in wrong_tool


def test_empty_and_binary_only_corpora_are_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    empty = one_line_error(forgeml(tmp_path, "lm", "train", tmp_path / "empty", *TINY))
    assert "no text files" in empty and "empty" in empty
    binary = tmp_path / "binary"
    binary.mkdir()
    for i in range(2):
        (binary / f"blob{i}.txt").write_bytes(bytes(range(256)) * 8)
    message = one_line_error(forgeml(tmp_path, "lm", "train", binary, *TINY))
    assert "2 binary" in message and str(binary) in message


def test_sigterm_checkpoints_and_resume_refuses_another_model_then_continues(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    args = ("lm", "train", corpus, *TINY, "--steps", "100000", "--set", "train.checkpoint_every=2")
    process = subprocess.Popen([sys.executable, "-m", "forgeml.cli", *map(str, args)], cwd=tmp_path, env=env(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not list((tmp_path / "runs").glob("*/checkpoint/last.pt")) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
    interrupted = one_line_error(subprocess.CompletedProcess(args, process.returncode, out, err))
    assert "training interrupted; checkpoint saved" in interrupted and "--resume" in interrupted
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["status"] == "interrupted"

    import torch

    saved = torch.load(run_dir / "checkpoint" / "last.pt", weights_only=True)["step"]  # how far it got before the signal
    target = str(saved + 3)
    refused = one_line_error(forgeml(tmp_path, "lm", "train", corpus, *TINY, "--steps", target, "--set", "model.n_layer=3", "--resume"))
    assert "different model (n_layer: 2 → 3)" in refused
    resumed = forgeml(tmp_path, "lm", "train", corpus, *TINY, "--steps", target, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"run: {run_dir.name}" in resumed.stdout and f"{target} steps" in resumed.stdout
    assert json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["status"] == "completed"
