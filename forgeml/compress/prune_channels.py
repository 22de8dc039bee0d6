"""Channel pruning of the ``simple_cnn`` image encoder (conv 3×3 → batch norm → ReLU → max-pool
blocks, then a dense layer): each conv block keeps the ``1 − amount`` share of its output
channels whose batch-norm scale |γ| is largest — the criterion of "Network Slimming" (Liu et al.
2017): after batch norm, γ is what a channel passes on. The kept filters, their norm statistics,
the next block's input slices and the dense layer's columns (channel-major after Flatten) are
copied into an encoder built with the smaller ``model.image.channels``. ``prune`` calls this for
every image input before cutting the hidden units.

ResNet encoders (the cnn family's default) are not pruned: their widths come from one
``image.width`` doubled per stage and tied together by the shortcuts, so no config describes a
thinner copy (docs/compress.md).
"""
from __future__ import annotations

from typing import Any

import torch

CONV_STRIDE = 4  # each simple_cnn block is 4 modules: conv, batch norm, ReLU, max-pool


def prunable_images(config: Any, spec: Any) -> bool:
    """True when the network has image inputs read by simple_cnn (whose channels can be cut)."""
    return bool(spec.images) and config.model.image.type == "simple_cnn"


def kept_channels(body: Any, keep_share: float) -> list[torch.Tensor]:
    """Per conv block, the sorted indices of the channels with the largest |γ|."""
    kept = []
    for start in range(0, len(body.features), CONV_STRIDE):
        norm = body.features[start + 1]
        if not isinstance(norm, torch.nn.BatchNorm2d):
            break  # the trailing adaptive pooling
        count = max(1, round(norm.num_features * keep_share))
        kept.append(torch.sort(torch.topk(norm.weight.detach().abs(), count).indices).values)
    return kept


def sliced_image_state(old_state: dict[str, torch.Tensor], prefix: str, body: Any, kept: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's tensors (names under ``prefix``) cut to the kept channels."""
    state: dict[str, torch.Tensor] = {}
    previous = None
    for block, keep in enumerate(kept):
        conv, norm = f"{prefix}features.{block * CONV_STRIDE}.", f"{prefix}features.{block * CONV_STRIDE + 1}."
        weight = old_state[conv + "weight"].index_select(0, keep)  # (out, in, 3, 3)
        state[conv + "weight"] = weight.index_select(1, previous) if previous is not None else weight
        for name in ("weight", "bias", "running_mean", "running_var"):
            state[norm + name] = old_state[norm + name].index_select(0, keep)
        state[norm + "num_batches_tracked"] = old_state[norm + "num_batches_tracked"]
        previous = keep
    dense = old_state[f"{prefix}head.1.weight"]  # (dense, channels × side × side), channel-major
    channels = body.features[(len(kept) - 1) * CONV_STRIDE].out_channels
    area = dense.shape[1] // channels
    columns = (previous[:, None] * area + torch.arange(area)[None, :]).reshape(-1)
    state[f"{prefix}head.1.weight"] = dense.index_select(1, columns)
    return {name: tensor.clone() for name, tensor in state.items()}


def prune_image_encoders(model: Any, keep_share: float) -> tuple[dict[str, torch.Tensor], list[int]]:
    """The cut tensors of every simple_cnn encoder in ``model`` (a FusionNet or LinearSkip) and
    the new ``image.channels`` list (the same for every image input: one config)."""
    network = getattr(model, "network", model)
    prefix_root = "network." if network is not model else ""
    old_state = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    channels: list[int] = []
    for index, encoder in enumerate(network.images):
        kept = kept_channels(encoder.body, keep_share)
        state.update(sliced_image_state(old_state, f"{prefix_root}images.{index}.body.", encoder.body, kept))
        channels = [len(keep) for keep in kept]
    return state, channels


def applies(config: Any, spec: Any) -> bool:
    return prunable_images(config, spec)


def changes(config: Any, spec: Any, keep_share: float) -> dict[str, Any]:
    """The same rounding as ``kept_channels``."""
    return {"model.image.channels": [max(1, round(channels * keep_share)) for channels in config.model.image.channels]}


def cut(model: Any, config: Any, spec: Any, keep_share: float) -> dict[str, torch.Tensor]:
    return prune_image_encoders(model, keep_share)[0]
