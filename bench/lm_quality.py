"""Quality: the ``small`` preset trained for a fixed time on the Python standard library's source
files; prints the validation loss (nats/token), perplexity and bits per byte, and a sample.

The baseline in the same run is the unigram model of the same tokens (every token predicted by
its training-set frequency): what a model that learned no context at all would score. Bits per
byte make the figure independent of the tokenizer.

    .venv/bin/python bench/lm_quality.py                      # 15 minutes (the README figure; quiet machine)
    .venv/bin/python bench/lm_quality.py --time-budget 60     # a 1-minute smoke run
    .venv/bin/python bench/lm_quality.py --preset mini --time-budget 120

Everything goes through the CLI a user would type: ``forgeml lm train`` (``--time-budget``),
``forgeml lm generate``. The corpus is every ``*.py`` of the running Python's standard library
(``site-packages`` and the test suites left out: 734 files, 12 MB on 3.11.7), copied once to
bench/out/stdlib-full; its tokens are cached in bench/out/cache after the first run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, ROOT, VENV_PYTHON, ForeignLoad, machine_line  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--time-budget", type=float, default=900.0, help="seconds of training (corpus preparation not included)")
    parser.add_argument("--corpus", type=Path, default=None, help="folder of .py files (default: the stdlib, copied to bench/out)")
    parser.add_argument("--batch-tokens", type=int, default=4096, help="small steps: a 15-minute CPU run gets ~100+ of them")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--prompt", default="def parse_args(")
    parser.add_argument("--keep", action="store_true", help="keep the run in bench/out/runs (default: a temporary folder)")
    return parser.parse_args()


def unigram_bits_per_byte(cache_dir: Path, key: str) -> float:
    import numpy as np

    entry = cache_dir / "corpus" / key
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    train = np.fromfile(entry / "train.bin", dtype=meta["dtype"])
    val = np.fromfile(entry / "val.bin", dtype=meta["dtype"])
    counts = np.bincount(train, minlength=meta["vocab_size"]).astype(np.float64) + 1.0  # add-one: no zero probabilities
    nats = -np.log(counts / counts.sum())[val].sum()
    return float(nats / math.log(2) / meta["val_bytes"])


def stdlib_sources() -> Path:
    import shutil

    lib = Path(os.__file__).parent
    folder = OUT_DIR / "stdlib-full"
    if not folder.is_dir():
        tmp = OUT_DIR / "stdlib-full.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for source in sorted(lib.rglob("*.py")):
            relative = source.relative_to(lib)
            if {"site-packages", "test", "tests", "idle_test"} & set(relative.parts):
                continue
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, tmp / relative)
        tmp.rename(folder)
    return folder


def main() -> None:
    args = parse_args()
    args.corpus = args.corpus or stdlib_sources()
    print(f"machine: {machine_line()}")
    load = ForeignLoad()
    python = str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable)
    cache = OUT_DIR / "cache"
    runs = OUT_DIR / "runs" if args.keep else Path(tempfile.mkdtemp(prefix="forgeml-quality-"))
    env = {**os.environ, "FORGEML_CACHE_DIR": str(cache), "FORGEML_RUNS_DIR": str(runs), "COLUMNS": "200"}
    train = [python, "-m", "forgeml.cli", "lm", "train", str(args.corpus), "--preset", args.preset, "--glob", "*.py",
             "--time-budget", str(args.time_budget), "--steps", "1000000", "--batch-tokens", str(args.batch_tokens),
             "--threads", str(args.threads), "--set", "train.eval_every=50", "--set", "train.warmup_steps=20",
             "--set", f"train.learning_rate={args.learning_rate}",
             "--set", "train.progress=false", "--name", f"stdlib-{args.preset}"]
    done = subprocess.run(train, cwd=ROOT, env=env, capture_output=True, text=True)
    print(done.stdout)
    if done.returncode:
        sys.exit(done.stderr)
    run_id = re.search(r"^run: (\S+)$", done.stdout, re.MULTILINE).group(1)
    bundle = runs / run_id / "bundle"
    metrics = json.loads((bundle / "metrics.json").read_text(encoding="utf-8"))
    corpus = json.loads((bundle / "corpus.json").read_text(encoding="utf-8"))
    sample = subprocess.run([python, "-m", "forgeml.cli", "lm", "generate", str(bundle), "--prompt", args.prompt,
                             "--max-new-tokens", "120", "--temperature", "0.8", "--top-p", "0.95", "--seed", "0"],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    baseline = unigram_bits_per_byte(cache, corpus["key"])
    print(f"preset {args.preset}: {metrics['params']:,} parameters; {metrics['steps']} steps, {metrics['tokens']:,} tokens in a "
          f"{args.time_budget:g} s budget ({metrics['tokens_per_s']:,.0f} tokens/s at the end, MFU {metrics['mfu']:.1%})")
    print(f"validation: {metrics['val_loss']:.4f} nats/token, perplexity {metrics['val_ppl']:.1f}, "
          f"{metrics['val_bits_per_byte']:.3f} bits/byte  |  unigram baseline {baseline:.3f} bits/byte  "
          f"→ {baseline / metrics['val_bits_per_byte']:.2f}× fewer bits")
    print(f"sample (temperature 0.8, top-p 0.95, seed 0):\n{sample.stdout}")
    print(load.report()[1])


if __name__ == "__main__":
    main()
