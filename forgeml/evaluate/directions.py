"""Which way is better for each metric, in a module light enough for ``forgeml runs compare``
(no numpy): the metrics module, early stopping and the run views all read this one table."""
from __future__ import annotations

from typing import Literal

LOWER_IS_BETTER = frozenset({"loss", "log_loss", "mae", "rmse", "mape"})
HIGHER_IS_BETTER = frozenset({
    "accuracy", "balanced_accuracy", "precision", "recall", "f1", "precision_macro", "recall_macro",
    "f1_macro", "f1_weighted", "roc_auc", "pr_auc", "r2",
})
# History rows prefix metric names with the split they were measured on.
SPLIT_PREFIXES = ("train_", "val_", "test_")


def base_name(key: str) -> str:
    """``per_class.yes.f1`` → ``f1``; ``val_loss`` → ``loss``: the metric a (flattened) key names."""
    name = key.rsplit(".", 1)[-1]
    for prefix in SPLIT_PREFIXES:
        if name.startswith(prefix) and name[len(prefix):] in LOWER_IS_BETTER | HIGHER_IS_BETTER:
            return name[len(prefix):]
    return name


def better(key: str) -> Literal["min", "max"] | None:
    """"min" when smaller is better, "max" when larger is, None for counts and the unknown."""
    name = base_name(key)
    if name in LOWER_IS_BETTER:
        return "min"
    if name in HIGHER_IS_BETTER:
        return "max"
    return None
