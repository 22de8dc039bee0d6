"""Pruning of the bidirectional LSTM / GRU text encoders (``models.encoders.text.RNNEncoder``):
hidden units removed from every layer and direction, so the gate matrices, the recurrence (the
sequential part of an RNN's time) and the encoder's output all shrink.

Which units go: those with the smallest L2 norm of their outgoing weights — their column of the
recurrent matrix (all gates: what the unit feeds back) plus their column in whatever reads the
layer (the next layer's input weights, or for the last layer the combiner's first Linear / the
head / the transformer combiner's projection) — the criterion ``prune.kept_units`` uses for the
hidden blocks. Each layer and direction keeps its own units, all the same number (one
``text.hidden_size`` describes them). A unit's rows are removed from each gate (i, f, g, o for
an LSTM; r, z, n for a GRU) together.
"""
from __future__ import annotations

from typing import Any

import torch

GATES = {"lstm": 4, "gru": 3}
DIRECTIONS = ("", "_reverse")


def applies(config: Any, spec: Any) -> bool:
    return bool(spec.tokens) and config.model.text.type in GATES


def changes(config: Any, spec: Any, keep_share: float) -> dict[str, Any]:
    return {"model.text.hidden_size": max(1, round(config.model.text.hidden_size * keep_share))}


def consumer(network: Any, part: int) -> tuple[str, int]:
    """The state-dict name of the weight that reads input part ``part`` (its columns) and the
    column where that part starts."""
    from forgeml.models.combiners import TransformerCombiner

    if isinstance(network.combiner, TransformerCombiner):
        return f"combiner.project.{part}.weight", 0
    widths = network.dense_widths + [e.embedding_dim for e in network.embeddings] + [m.width for m in network.text] + [m.width for m in network.images]
    name = "combiner.blocks.0.layers.0.weight" if len(network.combiner.blocks) else "head.weight"
    return name, sum(widths[:part])


def gate_rows(units: torch.Tensor, hidden: int, gates: int) -> torch.Tensor:
    return torch.cat([gate * hidden + units for gate in range(gates)])


def both_directions(units: list[torch.Tensor], hidden: int) -> torch.Tensor:
    """Columns of a (…, 2H) input laid out [forward H | backward H]."""
    return torch.cat([units[0], hidden + units[1]])


def cut(model: Any, config: Any, spec: Any, keep_share: float) -> dict[str, torch.Tensor]:
    """Every RNN encoder's cut tensors and the cut columns of what reads them."""
    network = getattr(model, "network", model)
    root = "network." if network is not model else ""
    state = model.state_dict()
    cfg = config.model.text
    hidden, layers, gates = cfg.hidden_size, cfg.num_layers, GATES[cfg.type]
    keep = max(1, round(hidden * keep_share))
    out: dict[str, torch.Tensor] = {}
    columns: dict[str, torch.Tensor] = {}  # consumer → its kept columns (several encoders may share one)
    first_part = len(network.dense_widths) + len(network.embeddings)
    for index in range(len(network.text)):
        prefix = f"{root}text.{index}.rnn."
        reader, offset = consumer(network, first_part + index)
        reader = root + reader
        kept: list[list[torch.Tensor]] = []
        for layer in range(layers):
            if layer + 1 < layers:
                readers = [state[f"{prefix}weight_ih_l{layer + 1}{d}"] for d in DIRECTIONS]  # (G·H, 2H)
                outgoing = sum(w.detach().float().norm(dim=0) ** 2 for w in readers)
            else:
                outgoing = state[reader].detach().float()[:, offset : offset + 2 * hidden].norm(dim=0) ** 2
            chosen = []
            for side, suffix in enumerate(DIRECTIONS):
                recurrent = state[f"{prefix}weight_hh_l{layer}{suffix}"].detach().float().norm(dim=0) ** 2  # (H,)
                score = recurrent + outgoing[side * hidden : (side + 1) * hidden]
                chosen.append(torch.sort(torch.topk(score, keep).indices).values)
            kept.append(chosen)
        for layer in range(layers):
            for side, suffix in enumerate(DIRECTIONS):
                rows = gate_rows(kept[layer][side], hidden, gates)
                weight_ih = state[f"{prefix}weight_ih_l{layer}{suffix}"].index_select(0, rows)
                if layer:
                    weight_ih = weight_ih.index_select(1, both_directions(kept[layer - 1], hidden))
                out[f"{prefix}weight_ih_l{layer}{suffix}"] = weight_ih
                out[f"{prefix}weight_hh_l{layer}{suffix}"] = state[f"{prefix}weight_hh_l{layer}{suffix}"].index_select(0, rows).index_select(1, kept[layer][side])
                for bias in ("bias_ih", "bias_hh"):
                    out[f"{prefix}{bias}_l{layer}{suffix}"] = state[f"{prefix}{bias}_l{layer}{suffix}"].index_select(0, rows)
        current = columns.get(reader, torch.arange(state[reader].shape[1]))
        last = offset + both_directions(kept[-1], hidden)
        columns[reader] = torch.cat([current[current < offset], last, current[current >= offset + 2 * hidden]])
    for reader, kept_columns in columns.items():
        out[reader] = state[reader].index_select(1, kept_columns)
    return {name: tensor.clone() for name, tensor in out.items()}
