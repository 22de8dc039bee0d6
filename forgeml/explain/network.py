"""Torch networks (mlp, cnn, rnn, transformer, pretrained): integrated gradients through Captum.

Integrated gradients (Sundararajan et al., 2017) integrates the gradient along the straight line
from a baseline input to the row; the attributions then sum to f(row) − f(baseline)
(completeness), which ``tests/explain`` checks within 5 %. Discrete inputs have no straight line,
so the path runs through what the network makes of them, each held at the point where it enters:

- numbers, dates and flags: the ``dense`` matrix itself, from the baseline row (training means);
- categories: each embedding's output, from the ``<other>`` category's vector (and the linear
  path's per-category weights, when the network has one);
- text: the token embeddings, from the padding token's embedding at every position of the row
  (the row's own mask and length are kept). Summed over the embedding width, one value per token
  gives the highlights; a bag-of-tokens encoder is read as the equal embedding + masked mean;
- images: the normalised pixels, from the training mean colour; summed over channels, a saliency
  map per image.

Captum's ``IntegratedGradients`` runs on a function of those tensors that replays the network on
the row with each tensor swapped in by a forward hook (what ``LayerIntegratedGradients`` does,
with baselines shaped like the row's own tensors). Rows with text or images are explained one at
a time: sequence encoders cut and bucket batches by length, and one row keeps that out of the way.
"""
from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import numpy as np

from forgeml.explain.base import Attribution, Context, add_columns, baseline_codes, baseline_dense, concatenate, dense_owners

METHOD = "integrated gradients (Captum) from a neutral baseline row"
TABULAR_BATCH = 64  # rows per Captum call without text or images (× n_steps in one forward)
GAP_TARGET = 0.02  # rows whose attributions miss f(x) − f(baseline) by more than this share (of 5 % promised) are integrated again,
REFINE = 4  # with this many times the steps (at most twice),
REFINE_SECONDS = 2.0  # when that pass is expected to take at most this long per row


class Layer(NamedTuple):
    module: Any  # its output is attributed
    feature: int  # input feature index
    baseline: Callable[[Any], Any]  # captured output → baseline tensor of the same shape
    text: str | None = None  # text feature name (token highlights)
    image: str | None = None  # image feature name (saliency map)


def _embedding_baseline(module: Any, index: int) -> Callable[[Any], Any]:
    return lambda captured: module.weight[index].detach().expand_as(captured)


def _layers(model: Any, ctx: Context, spec: Any, restore: list[Callable[[], None]]) -> list[Layer]:
    """The tensors integrated gradients runs through, one or more per input feature."""
    import torch

    net = getattr(model, "network", model)  # LinearSkip wraps the FusionNet
    layers = []
    neutral = baseline_codes(ctx, spec)
    for j, embedding in enumerate(net.embeddings):
        layers.append(Layer(embedding, ctx.index(spec.codes[j][0]), _embedding_baseline(embedding, int(neutral[j]))))
    for j, table in enumerate(getattr(model, "code_weights", [])):  # the linear path reads the codes too
        layers.append(Layer(table, ctx.index(spec.codes[j][0]), _embedding_baseline(table, int(neutral[j]))))
    for j, (token, encoder) in enumerate(zip(spec.tokens, net.text)):
        if hasattr(encoder, "bag"):
            from forgeml.train.private_layers import MaskedMeanBag  # the same vectors, one embedding per token

            if isinstance(encoder.bag, MaskedMeanBag):  # a private model's bag is one already (train/private_layers.py)
                embed = encoder.bag.embed
            else:
                sequence = MaskedMeanBag(encoder.bag)
                net.text[j] = sequence
                restore.append(lambda j=j, encoder=encoder: net.text.__setitem__(j, encoder))
                embed = sequence.embed
        elif hasattr(encoder, "embed"):
            embed = encoder.embed
        else:
            embed = encoder.model.get_input_embeddings()  # pretrained
        layers.append(Layer(embed, ctx.index(token.feature), _embedding_baseline(embed, token.pad_id), text=token.feature))
    for image, encoder in zip(spec.images, net.images):
        layers.append(Layer(encoder.preprocess, ctx.index(image.feature), torch.zeros_like, image=image.feature))
    return layers


def explain(estimator: Any, ctx: Context, arrays: dict[str, np.ndarray]) -> Attribution:
    from forgeml.models.torch_estimator import to_tensors

    model, spec = estimator.model, estimator.spec
    model.eval()
    rows = len(ctx.classes)
    step = 1 if (spec.tokens or spec.images) else TABULAR_BATCH
    restore: list[Callable[[], None]] = []
    try:
        layers = _layers(model, ctx, spec, restore)
        tensors = to_tensors(arrays)
        parts = [_explain_rows(model, ctx, spec, layers, {k: v[start: start + step] for k, v in tensors.items()},
                               arrays, np.arange(start, min(rows, start + step))) for start in range(0, rows, step)]
    finally:
        for undo in restore:
            undo()
    return concatenate(parts)


