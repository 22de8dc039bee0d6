"""Trainer overhead: forgeml's ``Trainer`` vs a hand-written PyTorch loop, same model, same data.

Model: 64 → 3×256 ReLU → 10 (plain ``nn.Sequential``; ours is wrapped to take the ``{"x": X}``
dict the Trainer passes). Data: 200k generated rows, batch 256, Adam lr 1e-3, no weight decay,
no schedule, no clipping, no validation, no checkpoints, no progress bar. Both loops see a fresh
model with the same initial weights and a seeded ``randperm`` order per epoch, take batches by
index slicing, and accumulate the running loss (``loss.item()``), as a typical hand loop does.

Runs alternate (ours, baseline, ours, ...) after one warm-up of each; the medians of
samples/s (wall clock) are compared; samples per process-CPU-second are shown too, being less
sensitive to other processes on the machine. Target: ours ≥ 0.95 × baseline.

    .venv/bin/python bench/trainer_overhead.py            # 1 epoch × 7 runs each, ~1.5 min alone
    .venv/bin/python bench/trainer_overhead.py --quick    # 50k rows, 1 epoch × 5 runs each
    .venv/bin/python bench/trainer_overhead.py --threads 2 --epochs 2
    .venv/bin/python bench/trainer_overhead.py --profile  # + where our extra time goes (cProfile)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import ForeignLoad, machine_line, median, pin_threads, verdict  # noqa: E402

TARGET = 0.95


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed run")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each loop (alternating)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch/OMP threads for both loops (default 1: steadier on a shared 2-core box)")
    parser.add_argument("--quick", action="store_true", help="50k rows, 1 epoch, 5 runs each")
    parser.add_argument("--profile", action="store_true", help="after timing, cProfile one epoch of each loop")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.epochs, args.repeats = min(args.rows, 50_000), 1, 5
    return args


ARGS = parse_args()
pin_threads(ARGS.threads)  # before torch is imported

import torch  # noqa: E402
from torch import nn  # noqa: E402

from forgeml.config import TrainConfig  # noqa: E402
from forgeml.train.trainer import TensorData, Trainer  # noqa: E402

IN, HIDDEN, OUT = 64, 256, 10


class DictInput(nn.Module):
    """The plain Sequential, taking the Trainer's ``{"x": tensor}`` batches."""

    def __init__(self, net: nn.Sequential):
        super().__init__()
        self.net = net

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(inputs["x"])


def make_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(IN, HIDDEN), nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
        nn.Linear(HIDDEN, OUT),
    )


def make_data(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1234)
    x = torch.randn(rows, IN, generator=generator)
    w = torch.randn(IN, OUT, generator=generator)
    y = (x @ w + 0.5 * torch.randn(rows, OUT, generator=generator)).argmax(dim=1)  # learnable labels
    return x.contiguous(), y.contiguous()


def train_config(args: argparse.Namespace, epochs: int) -> TrainConfig:
    return TrainConfig(
        epochs=epochs, batch_size=args.batch_size, schedule="none", grad_clip=None, early_stopping_patience=0,
        progress=False, optimizer="adam", weight_decay=0.0, learning_rate=1e-3, threads=args.threads, seed=0,
    )


def run_ours(x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace, epochs: int) -> tuple[float, float, float]:
    model = DictInput(make_net())
    trainer = Trainer(train_config(args, epochs))
    data = TensorData(inputs={"x": x}, targets=y)
    started, cpu = time.perf_counter(), time.process_time()
    result = trainer.fit(model, nn.CrossEntropyLoss(), data)
    return time.perf_counter() - started, time.process_time() - cpu, float(result.history[-1]["train_loss"])


def run_baseline(x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace, epochs: int) -> tuple[float, float, float]:
    torch.set_num_threads(args.threads)
    net = make_net()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    rows, batch = x.shape[0], args.batch_size
    started, cpu = time.perf_counter(), time.process_time()
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(rows, generator=torch.Generator().manual_seed(epoch))
        total, count = 0.0, 0
        for start in range(0, rows, batch):
            index = order[start : start + batch]
            if index.numel() < 2:
                break
            loss = loss_fn(net(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
            count += 1
    return time.perf_counter() - started, time.process_time() - cpu, total / max(1, count)


def profile(x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> None:
    import cProfile
    import io
    import pstats

    for name, fn in (("ours", run_ours), ("baseline", run_baseline)):
        profiler = cProfile.Profile()
        profiler.enable()
        seconds, _, _ = fn(x, y, args, 1)
        profiler.disable()
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(14)
        print(f"\n--- cProfile, {name}, 1 epoch ({seconds:.2f} s; profiler inflates Python-side costs) ---")
        print("\n".join(stream.getvalue().splitlines()[4:30]))


def main() -> int:
    args = ARGS
    torch.set_num_threads(args.threads)
    x, y = make_data(args.rows)
    samples = args.rows * args.epochs
    print(f"trainer_overhead: {args.rows:,} rows × {IN} in, MLP 3×{HIDDEN} ReLU → {OUT}, batch {args.batch_size}, "
          f"{args.epochs} epoch(s) per run, {args.repeats} runs each, threads={args.threads}")
    print(f"machine: {machine_line()}")
    load = ForeignLoad()
    warm_rows = min(args.rows, 20_000)  # warm-up: allocator, kernels, first-call costs
    run_ours(x[:warm_rows], y[:warm_rows], args, 1)
    run_baseline(x[:warm_rows], y[:warm_rows], args, 1)
    ours, base, ours_cpu, base_cpu = [], [], [], []
    for repeat in range(args.repeats):
        seconds, cpu, loss_ours = run_ours(x, y, args, args.epochs)
        ours.append(samples / seconds)
        ours_cpu.append(samples / cpu)
        seconds_b, cpu_b, loss_base = run_baseline(x, y, args, args.epochs)
        base.append(samples / seconds_b)
        base_cpu.append(samples / cpu_b)
        print(f"  run {repeat + 1}: ours {ours[-1]:>9,.0f} samples/s (loss {loss_ours:.4f})   "
              f"baseline {base[-1]:>9,.0f} samples/s (loss {loss_base:.4f})   ratio {ours[-1] / base[-1]:.3f}   "
              f"[per CPU-second: {ours_cpu[-1]:,.0f} vs {base_cpu[-1]:,.0f}]")
    ratio = median(ours) / median(base)
    ratio_cpu = median(ours_cpu) / median(base_cpu)
    share, note = load.report()
    print(f"\nOURS      median {median(ours):,.0f} samples/s (wall)")
    print(f"BASELINE  median {median(base):,.0f} samples/s (wall, hand-written loop)")
    print(f"RATIO     {ratio:.3f}  (target ≥ {TARGET})  {verdict(ratio >= TARGET)}")
    paired = median([o / b for o, b in zip(ours, base)])
    print(f"RATIO per CPU-second {ratio_cpu:.3f} (samples per process CPU-second: less sensitive to other processes)")
    print(f"RATIO median of paired runs {paired:.3f} (each ours/baseline pair ran back to back: robust to slow drifts)")
    print(f"RATIO of best runs {max(ours) / max(base):.3f} (other processes only ever slow a run down: the fastest run of each is the least disturbed)")
    print(f"load: {note}")
    if args.profile:
        profile(x, y, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
