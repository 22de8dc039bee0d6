"""Width pruning of the transformer residual streams: the ``d_model`` channels that the token
embeddings, the positions, every layer's projections and every LayerNorm share are cut to the
strongest ``1 − amount`` of them, so the token embedding table (often most of a small text
transformer's parameters) shrinks too. ``prune_attention`` calls this after cutting heads and
feed-forward units; each stream keeps one set of channels everywhere in it, because the residual
connections add channel c of every layer to channel c of the next.

Two kinds of stream:

- each transformer text encoder (``model.text.hidden_size``): token embedding and learned position
  columns, every layer's LayerNorms, QKV and first feed-forward columns, output-projection and
  second feed-forward rows, the final LayerNorm, and the columns of whatever reads its pooled
  vector (its projection in the transformer combiner, or its slice of the first hidden block's
  columns under the concat combiner);
- the transformer combiner (``model.combiner_size``): the projections' rows, the feature-identity
  columns, the same per-layer tensors, its final LayerNorm, and the first hidden block's (or the
  head's) columns. Not when the first hidden block is residual over it (``combiner_size`` equal to
  ``hidden_size``): then the hidden units and the combiner's channels are one set, and it stays.

Which channels stay: score(c) = written(c) × read(c), data-free like the other parts' criteria.
``written`` is the mean over the stream's writers (embedding or projection, positions or identity,
each layer's output projection and second feed-forward layer) of the L2 norm of what that writer
puts into channel c, each writer's norms divided by their mean so that no single tensor's scale
decides; ``read`` is the mean |γ_c| of the stream's LayerNorms, each again divided by its mean —
a pre-norm layer sees channel c only through γ_c (the criterion of "Network Slimming", Liu et al.
2017, for LayerNorm). The LayerNorm statistics change when channels go (mean and variance are
taken over fewer of them), so the pruned network predicts close to, not exactly like, the source
before the fine-tune; sinusoidal position tables are recomputed for the new width.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from forgeml.models.combiners import COMBINERS

LAYER_TENSORS: dict[str, int] = {  # a pre-norm TransformerBlock's tensors and the axis of the stream's channels
    "norm1.weight": 0, "norm1.bias": 0, "attention.qkv.weight": 1, "attention.proj.weight": 0, "attention.proj.bias": 0,
    "norm2.weight": 0, "norm2.bias": 0, "mlp.0.weight": 1, "mlp.2.weight": 0, "mlp.2.bias": 0,
}
LAYER_WRITERS = ("attention.proj.weight", "mlp.2.weight")


@dataclass
class Stream:
    """One residual stream: where its channels sit in the state dict."""

    width: int
    config_key: str
    segments: list[tuple[str, int, int]] = field(default_factory=list)  # (tensor, axis, offset): channels at offset.. offset+width
    writers: list[tuple[str, int]] = field(default_factory=list)  # (tensor, axis) that write into the stream: the score
    norms: list[str] = field(default_factory=list)  # LayerNorm weights that read it: the score

    def add_layers(self, prefixes: list[str]) -> None:
        for prefix in prefixes:
            self.segments += [(prefix + name, axis, 0) for name, axis in LAYER_TENSORS.items()]
            self.writers += [(prefix + name, 0) for name in LAYER_WRITERS]
            self.norms += [prefix + "norm1.weight", prefix + "norm2.weight"]

    def add_final_norm(self, prefix: str) -> None:
        self.segments += [(prefix + "norm.weight", 0, 0), (prefix + "norm.bias", 0, 0)]
        self.norms.append(prefix + "norm.weight")


def kept(count: int, keep_share: float) -> int:
    return max(1, round(count * keep_share))


def combiner_tied(cfg: Any) -> bool:
    """True when the first hidden block adds the combiner's output to its own (``models.combiners.Block``:
    residual between equal widths), which ties the combiner's channels to the hidden units."""
    return cfg.num_layers > 0 and cfg.residual and cfg.combiner_size == cfg.hidden_size


def concat_tied(cfg: Any, spec: Any) -> bool:
    """True when the concat combiner's first hidden block is residual over the joined vector (its
    width equals ``hidden_size``), which ties the text channels to the hidden units; with image
    inputs (whose widths the config does not spell out) any residual first block counts as tied."""
    if not (cfg.num_layers > 0 and cfg.residual):
        return False
    return bool(spec.images) or sum(part_widths(cfg, spec)) + len(spec.tokens) * cfg.text.hidden_size == cfg.hidden_size


