"""Generation tokens/s with the KV cache vs without it (the whole window recomputed per token),
at batch 1 and batch 8, for the same model, prompts, seed and sampling options.

The model is a preset's shape with its initial (untrained) weights: speed does not depend on
what the weights say, and greedy decoding with ``stop_at_end_of_text`` off makes both paths emit
exactly ``--new-tokens`` tokens per prompt (the script checks they emit the same tokens). Both
paths are ``forgeml.lm.generate.generate_ids``; the baseline is the same loop with
``use_cache=False``, as nanoGPT's ``generate`` does. Target: the cache is faster at both sizes.

    .venv/bin/python bench/lm_generate.py               # small preset, 128 new tokens after 32
    .venv/bin/python bench/lm_generate.py --quick       # mini preset, 48 new tokens
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import ForeignLoad, machine_line, median, pin_threads, verdict  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.preset, args.new_tokens, args.repeats = "mini", 48, 2
    return args


ARGS = parse_args()
pin_threads(ARGS.threads)

import torch  # noqa: E402

from forgeml.lm.config import PRESETS, LMConfig  # noqa: E402
from forgeml.lm.generate import SamplingOptions, generate_ids  # noqa: E402
from forgeml.lm.gpt import GPT  # noqa: E402


def timed(model: GPT, prompts: list[list[int]], use_cache: bool) -> tuple[float, list]:
    options = SamplingOptions(max_new_tokens=ARGS.new_tokens, temperature=0, use_cache=use_cache, stop_at_end_of_text=False)
    started = time.perf_counter()
    steps = list(generate_ids(model, prompts, options))
    seconds = time.perf_counter() - started
    return len(prompts) * len(steps) / seconds, steps


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    print(f"machine: {machine_line()}; torch threads {ARGS.threads}")
    load = ForeignLoad()
    shape = LMConfig.from_preset(ARGS.preset).model.model_copy(update={"vocab_size": PRESETS[ARGS.preset]["vocab_size"]})
    torch.manual_seed(0)
    model = GPT(shape).eval()
    print(f"model: preset {ARGS.preset}, {model.num_params():,} parameters, context {shape.block_size}; "
          f"{ARGS.prompt_tokens}-token prompts, {ARGS.new_tokens} new tokens, greedy, medians of {ARGS.repeats}")
    print(f"{'batch':>5} {'KV cache tok/s':>15} {'no cache tok/s':>15} {'speed-up':>9}  same tokens")
    for batch in ARGS.batches:
        generator = torch.Generator().manual_seed(batch)
        prompts = torch.randint(0, shape.vocab_size, (batch, ARGS.prompt_tokens), generator=generator).tolist()
        timed(model, prompts, True)  # warm-up
        cached, plain = [], []
        for _ in range(ARGS.repeats):
            rate, with_cache = timed(model, prompts, True)
            cached.append(rate)
            rate, without = timed(model, prompts, False)
            plain.append(rate)
        a, b = median(cached), median(plain)
        print(f"{batch:5d} {a:15,.1f} {b:15,.1f} {a / b:8.2f}×  {with_cache == without}  {verdict(a > b and with_cache == without)}")
    print(load.report()[1])


if __name__ == "__main__":
    main()
