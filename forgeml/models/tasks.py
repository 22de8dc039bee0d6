"""Tasks: which loss, how many outputs, and how raw outputs become predictions.

A task is the single place that knows binary vs multiclass vs regression, so the trainer,
the predictor and the report never branch on it themselves.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from typing import TYPE_CHECKING, Any

import numpy as np

from forgeml.errors import ConfigError

if TYPE_CHECKING:  # torch is imported where a loss or a tensor is needed: preparing data never pays for it
    import torch

DEFAULT_LOSS = {"binary": "bce", "multiclass": "cross_entropy", "regression": "mse"}
ALLOWED_LOSSES = {
    "binary": ("bce", "cross_entropy"),
    "multiclass": ("cross_entropy",),
    "regression": ("mse", "huber", "poisson"),
}

LossFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def _bce() -> LossFn:
    from torch.nn import functional as F

    return lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], y.float())


def _module(name: str, **kwargs: Any) -> Callable[[], LossFn]:
    def build() -> LossFn:
        from torch import nn

        return getattr(nn, name)(**kwargs)

    return build


LOSSES: dict[str, Callable[[], LossFn]] = {
    "bce": _bce,
    "cross_entropy": _module("CrossEntropyLoss"),
    "mse": _module("MSELoss"),
    "huber": _module("HuberLoss"),
    "poisson": _module("PoissonNLLLoss", log_input=True),
}


@dataclass(frozen=True)
class Task:
    name: str  # binary | multiclass | regression
    loss: str
    n_targets: int  # classes for classification, target columns for regression

    @classmethod
    def resolve(cls, name: str, loss: str, n_targets: int) -> "Task":
        loss = DEFAULT_LOSS[name] if loss == "auto" else loss
        if loss not in ALLOWED_LOSSES[name]:
            raise ConfigError(
                f"loss {loss!r} does not fit a {name} task",
                where="train.loss",
                hint=f"use one of {list(ALLOWED_LOSSES[name])} or 'auto'",
            )
        return cls(name, loss, n_targets)

    @property
    def is_classification(self) -> bool:
        return self.name != "regression"

    @property
    def output_size(self) -> int:
        return 1 if self.loss == "bce" else self.n_targets

    def loss_fn(self) -> LossFn:
        return LOSSES[self.loss]()

    def scores(self, outputs: "torch.Tensor") -> np.ndarray:
        """Raw outputs → class probabilities [N, C] or regression values in training units [N, T]."""
        return self.score_tensor(outputs.detach().float()).numpy()

    def score_tensor(self, outputs: "torch.Tensor") -> "torch.Tensor":
        """``scores`` as a traceable tensor op, so exported graphs (ONNX, TorchScript) end in it too."""
        import torch

        if self.loss == "bce":
            positive = torch.sigmoid(outputs[:, 0])
            return torch.stack([1 - positive, positive], dim=1)
        if self.is_classification:
            return torch.softmax(outputs, dim=1)
        if self.loss == "poisson":
            return torch.exp(outputs)
        return outputs

    def targets_tensor(self, encoded: np.ndarray) -> "torch.Tensor":
        import torch

        return torch.as_tensor(encoded, dtype=torch.long if self.is_classification else torch.float32)
