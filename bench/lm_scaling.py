"""Data-parallel scaling on one host: ``forgeml lm train`` tokens/s with 1 process and with 2
(``--nproc-per-node 2``: torchrun, gloo, DDP), same model, global batch and steps.

Three runs: 1 process × 1 thread (the unit), 1 process × all threads (what one process gets from
the machine), 2 processes × 1 thread each. Scaling efficiency = 2-process tokens/s ÷ (2 × the
1-process-1-thread tokens/s); the 2-thread single process is the practical baseline on a 2-core
box. tokens/s is each run's own metrics.jsonl figure (training steps only; evaluation and
checkpoints excluded), the median of its rows after the first.

    .venv/bin/python bench/lm_scaling.py            # mini preset, 24 steps per run
    .venv/bin/python bench/lm_scaling.py --quick    # tiny preset, 12 steps
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, VENV_PYTHON, ForeignLoad, machine_line, median, thread_env  # noqa: E402
from lm_speed import stdlib_corpus  # noqa: E402  (the same corpus folder)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--quick", action="store_true")
    args, _ = parser.parse_known_args()
    if args.quick:
        args.preset, args.steps, args.batch_tokens = "tiny", 12, 4096
    return args


def run(corpus: Path, workdir: Path, processes: int, threads: int, args: argparse.Namespace) -> float:
    python = str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable)
    command = [python, "-m", "forgeml.cli", "lm", "train", str(corpus), "--preset", args.preset, "--steps", str(args.steps),
               "--batch-tokens", str(args.batch_tokens), "--threads", str(threads), "--nproc-per-node", str(processes),
               "--set", "train.log_every=2", "--set", "train.eval_every=100000", "--set", "train.eval_batches=1",
               "--set", "train.progress=false", "--runs-dir", str(workdir / "runs"), "--name", f"p{processes}t{threads}"]
    env = {**thread_env(threads), "FORGEML_CACHE_DIR": str(ROOT / "bench" / "out" / "cache")}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode:
        sys.exit(f"run failed:\n{done.stdout}\n{done.stderr}")
    (metrics,) = (workdir / "runs").glob(f"*-p{processes}t{threads}-*/metrics.jsonl")
    rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines()]
    rates = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r][1:]
    return median(rates)


def main() -> None:
    args = parse_args()
    print(f"machine: {machine_line()}")
    load = ForeignLoad()
    corpus = stdlib_corpus(60)
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        one = run(corpus, Path(tmp), 1, 1, args)
        one_all = run(corpus, Path(tmp), 1, cores, args)
        two = run(corpus, Path(tmp), 2, 1, args)
    print(f"preset {args.preset}, {args.batch_tokens} tokens per step, {args.steps} steps per run")
    print(f"1 process × 1 thread : {one:10,.0f} tokens/s")
    print(f"1 process × {cores} threads: {one_all:10,.0f} tokens/s")
    print(f"2 processes × 1 thread: {two:10,.0f} tokens/s  → speed-up {two / one:.2f}× over 1×1, efficiency {two / (2 * one):.0%}; "
          f"{two / one_all:.2f}× the {cores}-thread single process")
    print(load.report()[1])


if __name__ == "__main__":
    main()
