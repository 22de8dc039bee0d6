"""Optimizer and learning-rate schedule registries, keyed by the names the config uses."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from forgeml.config import TrainConfig


def _param_groups(model: nn.Module, weight_decay: float, learning_rate: float) -> list[dict]:
    """Decay only ≥2-D weights: decaying biases and norm scales only hurts (nanoGPT, BERT).

    A model may name parameter prefixes that learn at a fraction of the rate (``lr_scales()``:
    fine-tuned pretrained encoders); frozen parameters (``requires_grad=False``) are left out.
    """
    scales = model.lr_scales() if hasattr(model, "lr_scales") else {}
    groups: dict[tuple[float, bool], list[torch.Tensor]] = {(1.0, True): [], (1.0, False): []}
    for name, p in model.named_parameters():
        if p.requires_grad:
            scale = next((s for prefix, s in scales.items() if name.startswith(prefix)), 1.0)
            groups.setdefault((scale, p.dim() >= 2), []).append(p)
    return [
        {"params": params, "weight_decay": weight_decay if decay else 0.0, "lr": learning_rate * scale}
        for (scale, decay), params in groups.items()
        if params or scale == 1.0
    ]


OPTIMIZERS: dict[str, Callable[[nn.Module, TrainConfig], torch.optim.Optimizer]] = {
    # foreach: one multi-tensor kernel per step instead of a Python loop over parameters; on CPU
    # torch defaults to the loop, which costs as much as the backward pass for a model with many
    # small embedding tables.
    "adamw": lambda m, c: torch.optim.AdamW(_param_groups(m, c.weight_decay, c.learning_rate), lr=c.learning_rate, foreach=True),
    "adam": lambda m, c: torch.optim.Adam(_param_groups(m, c.weight_decay, c.learning_rate), lr=c.learning_rate, foreach=True),
    "sgd": lambda m, c: torch.optim.SGD(_param_groups(m, c.weight_decay, c.learning_rate), lr=c.learning_rate, momentum=c.momentum, foreach=True),
}

Scheduler = torch.optim.lr_scheduler.LRScheduler
S = torch.optim.lr_scheduler

# Every schedule is stepped once per batch, so epoch-based ones are rescaled to steps.
SCHEDULES: dict[str, Callable[[torch.optim.Optimizer, TrainConfig, int, int], Scheduler]] = {
    "none": lambda o, c, per_epoch, total: S.LambdaLR(o, lambda step: 1.0),
    "step": lambda o, c, per_epoch, total: S.StepLR(o, step_size=c.step_size * per_epoch, gamma=c.gamma),
    "exponential": lambda o, c, per_epoch, total: S.ExponentialLR(o, gamma=c.gamma ** (1.0 / per_epoch)),
    "cosine": lambda o, c, per_epoch, total: S.CosineAnnealingLR(o, T_max=max(1, total - c.warmup_steps), eta_min=c.learning_rate * 0.01),
    "onecycle": lambda o, c, per_epoch, total: S.OneCycleLR(o, max_lr=[g["lr"] for g in o.param_groups], total_steps=max(2, total)),
}


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    return OPTIMIZERS[config.optimizer](model, config)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int) -> Scheduler:
    total = steps_per_epoch * config.epochs
    main = SCHEDULES[config.schedule](optimizer, config, max(1, steps_per_epoch), total)
    if config.warmup_steps <= 0 or config.schedule == "onecycle":  # one-cycle has its own warm-up
        return main
    warmup = S.LinearLR(optimizer, start_factor=1e-3, end_factor=1.0, total_iters=config.warmup_steps)
    return S.SequentialLR(optimizer, [warmup, main], milestones=[config.warmup_steps])
