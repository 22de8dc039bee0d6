"""Pruning of the pre-norm transformer layers (``models.attention.TransformerBlock``: the
transformer text encoder and the transformer combiner): whole attention heads and feed-forward
units are removed, so the QKV and output projections, the feed-forward layers, the attention
products and the saved tensors all shrink; then the residual width of each stream
(``prune_width``: the token embedding table, positions, LayerNorms and every projection's
channels), so the whole model narrows, not only its layers' insides.

Which heads go: those whose slice of the output projection has the smallest L2 norm — what a
head writes into the residual stream; the magnitude counterpart of the head importance of Michel
et al. 2019 ("Are Sixteen Heads Really Better than One?"), needing no data. Which feed-forward
units go: the smallest L2 norm of their outgoing column (the second Linear), the criterion
``prune.kept_units`` applies to the hidden blocks. Each layer keeps its own best heads and units;
every layer of a stack keeps the same *number*, because one config (``heads``, ``head_size``,
``ffn_size``) describes all of them. A kept head keeps its size (``head_size`` is written to the
config), so its attention scores are computed exactly as before.

Heads and units are chosen first, on the source's weights; the width cut then reads what is
left. A kept head keeps its ``head_size`` whatever the width becomes: 4 heads of 16 in a width of
64, pruned by half, become 2 heads of 16 in a width of 32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from forgeml.compress import prune_width


@dataclass
class Stack:
    """One stack of transformer layers and the config keys that describe it."""

    prefixes: list[str]  # state-dict prefix of each layer, e.g. "text.0.blocks.0."
    width: int
    heads: int
    head_size: int
    ffn_size: int
    keys: tuple[str, str, str]  # config keys of heads, head size, feed-forward size


def stacks(config: Any, spec: Any) -> list[Stack]:
    """The transformer stacks of the network ``config`` builds for inputs ``spec``."""
    cfg = config.model
    found = []
    if cfg.text.type == "transformer":
        text = cfg.text
        for index, _ in enumerate(spec.tokens):
            found.append(Stack([f"text.{index}.blocks.{layer}." for layer in range(text.num_layers)], text.hidden_size, text.heads,
                               text.head_size or text.hidden_size // text.heads, text.ffn_size or 4 * text.hidden_size,
                               ("model.text.heads", "model.text.head_size", "model.text.ffn_size")))
    if cfg.combiner == "transformer":
        found.append(Stack([f"combiner.layers.{layer}." for layer in range(cfg.combiner_layers)], cfg.combiner_size, cfg.combiner_heads,
                           cfg.combiner_head_size or cfg.combiner_size // cfg.combiner_heads, cfg.combiner_ffn_size or 4 * cfg.combiner_size,
                           ("model.combiner_heads", "model.combiner_head_size", "model.combiner_ffn_size")))
    return found


def kept(count: int, keep_share: float) -> int:
    return max(1, round(count * keep_share))


def applies(config: Any, spec: Any) -> bool:
    return bool(stacks(config, spec))


def changes(config: Any, spec: Any, keep_share: float) -> dict[str, Any]:
    """The config of the pruned layers: fewer heads of the same size, fewer feed-forward units, a
    narrower residual stream."""
    out: dict[str, Any] = prune_width.changes(config, spec, keep_share)
    for stack in stacks(config, spec):
        heads, head_size, ffn = stack.keys
        out.update({heads: kept(stack.heads, keep_share), head_size: stack.head_size, ffn: kept(stack.ffn_size, keep_share)})
    return out


def head_rows(heads: torch.Tensor, head_size: int) -> torch.Tensor:
    """Rows (of q, k or v) or columns (of the output projection) of the given heads, in order."""
    return (heads[:, None] * head_size + torch.arange(head_size)[None, :]).reshape(-1)


def cut_layer(state: dict[str, torch.Tensor], prefix: str, stack: Stack, keep_heads: int, keep_units: int) -> dict[str, torch.Tensor]:
    """One layer's attention and feed-forward tensors, cut to its strongest heads and units."""
    proj = state[prefix + "attention.proj.weight"]  # (width, heads × head_size)
    scores = proj.detach().float().reshape(stack.width, stack.heads, stack.head_size).norm(dim=(0, 2))  # (heads,)
    heads = torch.sort(torch.topk(scores, keep_heads).indices).values
    rows = head_rows(heads, stack.head_size)
    inner = stack.heads * stack.head_size
    qkv_rows = torch.cat([rows, inner + rows, 2 * inner + rows])  # q | k | v
    second = state[prefix + "mlp.2.weight"]  # (width, ffn)
    units = torch.sort(torch.topk(second.detach().float().norm(dim=0), keep_units).indices).values
    return {
        prefix + "attention.qkv.weight": state[prefix + "attention.qkv.weight"].index_select(0, qkv_rows),
        prefix + "attention.qkv.bias": state[prefix + "attention.qkv.bias"].index_select(0, qkv_rows),
        prefix + "attention.proj.weight": proj.index_select(1, rows),
        prefix + "mlp.0.weight": state[prefix + "mlp.0.weight"].index_select(0, units),
        prefix + "mlp.0.bias": state[prefix + "mlp.0.bias"].index_select(0, units),
        prefix + "mlp.2.weight": second.index_select(1, units),
    }


def cut(model: Any, config: Any, spec: Any, keep_share: float) -> dict[str, torch.Tensor]:
    """Every transformer layer's cut tensors, named as in ``model``'s state dict (a FusionNet or
    a LinearSkip around one)."""
    root = "network." if hasattr(model, "network") else ""
    state = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for stack in stacks(config, spec):
        for prefix in stack.prefixes:
            out.update(cut_layer(state, root + prefix, stack, kept(stack.heads, keep_share), kept(stack.ffn_size, keep_share)))
    out.update(prune_width.cut({**state, **out}, config, spec, keep_share, root))
    return {name: tensor.clone() for name, tensor in out.items()}
