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


def _bce(weights: "torch.Tensor | None" = None) -> LossFn:
    from torch.nn import functional as F

    if weights is None:
        return lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], y.float())

    def weighted(out: "torch.Tensor", y: "torch.Tensor") -> "torch.Tensor":
        row_weights = weights.to(out.device)[y.long()]  # a weighted mean, as CrossEntropyLoss(weight=) takes
        return (F.binary_cross_entropy_with_logits(out[:, 0], y.float(), reduction="none") * row_weights).sum() / row_weights.sum()

    return weighted


def _cross_entropy(weights: "torch.Tensor | None" = None) -> LossFn:
    from torch import nn

    return nn.CrossEntropyLoss(weight=weights)


def _module(name: str, **kwargs: Any) -> Callable[..., LossFn]:
    def build(weights: Any = None) -> LossFn:  # regression losses have no classes to weight
        from torch import nn

        return getattr(nn, name)(**kwargs)

    return build


def balanced_class_weights(encoded: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's ``class_weight='balanced'``: n_rows / (n_classes × rows of the class).

    A class absent from ``encoded`` gets weight 1 (it has no rows to weight, and a zero would
    make its logit untrainable if a later split brings it)."""
    counts = np.bincount(np.asarray(encoded, dtype=np.int64).ravel(), minlength=n_classes).astype(np.float64)
    weights = np.ones(n_classes)
    present = counts > 0
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


LOSSES: dict[str, Callable[..., LossFn]] = {
    "bce": _bce,
    "cross_entropy": _cross_entropy,
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

    def loss_fn(self, class_weights: np.ndarray | None = None) -> LossFn:
        """The loss; ``class_weights`` (one per class, classification only) weight each row by its class."""
        if class_weights is None or not self.is_classification:
            return LOSSES[self.loss]()
        import torch

        return LOSSES[self.loss](torch.as_tensor(class_weights, dtype=torch.float32))

    def soft_loss_fn(self, temperature: float = 1.0) -> LossFn:
        """The loss against a teacher's soft targets (knowledge distillation, Hinton et al. 2015,
        "Distilling the knowledge in a neural network"): targets are the teacher's class
        probabilities [N, C] (regression: its values, and the task's own loss). Teacher and
        student are both softened by ``temperature`` (the teacher's probabilities as logits
        log p / T), and the loss is scaled by T² so that its gradients keep their size as T changes."""
        if not self.is_classification:
            return LOSSES[self.loss]()
        from torch.nn import functional as F

        def soft(out: "torch.Tensor", probabilities: "torch.Tensor") -> "torch.Tensor":
            target = soften(probabilities, temperature)
            if self.loss == "bce":  # one logit: the positive class's probability is the target
                return F.binary_cross_entropy_with_logits(out[:, 0] / temperature, target[:, 1]) * temperature**2
            return F.cross_entropy(out / temperature, target) * temperature**2

        return soft

    def class_weights(self, how: str, encoded: np.ndarray) -> np.ndarray | None:
        """``train.class_weight`` for this task and these encoded train targets (None: unweighted)."""
        if how == "none" or not self.is_classification:
            return None
        return balanced_class_weights(encoded, self.n_targets)

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

    def targets_tensor(self, encoded: np.ndarray, *, soft: bool = False) -> "torch.Tensor":
        """Class codes as longs; regression values, or (``soft``) a teacher's probabilities, as floats."""
        import torch

        return torch.as_tensor(encoded, dtype=torch.long if self.is_classification and not soft else torch.float32)


def soften(probabilities: "torch.Tensor", temperature: float) -> "torch.Tensor":
    """Probabilities at ``temperature``: softmax(log p / T); T = 1 leaves them as they are, T > 1
    flattens them (the small probabilities a teacher gives wrong classes then carry more weight)."""
    import torch

    if temperature == 1.0:
        return probabilities
    return torch.softmax(torch.log(probabilities.clamp_min(1e-12)) / temperature, dim=1)