def part_widths(cfg: Any, spec: Any) -> list[int]:
    """Widths of the combiner's parts before the text ones: the dense part(s), then the category embeddings."""
    dense = [width for _, width in spec.dense_groups if width] if COMBINERS[cfg.combiner].split_dense else ([spec.dense_width] if spec.dense_width else [])
    return dense + [dim for *_, dim in spec.codes]


def streams(config: Any, spec: Any, root: str = "") -> list[Stream]:
    """The prunable residual streams of the network ``config`` builds for inputs ``spec``; tensor
    names under ``root`` ("network." inside a LinearSkip)."""
    cfg = config.model
    reader = root + ("combiner.blocks.0.layers.0.weight" if cfg.num_layers else "head.weight")  # reads the combiner's output
    before = part_widths(cfg, spec)
    found: list[Stream] = []
    if cfg.text.type == "transformer" and (cfg.combiner == "transformer" or not concat_tied(cfg, spec)):
        for index, _ in enumerate(spec.tokens):
            prefix = f"{root}text.{index}."
            stream = Stream(cfg.text.hidden_size, "model.text.hidden_size")
            stream.segments.append((prefix + "embed.weight", 1, 0))
            stream.writers.append((prefix + "embed.weight", 1))
            if cfg.text.positions == "learned":  # a sinusoidal table is a buffer, rebuilt at the new width
                stream.segments.append((prefix + "positions", 1, 0))
                stream.writers.append((prefix + "positions", 1))
            stream.add_layers([f"{prefix}blocks.{layer}." for layer in range(cfg.text.num_layers)])
            stream.add_final_norm(prefix)
            if cfg.combiner == "transformer":
                stream.segments.append((f"{root}combiner.project.{len(before) + index}.weight", 1, 0))
            else:  # concat: its slice of the joined vector
                stream.segments.append((reader, 1, sum(before) + index * cfg.text.hidden_size))
            found.append(stream)
    if cfg.combiner == "transformer" and not combiner_tied(cfg):
        prefix = f"{root}combiner."
        stream = Stream(cfg.combiner_size, "model.combiner_size")
        for part in range(len(before) + len(spec.tokens) + len(spec.images)):
            stream.segments += [(f"{prefix}project.{part}.weight", 0, 0), (f"{prefix}project.{part}.bias", 0, 0)]
            stream.writers.append((f"{prefix}project.{part}.weight", 0))
        stream.segments.append((prefix + "identity", 1, 0))
        stream.writers.append((prefix + "identity", 1))
        stream.add_layers([f"{prefix}layers.{layer}." for layer in range(cfg.combiner_layers)])
        stream.add_final_norm(prefix)
        stream.segments.append((reader, 1, 0))
        found.append(stream)
    return found


def changes(config: Any, spec: Any, keep_share: float) -> dict[str, Any]:
    """The config of the narrower streams (every text encoder shares ``text.hidden_size``)."""
    return {stream.config_key: kept(stream.width, keep_share) for stream in streams(config, spec)}


def _relative(values: torch.Tensor) -> torch.Tensor:
    return values / values.mean().clamp(min=1e-12)


def channels(state: dict[str, torch.Tensor], stream: Stream, keep: int) -> torch.Tensor:
    """Sorted indices of the ``keep`` channels with the largest written × read score."""
    written = torch.stack([_relative(state[name].detach().float().norm(dim=1 - axis)) for name, axis in stream.writers]).mean(dim=0)
    read = torch.stack([_relative(state[name].detach().float().abs()) for name in stream.norms]).mean(dim=0)
    return torch.sort(torch.topk(written * read, keep).indices).values


def cut(state: dict[str, torch.Tensor], config: Any, spec: Any, keep_share: float, root: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of every stream cut to its kept channels, read from ``state`` (the model's
    tensors with the heads and feed-forward units already cut). A tensor that two streams share
    (the first hidden block's columns under the concat combiner) is cut once for all of them."""
    dropped: dict[tuple[str, int], list[torch.Tensor]] = {}
    for stream in streams(config, spec, root):
        keep = channels(state, stream, kept(stream.width, keep_share))
        gone = torch.ones(stream.width, dtype=torch.bool)
        gone[keep] = False
        for name, axis, offset in stream.segments:
            dropped.setdefault((name, axis), []).append(offset + gone.nonzero(as_tuple=True)[0])
    out: dict[str, torch.Tensor] = {}
    for (name, axis), positions in dropped.items():
        tensor = out.get(name, state[name])
        mask = torch.ones(state[name].shape[axis], dtype=torch.bool)
        mask[torch.cat(positions)] = False
        out[name] = tensor.index_select(axis, mask.nonzero(as_tuple=True)[0])
    return {name: tensor.clone() for name, tensor in out.items()}
