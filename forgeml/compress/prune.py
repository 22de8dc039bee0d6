"""Structured pruning (placeholder until the next commit)."""
from __future__ import annotations

from typing import Any

from forgeml.compress.errors import CompressError
from forgeml.compress.networks import require_network


def check(source: Any, options: dict[str, Any]) -> None:
    """Refuse an amount outside (0, 1), unstructured pruning, and non-network bundles, before data is read."""
    amount = options.get("amount")
    if not isinstance(amount, (int, float)) or not 0 < amount < 1:
        raise CompressError(f"--prune {amount} is not a share between 0 and 1", where="--prune",
                            hint="e.g. --prune 0.5 removes half of the hidden units (0 removes nothing, 1 everything)")
    if not options.get("structured", True):
        raise CompressError("unstructured pruning zeroes single weights, and a bundle stores them densely, so nothing gets smaller or faster",
                            where="--unstructured", hint="use --structured (the default): it removes whole units and channels")
    require_network(source, "pruning", "--prune")


def compress(source: Any, data: Any, options: dict[str, Any]) -> Any:
    check(source, options)
    raise CompressError("pruning is not written yet", where="--prune", hint="update forgeml")
