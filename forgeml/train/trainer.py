"""The one training loop for every torch model in forgeml.

What changes between models (the module, its loss, its validation metrics) comes in as
arguments; what does not (batching, optimisation, schedules, precision, clipping, early
stopping, checkpoint/resume, signals, data parallelism) lives here once.

Batches are taken by slicing tensors that were built once (no per-row ``__getitem__``, no
collate): for small tabular models that is the difference between 0.7× and 1.0× a hand loop.
Each epoch's order comes from a generator seeded by (seed, epoch), so a run resumed in the
middle of an epoch sees exactly the batches it would have seen.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import nn

from forgeml.config import TrainConfig
from forgeml.errors import CheckpointError
from forgeml.train.checkpoint import LAST, cuda_rng, load_checkpoint, restore_cuda_rng, save_checkpoint  # noqa: F401  (cuda_rng: forgeml.lm imports it from here)
from forgeml.train.device import resolve_device
from forgeml.train.distributed import DistContext, default_threads
from forgeml.train.optim import build_optimizer, build_scheduler
from forgeml.train.precision import autocast
from forgeml.train.progress import ProgressBar
from forgeml.train.signals import stop_on_signals


@dataclass
class TensorData:
    """Inputs (a dict of tensors sharing the first dimension) and targets."""

    inputs: dict[str, torch.Tensor]
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def take(self, index: torch.Tensor | slice) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return {k: v[index] for k, v in self.inputs.items()}, self.targets[index]


def to_device(inputs: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A batch onto the model's device. The data stays in host memory (an image set may not fit
    on the GPU); only each batch is copied, and on the CPU nothing is."""
    if device.type == "cpu":
        return inputs
    return {k: v.to(device, non_blocking=True) for k, v in inputs.items()}


class Callback(Protocol):
    def on_epoch_end(self, row: dict[str, Any]) -> None: ...


class TrainingInterrupted(Exception):
    """SIGTERM/SIGINT arrived; a checkpoint was written (on rank 0) before raising."""

    def __init__(self, checkpoint: Path | None):
        self.checkpoint = checkpoint
        super().__init__(f"training interrupted; checkpoint at {checkpoint}")


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float | None = None
    stopped_early: bool = False
    seconds: float = 0.0
    privacy: dict[str, Any] | None = None  # ε spent, δ and how (forgeml.train.privacy), for a private run