def _explain_rows(model: Any, ctx: Context, spec: Any, layers: list[Layer], inputs: dict[str, Any], arrays: dict[str, np.ndarray],
                  positions: np.ndarray) -> Attribution:
    import torch

    from forgeml.extras import import_optional

    IntegratedGradients = import_optional("captum.attr", "explain", needed_by="explaining a network").IntegratedGradients
    batch = len(positions)
    w_out, offset = ctx.output_weights(model.head.out_features if hasattr(model, "head") else model.linear.out_features)
    weights = torch.as_tensor(w_out[positions], dtype=torch.float32)
    captured = _capture(model, layers, inputs)
    with_dense = spec.dense_width > 0
    dense = inputs["dense"].float()
    dense_base = torch.as_tensor(baseline_dense(ctx, spec)).expand_as(dense)

    def forward(*values: Any) -> Any:
        """The explained output of the rows, each integrated tensor swapped in (batch: rows × steps)."""
        tensors = values[1:] if with_dense else values
        tiles = values[0].shape[0] // batch
        tiled = {key: value.repeat(tiles, *([1] * (value.dim() - 1))) for key, value in inputs.items()}
        tiled["dense"] = values[0] if with_dense else dense.repeat(tiles, 1)
        handles = [layer.module.register_forward_hook(lambda module, args, output, value=value: value) for layer, value in zip(layers, tensors)]
        try:
            raw = model(tiled)  # (B · steps, outputs)
        finally:
            for handle in handles:
                handle.remove()
        return (raw * weights.repeat(tiles, 1)).sum(dim=1)

    start = ((dense,) if with_dense else ()) + tuple(captured)
    base = ((dense_base,) if with_dense else ()) + tuple(layer.baseline(value) for layer, value in zip(layers, captured))
    with torch.no_grad():
        output, base_output = forward(*start).numpy().astype(np.float64), forward(*base).numpy().astype(np.float64)
    for steps in (ctx.n_steps, REFINE * ctx.n_steps, REFINE ** 2 * ctx.n_steps):  # a kinked path (ReLU) needs more steps than a smooth one
        started = time.perf_counter()
        with torch.enable_grad():
            attributions = IntegratedGradients(forward).attribute(start, baselines=base, n_steps=steps)
        total = sum(a.detach().reshape(batch, -1).sum(dim=1).numpy().astype(np.float64) for a in attributions)
        change = output - base_output
        if np.all(np.abs(total - change) <= GAP_TARGET * np.maximum(np.abs(change), ctx.negligible())):
            break
        if (time.perf_counter() - started) * REFINE > REFINE_SECONDS * batch:
            break  # a large network: the answer keeps its (reported) gap rather than take many seconds more
    values = np.zeros((batch, len(ctx.names)))
    layer_attributions = attributions[1:] if with_dense else attributions
    if with_dense:
        add_columns(values, dense_owners(ctx, spec), attributions[0].detach().numpy().astype(np.float64))
    text: dict[str, list[np.ndarray]] = {}
    images: dict[str, list[np.ndarray]] = {}
    for layer, attribution in zip(layers, layer_attributions):
        a = attribution.detach().numpy().astype(np.float64)
        values[:, layer.feature] += a.reshape(batch, -1).sum(axis=1)
        if layer.text is not None:
            per_token = a.sum(axis=-1)  # (B, T)
            text[layer.text] = [_token_characters(ctx, layer.text, arrays, int(p), per_token[i]) for i, p in enumerate(positions)]
        if layer.image is not None:
            images[layer.image] = list(a.sum(axis=1))  # (B, S, S): channels summed
    return Attribution(values, base_output + offset, output + offset, METHOD, text=text, images=images)


def _capture(model: Any, layers: list[Layer], inputs: dict[str, Any]) -> list[Any]:
    """Each layer's output on the rows themselves (the end of the integration path)."""
    import torch

    captured: list[Any] = [None] * len(layers)

    def keep(i: int) -> Callable[..., None]:
        def hook(module: Any, args: Any, output: Any) -> None:
            captured[i] = output.detach()
        return hook

    handles = [layer.module.register_forward_hook(keep(i)) for i, layer in enumerate(layers)]
    try:
        with torch.no_grad():
            model(dict(inputs))
    finally:
        for handle in handles:
            handle.remove()
    return captured


def _token_characters(ctx: Context, feature_name: str, arrays: dict[str, np.ndarray], row: int, per_token: np.ndarray) -> np.ndarray:
    """A row's token attributions as per-character scores of its raw text (tokenizer offsets)."""
    import pandas as pd

    from forgeml.explain.text_spans import spread_tokens
    from forgeml.features.text import TEXT_KEY, clean_texts

    raw = str(arrays.get(TEXT_KEY + feature_name, [""] * (row + 1))[row])
    feature = ctx.feature(feature_name)
    cleaned = clean_texts(pd.Series([raw], dtype=object), feature.config)[0]
    offsets = list(feature.tokenizer.encode(cleaned).offsets)
    if len(cleaned) != len(raw) and cleaned:  # cleaning changed the length (URLs removed): map proportionally
        ratio = len(raw) / len(cleaned)
        offsets = [(int(s * ratio), int(round(e * ratio))) for s, e in offsets]
    count = min(len(offsets), len(per_token))
    return spread_tokens(raw, offsets[:count], per_token[:count])
