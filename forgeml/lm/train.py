"""The language-model training loop.

Why not ``forgeml.train.trainer.Trainer``: that loop walks epochs of row batches with early
stopping; pretraining walks optimizer *steps* of random token windows with a token-count batch,
gradient accumulation, a warm-up + cosine schedule and an evaluation every N steps. What does not
differ is shared: checkpoints (``train.checkpoint``), data parallelism (``train.distributed``),
precision (``train.precision``), signal handling (``train.signals``), the AdamW groups (decay
only on ≥2-D weights, ``train.optim``) and the run registry.

Batches: step ``s`` draws its global batch of windows from a generator seeded by (seed, s); rank
``r`` of ``W`` reads only its contiguous share of it. So a run resumed at step ``s`` sees the
batches it would have seen, and 2 processes see exactly the windows 1 process would — which is
what makes their final weights equal (tested).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from forgeml.errors import CheckpointError, ConfigError
from forgeml.lm.config import LMConfig
from forgeml.lm.corpus import TokenCorpus
from forgeml.lm.flops import measure_matmul_peak
from forgeml.lm.gpt import GPT
from forgeml.lm.parallel import WRAPPERS, full_optimizer_state, full_state, load_optimizer_state, no_sync
from forgeml.train.checkpoint import LAST, load_checkpoint, save_checkpoint
from forgeml.train.device import resolve_device
from forgeml.train.distributed import DistContext, default_threads
from forgeml.train.precision import autocast
from forgeml.train.progress import ProgressBar
from forgeml.train.signals import stop_on_signals
from forgeml.train.trainer import TrainingInterrupted, cuda_rng, restore_cuda_rng


# ----------------------------------------------------------------------------- batches
@dataclass(frozen=True)
class BatchPlan:
    """How a token-count batch becomes forward passes: micro × accumulation × processes."""

    block_size: int
    micro_batch: int
    accumulation: int
    world_size: int

    @property
    def sequences(self) -> int:
        return self.micro_batch * self.accumulation * self.world_size

    @property
    def tokens(self) -> int:
        return self.sequences * self.block_size

    @classmethod
    def make(cls, batch_tokens: int, block_size: int, micro_batch: int, world_size: int) -> "BatchPlan":
        sequences = max(1, batch_tokens // block_size)
        micro = max(1, min(micro_batch, sequences // world_size))
        return cls(block_size, micro, max(1, round(sequences / (micro * world_size))), world_size)


class TokenWindows:
    """Windows of ``block_size + 1`` tokens from a memory-mapped token file."""

    def __init__(self, corpus: TokenCorpus, split: str, block_size: int):
        self.corpus, self.split, self.block_size = corpus, split, block_size
        self.length = len(corpus.tokens(split))

    @property
    def usable(self) -> bool:
        return self.length > self.block_size + 1

    def take(self, starts: np.ndarray, device: torch.device = torch.device("cpu")) -> tuple[torch.Tensor, torch.Tensor]:
        # a fresh memmap per batch: numpy keeps every page of a long-lived one resident (nanoGPT)
        tokens = self.corpus.tokens(self.split)
        rows = np.stack([tokens[s : s + self.block_size + 1] for s in starts]).astype(np.int64)
        batch = torch.from_numpy(rows)
        if device.type == "cuda":  # pinned host memory: the copy overlaps the GPU's work (nanoGPT)
            batch = batch.pin_memory().to(device, non_blocking=True)
        return batch[:, :-1], batch[:, 1:]  # (B, T) inputs, (B, T) next tokens

    def step_starts(self, seed: int, step: int, count: int) -> np.ndarray:
        rng = np.random.default_rng([seed, step])
        return rng.integers(0, self.length - self.block_size - 1, size=count)

    def eval_starts(self, count: int) -> np.ndarray:
        return np.linspace(0, self.length - self.block_size - 1, num=count).astype(np.int64)


def warmup_cosine(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine down to ``min_ratio`` (GPT-3)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + 0.5 * (1 - min_ratio) * (1 + math.cos(math.pi * progress))


def _compile(model: nn.Module, enabled: bool) -> nn.Module:
    return torch.compile(model) if enabled else model


# ----------------------------------------------------------------------------- the loop
@dataclass
class LMResult:
    model: GPT
    steps: int
    tokens: int
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class LMTrainer:
    def __init__(self, config: LMConfig, *, checkpoint_dir: Path | None = None, dist: DistContext | None = None,
                 log: Callable[[dict[str, Any]], None] | None = None):
        self.config = config
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.dist = dist or DistContext()
        self.log = log or (lambda row: None)
        self._stop_signal: int | None = None
        self.device = torch.device("cpu")  # set by fit()

    def fit(self, corpus: TokenCorpus, *, resume: bool = False) -> LMResult:
        cfg, tcfg, dist = self.config, self.config.train, self.dist
        torch.set_num_threads(tcfg.threads or default_threads(dist.local_world_size))
        torch.manual_seed(tcfg.seed)
        # under torchrun the rank's device was bound with the process group; else train.device
        self.device = device = dist.device if dist.enabled else resolve_device(tcfg.device)
        model = GPT(cfg.model)
        train = TokenWindows(corpus, "train", cfg.model.block_size)
        val = TokenWindows(corpus, "val", cfg.model.block_size)
        if not train.usable:
            raise ConfigError(
                f"the corpus has {train.length} training tokens, fewer than one context window ({cfg.model.block_size + 1})",
                where=str(cfg.corpus.path), hint="add text, or lower model.block_size",
            )
        plan = BatchPlan.make(tcfg.batch_tokens, cfg.model.block_size, tcfg.micro_batch, dist.world_size)
        checkpoint = self._load_for_resume(model) if resume else None
        model.to(device)  # the same initial weights on every device: created on the CPU, then moved
        net = WRAPPERS[tcfg.strategy](model) if dist.enabled else model
        optimizer = _adamw(model, tcfg)  # after wrapping: FSDP replaces the parameters with shards
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: warmup_cosine(s, warmup=tcfg.warmup_steps, total=tcfg.max_steps, min_ratio=tcfg.min_lr_ratio))
        step, tokens, history = 0, 0, []
        if checkpoint is not None:
            step, tokens, history = self._restore_loop(checkpoint, model, optimizer, schedule)
        forward = _compile(net, tcfg.compile)
        flops_per_step = model.flops_per_token() * plan.tokens
        peak = dist.broadcast(measure_matmul_peak(_peak_precision(tcfg.precision, device), device=device) if dist.is_main else None) * dist.world_size
        started = time.perf_counter()
        window_started, window_tokens, window_loss, window_steps = time.perf_counter(), 0, 0.0, 0
        last_eval: dict[str, Any] = {}
        with stop_on_signals(lambda signum: setattr(self, "_stop_signal", signum)), ProgressBar(
            enabled=tcfg.progress and dist.is_main, total=tcfg.max_steps, done=step, count="step") as bar:
            while step < tcfg.max_steps:
                net.train()
                starts = train.step_starts(tcfg.seed, step, plan.sequences)
                mine = starts[dist.rank * plan.micro_batch * plan.accumulation :][: plan.micro_batch * plan.accumulation]
                loss_sum = 0.0
                for micro in range(plan.accumulation):
                    x, y = train.take(mine[micro * plan.micro_batch : (micro + 1) * plan.micro_batch], device)
                    with no_sync(net, micro == plan.accumulation - 1):
                        forward, loss = self._forward(forward, net, x, y)
                        (loss / plan.accumulation).backward()
                    loss_sum += float(loss.detach())
                if tcfg.grad_clip:
                    nn.utils.clip_grad_norm_(net.parameters(), tcfg.grad_clip)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                tokens += plan.tokens
                window_tokens += plan.tokens
                window_loss += loss_sum / plan.accumulation
                window_steps += 1
                elapsed = time.perf_counter() - window_started
                tokens_per_s = window_tokens / elapsed if elapsed > 0 else 0.0
                mfu = flops_per_step * (window_tokens / plan.tokens) / elapsed / peak if elapsed > 0 and peak else 0.0
                bar.update(step, lambda: _step_text(loss_sum / plan.accumulation, tokens_per_s, mfu, last_eval.get("val_loss")))
                over_budget = tcfg.time_budget_s is not None and time.perf_counter() - started > tcfg.time_budget_s
                stopping = dist.any_flag(self._stop_signal is not None or over_budget)
                if step % tcfg.log_every == 0 or step == tcfg.max_steps or stopping:
                    row = {"step": step, "tokens": tokens, "train_loss": dist.mean(window_loss / window_steps),
                           "lr": optimizer.param_groups[0]["lr"], "tokens_per_s": round(tokens_per_s, 1), "mfu": round(mfu, 4)}
                    history.append(row)
                    self.log(row)
                    window_started, window_tokens, window_loss, window_steps = time.perf_counter(), 0, 0.0, 0
                paused = time.perf_counter()  # evaluation and checkpoints are not training speed
                if val.usable and (step % tcfg.eval_every == 0 or step == tcfg.max_steps or stopping):
                    last_eval = {"step": step, "tokens": tokens, **self.evaluate(model, val, plan)}
                    history.append(last_eval)
                    self.log(last_eval)
                if step % tcfg.checkpoint_every == 0 or step % tcfg.eval_every == 0 or step == tcfg.max_steps or stopping:
                    path = self._save(model, optimizer, schedule, step, tokens, history)
                window_started += time.perf_counter() - paused
                if stopping:
                    if self._stop_signal is not None:
                        raise TrainingInterrupted(path)
                    break
        seconds = time.perf_counter() - started
        train_rows = [r for r in history if "train_loss" in r]
        metrics = {
            "steps": step, "tokens": tokens, "batch_tokens": plan.tokens, "params": model.num_params(),
            "flops_per_token": model.flops_per_token(), "world_size": dist.world_size,
            "train_loss": train_rows[-1]["train_loss"] if train_rows else None,
            "tokens_per_s": train_rows[-1]["tokens_per_s"] if train_rows else None,
            "mfu": train_rows[-1]["mfu"] if train_rows else None, "peak_flops": peak,
        }
        if last_eval:
            bytes_per_token = corpus.meta.get("val_bytes", 0) / max(1, corpus.meta.get("val_tokens", 1))
            metrics.update({k: v for k, v in last_eval.items() if k.startswith("val_")})
            if bytes_per_token:
                metrics["val_bits_per_byte"] = last_eval["val_loss"] / math.log(2) / bytes_per_token
        return LMResult(model, step, tokens, history, metrics, seconds)

    def _forward(self, forward: nn.Module, net: nn.Module, x: torch.Tensor, y: torch.Tensor):
        """One forward pass; a compiled model that cannot compile here falls back to eager once."""
        try:
            with autocast(self.config.train.precision, self.device):
                _, loss = forward(x, y)
            return forward, loss
        except Exception as exc:  # noqa: BLE001 - inductor fails in many ways (no compiler, unsupported op)
            if forward is net:
                raise
            warnings.warn(f"torch.compile failed ({exc.__class__.__name__}); training without it", RuntimeWarning, stacklevel=2)
            with autocast(self.config.train.precision, self.device):
                _, loss = net(x, y)
            return net, loss

    @torch.no_grad()
    def evaluate(self, model: GPT, val: TokenWindows, plan: BatchPlan) -> dict[str, float]:
        """Mean loss over evenly spaced validation windows, the windows shared out among the ranks."""
        count = self.config.train.eval_batches * plan.micro_batch
        count -= count % self.dist.world_size
        starts = val.eval_starts(max(count, self.dist.world_size))[self.dist.rank :: self.dist.world_size]
        model.eval()
        total = 0.0
        for i in range(0, len(starts), plan.micro_batch):
            x, y = val.take(starts[i : i + plan.micro_batch], self.device)
            with autocast(self.config.train.precision, self.device):
                _, loss = model(x, y)
            total += float(loss) * len(x)
        loss = self.dist.mean(total / max(1, len(starts)))
        return {"val_loss": loss, "val_ppl": math.exp(min(loss, 50.0))}

    # ------------------------------------------------------------------ checkpoints
    def _save(self, model, optimizer, schedule, step: int, tokens: int, history: list) -> Path | None:
        if self.checkpoint_dir is None:
            return None
        state = full_state(model)  # every rank takes part (FSDP gathers); rank 0 writes
        optimizer_state = full_optimizer_state(model, optimizer)
        if not self.dist.is_main:
            return None
        return save_checkpoint(self.checkpoint_dir, {
            "model": state, "optimizer": optimizer_state,
            "scheduler": schedule.state_dict(), "step": step, "tokens": tokens, "history": history,
            "rng": torch.get_rng_state(), **cuda_rng(self.device), "model_config": self.config.model.model_dump(mode="json"),
            "world_size": self.dist.world_size,
        })

    def _load_for_resume(self, model: GPT) -> dict[str, Any]:
        """The checkpoint, after checking it is of this model; the weights go in before wrapping.

        Rank 0 reads it (only rank 0's host has it) and sends it to the others. If rank 0 cannot,
        it raises, and torchrun ends the ranks waiting here."""
        checkpoint = self.dist.broadcast(self._read_checkpoint() if self.dist.is_main else None)
        model.load_state_dict(checkpoint["model"])
        return checkpoint

    def _read_checkpoint(self) -> dict[str, Any]:
        checkpoint = load_checkpoint(self.checkpoint_dir)
        where = str(self.checkpoint_dir / LAST)
        saved, wanted = checkpoint.get("model_config", {}), self.config.model.model_dump(mode="json")
        differences = [f"{k}: {saved.get(k)} → {v}" for k, v in wanted.items() if saved.get(k) != v]
        if differences:
            raise CheckpointError(
                f"the checkpoint is of a different model ({'; '.join(differences)})",
                where=where, hint="resume with the run's own preset and options, or start without --resume",
            )
        return checkpoint

    def _restore_loop(self, checkpoint: dict[str, Any], model, optimizer, schedule) -> tuple[int, int, list]:
        if checkpoint["optimizer"]:
            load_optimizer_state(model, optimizer, checkpoint["optimizer"])
        schedule.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["rng"])
        restore_cuda_rng(checkpoint, self.device)
        return checkpoint["step"], checkpoint["tokens"], list(checkpoint["history"])


def _peak_precision(precision: str, device: torch.device) -> str:
    """The precision whose matmul peak MFU is measured against. On a CPU without bf16 units
    bf16 matmuls are emulated and slower than fp32 (0.7 vs 170 GFLOP/s on the 2-core EPYC we
    measured), so the machine's peak is the fp32 one; on CUDA bf16 runs on its own, faster units."""
    return precision if precision == "bf16" and device.type == "cuda" else "fp32"


def _adamw(model: GPT, tcfg) -> torch.optim.Optimizer:
    groups = model.optimizer_groups(tcfg.weight_decay, tcfg.learning_rate)
    try:  # the fused kernel (CPU and CUDA in torch ≥ 2.4) saves a pass over the parameters
        return torch.optim.AdamW(groups, lr=tcfg.learning_rate, betas=(0.9, tcfg.beta2), fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=tcfg.learning_rate, betas=(0.9, tcfg.beta2), foreach=True)


def _step_text(loss: float, tokens_per_s: float, mfu: float, val_loss: float | None) -> str:
    val = f" val {val_loss:.3f}" if val_loss is not None else ""
    return f"loss {loss:.3f}{val} {tokens_per_s:,.0f} tok/s MFU {mfu:.1%}"