MetricsFn = Callable[[torch.Tensor, torch.Tensor], dict[str, float]]


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        *,
        checkpoint_dir: Path | None = None,
        callbacks: list[Callback] | None = None,
        dist: DistContext | None = None,
        monitor_direction: str = "min",
        deadline: float | None = None,
        label: str = "",
    ):
        self.config = config
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.callbacks = callbacks or []
        self.dist = dist or DistContext()
        self.monitor_direction = monitor_direction
        self.deadline = deadline  # time.monotonic(): stop after the epoch that passes it, keep the best weights
        self.label = label  # what this fit is part of, in front of the progress bar ("member 2/6 mlp · fold 3/5")
        self._stop_signal: int | None = None
        self.device = torch.device("cpu")  # set by fit(); predict() uses wherever the model is
        self._private: Any = None  # forgeml.train.privacy.PrivateTraining, with train.privacy.epsilon

    # ------------------------------------------------------------------ public
    def fit(
        self,
        model: nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        train: TensorData,
        val: TensorData | None = None,
        *,
        metrics_fn: MetricsFn | None = None,
        resume: bool = False,
    ) -> FitResult:
        cfg = self.config
        torch.set_num_threads(cfg.threads or default_threads(self.dist.local_world_size))
        torch.manual_seed(cfg.seed)
        # under torchrun the rank's device was bound with the process group; else train.device
        self.device = self.dist.device if self.dist.enabled else resolve_device(cfg.device)
        model.to(self.device)  # before the optimizer: it holds the parameters where they live
        if cfg.privacy.enabled:  # DP-SGD: Poisson batches, per-row clipping, noise (forgeml/train/privacy.py)
            from forgeml.train.privacy import PrivateTraining

            self._private = PrivateTraining(cfg, len(train))
        steps_per_epoch = self._private.steps_per_epoch if self._private else self._steps_per_epoch(len(train))
        optimizer = build_optimizer(model, cfg)
        scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
        state = _LoopState()
        if resume:
            state = self._restore(model, optimizer, scheduler)
        net = self._wrap(model)
        if self._private:
            net, optimizer = self._private.attach(model, optimizer, state.privacy, resumed=resume)
        started = time.perf_counter()
        # a run that had stopped early when it was killed (before its bundle was written) is over:
        # one more epoch could find a new best and end elsewhere than the uninterrupted run
        first_epoch = cfg.epochs if state.stopped_early else state.epoch
        with self._signals():
            for epoch in range(first_epoch, cfg.epochs):
                epoch_started = time.perf_counter()
                train_loss = self._train_epoch(net, model, loss_fn, optimizer, scheduler, train, epoch, state, steps_per_epoch)
                train_loss = self.dist.mean(train_loss)  # every rank logs, and stops on, the same numbers
                self.dist.sync_buffers(model)
                row = {"epoch": epoch + 1, "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"]}
                if val is not None and len(val):
                    row.update({f"val_{k}": _plain(v) for k, v in self.evaluate(model, loss_fn, val, metrics_fn).items()})
                row["seconds"] = round(time.perf_counter() - epoch_started, 4)
                state.history.append(row)
                stop = self._early_stopping(model, row, state, epoch)
                state.epoch, state.batch, state.stopped_early = epoch + 1, 0, stop  # checkpointed: see first_epoch
                path = self._save(model, optimizer, scheduler, state)
                for callback in self.callbacks:
                    callback.on_epoch_end(row)
                if self.dist.any_flag(self._stop_signal is not None):  # arrived during evaluation
                    raise TrainingInterrupted(path)
                if stop:
                    break
                if self.deadline is not None and self.dist.any_flag(time.monotonic() >= self.deadline):
                    break
        if state.best_state is not None:
            model.load_state_dict(state.best_state)
        if self._private:
            self._private.detach()
        return FitResult(state.history, state.best_epoch, state.best_value, state.stopped_early, time.perf_counter() - started,
                         self._private.spent() if self._private else None)

    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: dict[str, torch.Tensor], batch_size: int | None = None) -> torch.Tensor:
        model.eval()
        batch_size = batch_size or getattr(model, "predict_batch_size", 4096)  # images: far smaller batches
        rows = next(iter(inputs.values())).shape[0] if inputs else 0
        device = next(model.parameters(), torch.empty(0)).device  # where the model is, trained here or loaded
        outputs = []
        with autocast(self.config.precision, device):
            for start in range(0, rows, batch_size):
                batch = to_device({k: v[start : start + batch_size] for k, v in inputs.items()}, device)
                outputs.append(model(batch).float().cpu())
        return torch.cat(outputs) if outputs else torch.zeros(0)

    def evaluate(self, model: nn.Module, loss_fn: Callable, data: TensorData, metrics_fn: MetricsFn | None) -> dict[str, float]:
        outputs = self.predict(model, data.inputs)
        with torch.no_grad():
            metrics = {"loss": float(loss_fn(outputs, data.targets))}
        if metrics_fn is not None:
            metrics.update(metrics_fn(outputs, data.targets))
        return metrics

    # ------------------------------------------------------------------ loop
    def _steps_per_epoch(self, rows: int) -> int:
        per_rank = rows // self.dist.world_size
        batch = self._local_batch_size()
        full, rest = divmod(per_rank, batch)
        return max(1, full + (1 if rest >= 2 else 0))  # a 1-row batch breaks batch norm

    def _local_batch_size(self) -> int:
        """The configured batch is global: each of N ranks takes 1/N of it."""
        return max(1, self.config.batch_size // self.dist.world_size)

    def _epoch_order(self, rows: int, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        order = torch.randperm(rows, generator=generator)
        if self.dist.enabled:  # equal shards, so every rank takes the same number of steps
            per_rank = rows // self.dist.world_size
            order = order[self.dist.rank :: self.dist.world_size][:per_rank]
        return order

    def _train_epoch(self, net, model, loss_fn, optimizer, scheduler, train: TensorData, epoch: int, state: "_LoopState", steps: int) -> float:
        cfg = self.config
        net.train()
        order = self._epoch_order(len(train), epoch)
        batch_size = self._local_batch_size()
        penalised = [p for p in model.parameters() if p.dim() >= 2] if (cfg.l1 or cfg.l2) else []
        watched = f"val_{cfg.early_stopping_metric}"
        last = state.history[-1] if state.history else {}
        note = f"{watched} {last[watched]:.4g}" if isinstance(last.get(watched), (int, float)) else ""
        title = f"{self.label} · epoch {epoch + 1}/{cfg.epochs}" if self.label else f"epoch {epoch + 1}/{cfg.epochs}"

        def shown() -> str:
            return f"loss {state.loss_total / max(1, state.loss_count):.4f} {note}"

        progress = ProgressBar(enabled=cfg.progress and self.dist.is_main, total=steps, done=state.batch, title=title, text=f"loss … {note}")
        batches = self._private.batches(epoch, state.batch) if self._private else \
            (order[step * batch_size : (step + 1) * batch_size] for step in range(state.batch, steps))
        with progress as bar:
            for step, rows in zip(range(state.batch, steps), batches):
                inputs, targets = train.take(rows)
                if self.device.type != "cpu":
                    inputs, targets = to_device(inputs, self.device), targets.to(self.device, non_blocking=True)
                with self._autocast():
                    outputs = net(inputs)
                loss = loss_fn(outputs.float(), targets)
                if penalised:
                    loss = loss + _weight_penalty(penalised, cfg.l1, cfg.l2)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip and not self._private:  # DP-SGD clips each row's gradient instead
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                state.global_step += 1
                if len(targets):  # a Poisson batch may be empty (its step still adds noise and counts)
                    state.loss_total += float(loss.detach())
                    state.loss_count += 1
                state.batch = step + 1
                bar.update(state.batch, shown)
                if state.global_step % cfg.checkpoint_every_steps == 0:
                    self._save(model, optimizer, scheduler, state, epoch=epoch)
                if self.dist.any_flag(self._stop_signal is not None):
                    path = self._save(model, optimizer, scheduler, state, epoch=epoch)
                    raise TrainingInterrupted(path)
        # The running sum lives in the loop state so an epoch resumed mid-way reports the same loss.
        train_loss = state.loss_total / max(1, state.loss_count)
        state.loss_total, state.loss_count = 0.0, 0
        return train_loss

    def _early_stopping(self, model: nn.Module, row: dict[str, Any], state: "_LoopState", epoch: int) -> bool:
        cfg = self.config
        if "val_loss" not in row:
            # No validation split: a "best" train-loss epoch says nothing about generalisation, so
            # early stopping is off and the final weights are kept.
            state.best_value, state.best_epoch, state.best_state = row["train_loss"], epoch + 1, None
            return False
        key = f"val_{cfg.early_stopping_metric}"
        value = row.get(key, row["val_loss"])
        value = float(value) if value is not None and not (isinstance(value, float) and math.isnan(value)) else None
        if value is None:
            return False
        delta = cfg.early_stopping_min_delta
        better = state.best_value is None or (
            value < state.best_value - delta if self.monitor_direction == "min" else value > state.best_value + delta
        )
        if better:
            state.best_value, state.best_epoch, state.bad_epochs = value, epoch + 1, 0
            state.best_state = copy.deepcopy(model.state_dict())
            return False
        state.bad_epochs += 1
        return cfg.early_stopping_patience > 0 and state.bad_epochs >= cfg.early_stopping_patience

    # ------------------------------------------------------------------ plumbing
    def _wrap(self, model: nn.Module) -> nn.Module:
        if not self.dist.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _autocast(self):
        return autocast(self.config.precision, self.device)

    def _save(self, model, optimizer, scheduler, state: "_LoopState", epoch: int | None = None) -> Path | None:
        if self.checkpoint_dir is None or not self.dist.is_main:
            return None
        return save_checkpoint(
            self.checkpoint_dir,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": state.epoch if epoch is None else epoch,
                "batch": state.batch if epoch is not None else 0,
                "global_step": state.global_step,
                "loss_total": state.loss_total,
                "loss_count": state.loss_count,
                "history": state.history,
                "best_value": state.best_value,
                "best_epoch": state.best_epoch,
                "bad_epochs": state.bad_epochs,
                "best_state": state.best_state,
                "stopped_early": state.stopped_early,
                "rng": torch.get_rng_state(),
                **cuda_rng(self.device),
                "world_size": self.dist.world_size,
                "privacy": self._private.state_dict() if self._private else None,
            },
        )

    def _restore(self, model, optimizer, scheduler) -> "_LoopState":
        # rank 0 reads (only its host has the file) and sends; if it cannot, torchrun ends the others
        checkpoint = self.dist.broadcast(load_checkpoint(self.checkpoint_dir) if self.dist.is_main else None)
        where = str(self.checkpoint_dir / LAST)
        if checkpoint.get("world_size", 1) != self.dist.world_size:  # shards and steps would not line up
            raise CheckpointError(
                f"checkpoint was written by {checkpoint.get('world_size', 1)} processes, this run has {self.dist.world_size}",
                where=where, hint="resume with the same number of processes",
            )
        try:
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(
                f"checkpoint does not fit this model or optimizer ({exc.__class__.__name__})",
                where=where, hint="resume with the run's own config.yaml, or start without --resume",
            ) from None
        torch.set_rng_state(checkpoint["rng"])
        restore_cuda_rng(checkpoint, self.device)
        return _LoopState(
            epoch=checkpoint["epoch"],
            batch=checkpoint["batch"],
            global_step=checkpoint["global_step"],
            loss_total=checkpoint.get("loss_total", 0.0),
            loss_count=checkpoint.get("loss_count", 0),
            history=list(checkpoint["history"]),
            best_value=checkpoint["best_value"],
            best_epoch=checkpoint["best_epoch"],
            bad_epochs=checkpoint["bad_epochs"],
            best_state=checkpoint["best_state"],
            stopped_early=checkpoint.get("stopped_early", False),  # not in checkpoints before 2026-12
            privacy=checkpoint.get("privacy"),
        )

    def _signals(self):
        """SIGTERM/SIGINT set a flag; the loop checkpoints at the next batch and stops cleanly."""
        return stop_on_signals(lambda signum: setattr(self, "_stop_signal", signum))


@dataclass
class _LoopState:
    epoch: int = 0
    batch: int = 0
    global_step: int = 0
    loss_total: float = 0.0  # running train loss of the current epoch, checkpointed with it
    loss_count: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    stopped_early: bool = False
    privacy: dict[str, Any] | None = None  # the accountant's state of a private run


def _plain(value: Any) -> Any:
    """numpy and torch scalars as Python numbers: checkpoints are read weights-only, which refuses numpy."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", None) == 0 else value


def _weight_penalty(params: list[torch.Tensor], l1: float, l2: float) -> torch.Tensor:
    penalty = torch.zeros((), device=params[0].device)
    for p in params:
        if l1:
            penalty = penalty + l1 * p.abs().sum()
        if l2:
            penalty = penalty + l2 * p.pow(2).sum()
    return penalty
