"""Optimizer and learning-rate schedule registries, keyed by the names the config uses."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from forgeml.config import TrainConfig


def lr_scale(parameter: nn.Parameter) -> float:
    """A module may slow some of its parameters down by setting ``parameter.lr_scale`` (default 1)."""
    return float(getattr(parameter, "lr_scale", 1.0))


def _param_groups(model: nn.Module, weight_decay: float, learning_rate: float) -> list[dict]:
    """Decay only ≥2-D weights: decaying biases and norm scales only hurts (nanoGPT, BERT).

    Parameters are also grouped by their ``lr_scale``; schedules scale every group's rate alike.
    Without weight decay the ≥2-D split changes nothing and is not made: each group costs one
    more multi-tensor optimizer call per step (≈5 % of a small MLP's step).
    """
    groups: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault((weight_decay > 0 and p.dim() >= 2, lr_scale(p)), []).append(p)
    return [
        {"params": params, "weight_decay": weight_decay if decay else 0.0, "lr": learning_rate * scale, "lr_scale": scale}
        for (decay, scale), params in sorted(groups.items(), key=lambda item: (-item[0][1], not item[0][0]))
    ]


OPTIMIZERS: dict[str, Callable[[nn.Module, TrainConfig], torch.optim.Optimizer]] = {
    # foreach: one multi-tensor kernel per step instead of a Python loop over parameters; on CPU
    # torch defaults to the loop, which costs as much as the backward pass for a model with many
    # small embedding tables.
    "adamw": lambda m, c: torch.optim.AdamW(_param_groups(m, c.weight_decay, c.learning_rate), lr=c.learning_rate, foreach=True),
    "adam": lambda m, c: torch.optim.Adam(_param_groups(m, c.weight_decay, c.learning_rate), lr=c.learning_rate, foreach=True),
    "sgd": lambda m, c: torch.optim.SGD(
        _param_groups(m, c.weight_decay, c.learning_rate), lr=c.learning_rate, momentum=c.momentum, foreach=True
    ),
}

Scheduler = torch.optim.lr_scheduler.LRScheduler


def _cosine(steps: int, floor: float) -> Callable[[int], float]:
    """Half a cosine from 1 down to ``floor`` over ``steps``, then flat; a factor on each group's rate."""
    import math

    return lambda step: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
S = torch.optim.lr_scheduler

# Every schedule is stepped once per batch, so epoch-based ones are rescaled to steps.
SCHEDULES: dict[str, Callable[[torch.optim.Optimizer, TrainConfig, int, int], Scheduler]] = {
    "none": lambda o, c, per_epoch, total: S.LambdaLR(o, lambda step: 1.0),
    "step": lambda o, c, per_epoch, total: S.StepLR(o, step_size=c.step_size * per_epoch, gamma=c.gamma),
    "exponential": lambda o, c, per_epoch, total: S.ExponentialLR(o, gamma=c.gamma ** (1.0 / per_epoch)),
    # A factor, not CosineAnnealingLR: its eta_min is one number shared by groups with different rates.
    "cosine": lambda o, c, per_epoch, total: S.LambdaLR(o, _cosine(max(1, total - c.warmup_steps), floor=0.01)),
    "onecycle": lambda o, c, per_epoch, total: S.OneCycleLR(
        o, max_lr=[c.learning_rate * g.get("lr_scale", 1.0) for g in o.param_groups], total_steps=max(2, total)
    ),
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
