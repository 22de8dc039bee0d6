"""The AutoML ensemble: the weighted average of its members' attributions.

The ensemble predicts with the weighted average of its members' probabilities (or values), and
every member's attributions are in the same unit (``base.Context.output_weights``), so the
explanation is the members' attributions averaged with the ensemble weights — each member
explained by its own family's method (bagged folds averaged), features a member does not read
(text, for the tabular members) counting 0 for it. Averaging log-odds is not the log-odds of the
averaged probabilities, so the ``output`` of an ensemble's explanation is the weighted mean of its
members' outputs, which ranks rows like the ensemble but is not its probability. With a stacked
second level (``best`` preset), each member's weight is its share of the stacker's absolute
coefficients: an approximation, and the method says so.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from forgeml.explain.base import Attribution, Context, average


def member_weights(estimator: Any) -> list[float]:
    """The ensemble weight of each kept member; with a stacker, its share of the |coefficients|."""
    if estimator.stacker is None:
        return [float(member["weight"]) for member in estimator.members]
    weight = np.abs(np.asarray(estimator.stacker.weight, dtype=np.float64))
    block = weight.shape[0] // max(len(estimator.members), 1)
    return [float(weight[i * block: (i + 1) * block].sum()) for i in range(len(estimator.members))]


def explain(estimator: Any, ctx: Context, arrays: dict[str, np.ndarray]) -> Attribution:
    from forgeml.explain.methods import explain_estimator
    from forgeml.models.member_inputs import member_inputs

    parts, names = [], []
    for member, weight in zip(estimator.members, member_weights(estimator)):
        if weight <= 0:
            continue
        family = member.get("family") or member["model"]["type"]
        parts.append((weight, explain_estimator(member["estimator"], family, ctx, member_inputs(arrays, member["model"]["type"]))))
        names.append(f"{member['member']} ({weight:.2f}: {parts[-1][1].method})")
    how = "stacker's absolute coefficients (an approximation)" if estimator.stacker is not None else "ensemble weights"
    return average(parts, f"weighted average of the members' attributions by the {how}: " + "; ".join(names))
