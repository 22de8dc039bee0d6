"""A frozen pretrained encoder is run once per row and cached: same logits as running it per batch."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from forgeml import Pipeline
from forgeml.models.networks import PretrainedConfig, TextEncoderConfig
from forgeml.features.featureset import InputSpec, TokenInput
from forgeml.models import frozen_cache
from forgeml.models.network import FusionNet


def _net(minilm_dir, **text):
    hf_config = json.loads((minilm_dir / "config.json").read_text())
    spec = InputSpec(dense_columns=["x"], dense_groups=[("x", 1)], tokens=[TokenInput("review", 30522, 32, 24, 0, hf_config)])
    torch.manual_seed(0)
    return FusionNet(spec, 3, PretrainedConfig(text=TextEncoderConfig(type="pretrained", checkpoint=str(minilm_dir), **text)))


def _rows(count=7, seed=0):
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(count, 24, dtype=torch.long)
    for row, length in enumerate([3, 24, 9, 1, 17, 5, 12][:count]):  # several lengths, one full, one near-empty
        tokens[row, :length] = torch.randint(1000, 20000, (length,), generator=generator)
        tokens[row, 0], tokens[row, length - 1] = 101, 102
    return {"dense": torch.randn(count, 1, generator=generator), "codes": torch.zeros(count, 0, dtype=torch.long), "tokens.review": tokens}


def test_cached_vectors_give_the_uncached_logits(minilm_dir):
    net = _net(minilm_dir, freeze=True).train()  # training mode: the frozen encoder still runs without dropout
    inputs = _rows()
    assert frozen_cache.describe(net) == ["review"]
    cached = frozen_cache.cache_inputs(net, inputs, batch_size=3)  # batches that cut across lengths
    assert set(cached) == {"dense", "codes", "embedded.review"} and cached["embedded.review"].shape == (7, 384)
    assert not cached["embedded.review"].is_inference()  # autograd may save it for the head's backward
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(cached), net(inputs), atol=1e-5, rtol=0)
    net.train()
    loss = net(cached).sum()
    loss.backward()  # the head learns from cached vectors
    assert net.head.weight.grad is not None


def test_only_frozen_encoders_are_cached(minilm_dir):
    assert frozen_cache.describe(_net(minilm_dir, freeze=False)) == []
    assert frozen_cache.describe(_net(minilm_dir, freeze=True, cache_frozen=False)) == []
    inputs = _rows(3)
    assert frozen_cache.cache_inputs(_net(minilm_dir, freeze_layers=6), inputs) is inputs


def test_training_on_cached_vectors_predicts_what_the_uncached_run_predicts(minilm_dir):
    rng = np.random.default_rng(0)
    words = {"pos": ["great", "love", "perfect"], "neg": ["awful", "broken", "refund"]}
    labels = ["pos", "neg"] * 12
    frame = pd.DataFrame({"review": [" ".join(rng.choice(words[y], 1 + i % 4)) + " item" for i, y in enumerate(labels)], "y": labels})
    # SGD: Adam turns float noise in a near-zero gradient into a full-size step (m/√v ≈ ±1), so two
    # Adam runs that agree to 1e-7 in every forward pass still end 1e-4 apart.
    overrides = {"model.text.checkpoint": str(minilm_dir), "model.text.freeze": True, "train.epochs": 3, "train.batch_size": 8,
                 "train.optimizer": "sgd", "train.learning_rate": 0.05,
                 "train.progress": False, "train.threads": 1, "clean.duplicates": False}
    runs = {cache: Pipeline(target="y", model="pretrained", overrides={**overrides, "model.text.cache_frozen": cache}).fit(frame)
            for cache in (True, False)}
    cached, uncached = (runs[c].predict(frame).filter(like="proba").to_numpy() for c in (True, False))
    np.testing.assert_allclose(cached, uncached, atol=1e-5)
    histories = [[row["train_loss"] for row in runs[c].fit_summary_.history] for c in (True, False)]
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-5)
