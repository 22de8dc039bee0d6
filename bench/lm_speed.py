"""LM training tokens/s: forgeml's ``LMTrainer`` vs a hand-written nanoGPT-style loop, and MFU.

Both train the same ``GPT`` (same preset, same initial weights), on the same random windows of
the same memory-mapped tokens (Python standard-library sources), with the same global batch,
gradient accumulation, AdamW (fused, decay on ≥2-D weights), clipping, warm-up + cosine schedule
and precision. The hand loop is what nanoGPT's train.py does, minus its logging. Ours runs with
no checkpoints or progress bar and one micro-batch of final evaluation (the bundle's metrics;
not training speed), but everything else of its loop: reduced loss, signal flag, time budget,
tokens/s and MFU rows.

Modes: fp32, bf16 (CPU autocast) and compiled (torch.compile, fp32). Runs alternate (ours,
baseline, ...) after one warm-up of each; medians of tokens/s (wall clock). MFU = (6·N + attention)
FLOPs per token × tokens/s over the machine's matmul peak this script measures (the faster of
fp32 and bf16: a CPU without bf16 units emulates bf16 matmuls far below its fp32 peak).
Target: ours ≥ 0.95 × baseline in every mode.

    .venv/bin/python bench/lm_speed.py                 # mini preset, 2 threads, 3 runs per mode
    .venv/bin/python bench/lm_speed.py --quick         # tiny preset, fp32 and bf16, 2 runs
    .venv/bin/python bench/lm_speed.py --preset small --steps 10 --modes fp32
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import OUT_DIR, ForeignLoad, machine_line, median, pin_threads, verdict  # noqa: E402

TARGET = 0.95


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per timed run")
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--micro-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["fp32", "bf16", "compiled"], choices=["fp32", "bf16", "compiled"])
    parser.add_argument("--files", type=int, default=60, help="standard-library files in the corpus")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.preset, args.steps, args.repeats, args.modes, args.batch_tokens = "tiny", 8, 2, ["fp32", "bf16"], 4096
    return args


ARGS = parse_args()
pin_threads(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from forgeml.lm.config import LMConfig  # noqa: E402
from forgeml.lm.corpus import prepare_corpus  # noqa: E402
from forgeml.lm.flops import measure_matmul_peak  # noqa: E402
from forgeml.lm.gpt import GPT  # noqa: E402
from forgeml.lm.train import BatchPlan, LMTrainer, warmup_cosine  # noqa: E402


def stdlib_corpus(files: int) -> Path:
    """The first ``files`` standard-library modules (sorted), copied once into bench/out."""
    folder = OUT_DIR / f"stdlib-{files}"
    if not folder.is_dir():
        import shutil

        folder.mkdir(parents=True)
        for source in sorted(Path(os.__file__).parent.glob("*.py"))[:files]:
            shutil.copy(source, folder / source.name)
    return folder


def config_for(mode: str) -> LMConfig:
    return LMConfig.from_preset(ARGS.preset, {
        "train.max_steps": ARGS.steps, "train.batch_tokens": ARGS.batch_tokens, "train.micro_batch": ARGS.micro_batch,
        "train.precision": "bf16" if mode == "bf16" else "fp32", "train.compile": mode == "compiled",
        "train.eval_every": 10**9, "train.eval_batches": 1, "train.checkpoint_every": 10**9, "train.log_every": 10**9, "train.progress": False,
        "train.threads": ARGS.threads, "train.warmup_steps": 2, "train.device": "cpu",  # the hand loop runs on the CPU too
    })


def ours(config: LMConfig, corpus) -> float:
    started = time.perf_counter()
    result = LMTrainer(config).fit(corpus)
    return result.tokens / (time.perf_counter() - started)


def hand_loop(config: LMConfig, corpus) -> float:
    """nanoGPT's train.py, reduced to its training steps."""
    t = config.train
    started = time.perf_counter()
    torch.manual_seed(t.seed)
    model = GPT(config.model)
    optimizer = torch.optim.AdamW(model.optimizer_groups(t.weight_decay, t.learning_rate), lr=t.learning_rate, betas=(0.9, t.beta2), fused=True)
    forward = torch.compile(model) if t.compile else model
    plan = BatchPlan.make(t.batch_tokens, config.model.block_size, t.micro_batch, 1)
    block = config.model.block_size
    path, dtype = corpus.directory / "train.bin", np.dtype(corpus.meta["dtype"])
    length = corpus.meta["train_tokens"]
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if t.precision == "bf16" else None
    for step in range(t.max_steps):
        lr = t.learning_rate * warmup_cosine(step, warmup=t.warmup_steps, total=t.max_steps, min_ratio=t.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        starts = np.random.default_rng([t.seed, step]).integers(0, length - block - 1, size=plan.sequences)
        for micro in range(plan.accumulation):
            data = np.memmap(path, dtype=dtype, mode="r")
            rows = torch.from_numpy(np.stack([data[s : s + block + 1] for s in starts[micro * plan.micro_batch : (micro + 1) * plan.micro_batch]]).astype(np.int64))
            x, y = rows[:, :-1], rows[:, 1:]
            if amp is not None:
                with amp:
                    _, loss = forward(x, y)
            else:
                _, loss = forward(x, y)
            (loss / plan.accumulation).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return plan.tokens * t.max_steps / (time.perf_counter() - started)


def main() -> None:
    print(f"machine: {machine_line()}; torch threads {ARGS.threads}")
    load = ForeignLoad()
    corpus = prepare_corpus(stdlib_corpus(ARGS.files), LMConfig.from_preset(ARGS.preset).corpus, cache_dir=OUT_DIR / "cache")
    print(f"corpus: {corpus.meta['files']} stdlib files, {corpus.meta['train_tokens']:,} train tokens, vocab {corpus.meta['vocab_size']}")
    torch.set_num_threads(ARGS.threads)
    peaks = {p: measure_matmul_peak(p, seconds=2.0) for p in ("fp32", "bf16")}
    os.environ["FORGEML_PEAK_FLOPS"] = str(peaks["fp32"])  # our loop's own MFU column: skip re-measuring per run
    print(f"matmul peak ({ARGS.threads} threads, 1024², best of 2 s): fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s")
    rows = []
    for mode in ARGS.modes:
        config = config_for(mode)
        config = config.model_copy(update={"model": config.model.model_copy(update={"vocab_size": corpus.meta["vocab_size"]})})
        flops_per_token = GPT(config.model).flops_per_token()
        ours(config, corpus), hand_loop(config, corpus)  # warm-up (and compile caches)
        mine, theirs = [], []
        for _ in range(ARGS.repeats):
            mine.append(ours(config, corpus))
            theirs.append(hand_loop(config, corpus))
        a, b = median(mine), median(theirs)
        peak = max(peaks.values())  # the machine's peak: on a CPU without bf16 units, the fp32 one
        rows.append((mode, a, b, a / b, flops_per_token * a / peak, flops_per_token * b / peak))
    print(f"\nmodel: preset {ARGS.preset}, {GPT(config.model).num_params():,} parameters, {flops_per_token:,} FLOPs/token; "
          f"{ARGS.batch_tokens} tokens/step, micro-batch {ARGS.micro_batch}, {ARGS.steps} steps per run, medians of {ARGS.repeats}")
    print(f"{'mode':9} {'ours tok/s':>11} {'hand tok/s':>11} {'ratio':>6} {'MFU ours':>9} {'MFU hand':>9}  target ≥ {TARGET}")
    for mode, a, b, ratio, mfu_a, mfu_b in rows:
        print(f"{mode:9} {a:11,.0f} {b:11,.0f} {ratio:6.3f} {mfu_a:9.1%} {mfu_b:9.1%}  {verdict(ratio >= TARGET)}")
    print(load.report()[1])


if __name__ == "__main__":
    main()
