"""The float network's predict runs text rows in length buckets (``models.length_buckets``): the
answers are those of one batch padded to its longest row, rows in their original order, for every
text encoder that masks its padding."""
from __future__ import annotations

import numpy as np
import pytest

from forgeml.config import Config
from forgeml.features.featureset import InputSpec, TokenInput
from forgeml.models.tasks import Task


def _arrays(rows: int = 60, length: int = 40) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    lengths = np.minimum(rng.lognormal(2.0, 0.8, rows).astype(int), length)  # skewed, some empty
    lengths[3] = length  # one row fills the whole width
    first = np.zeros((rows, length), np.int64)
    second = np.zeros((rows, length), np.int64)
    for row, count in enumerate(lengths):
        first[row, :count] = rng.integers(2, 50, count)
        second[row, : max(1, count // 2)] = rng.integers(2, 50, max(1, count // 2))
    return {"dense": rng.normal(size=(rows, 2)).astype(np.float32), "codes": np.zeros((rows, 0), np.int64),
            "tokens.a": first, "tokens.b": second}


@pytest.mark.parametrize("model", [
    {"type": "transformer", "text": {"hidden_size": 16, "heads": 2}, "combiner_size": 16},
    {"type": "transformer", "text": {"hidden_size": 16, "heads": 2, "pooling": "max"}, "combiner": "concat", "hidden_size": 16},
    {"type": "rnn", "text": {"type": "lstm", "hidden_size": 8}},
    {"type": "rnn", "text": {"type": "gru", "hidden_size": 8, "pooling": "last"}},
    {"type": "mlp", "text": {"type": "bag"}},
], ids=["transformer", "transformer max-pool concat", "lstm", "gru last-state", "bag"])
def test_bucketed_predict_equals_one_padded_batch_in_row_order(model, monkeypatch):
    from forgeml.models import length_buckets
    from forgeml.models.torch_estimator import TorchEstimator

    spec = InputSpec(dense_columns=["x", "y"], dense_groups=[("x", 1), ("y", 1)], tokens=[TokenInput("a", 50, 8, 40), TokenInput("b", 50, 8, 40)])
    estimator = TorchEstimator(Config(target=["label"], model=model), Task("multiclass", "cross_entropy", 3), spec)
    estimator.model.predict_batch_size = 16  # several buckets of 16 rows or fewer
    arrays = _arrays()
    runs = []
    real = length_buckets.length_chunks
    monkeypatch.setattr(length_buckets, "length_chunks", lambda *a, **k: runs.append(real(*a, **k)) or runs[-1])
    bucketed = estimator.scores(arrays)
    assert len(runs[0]) >= 4 and max(len(run) for run in runs[0]) <= 16  # it did run in buckets
    whole = estimator._network_scores(arrays)  # one padded batch, no sorting
    np.testing.assert_allclose(bucketed, whole, rtol=1e-5, atol=1e-6)
    assert not np.allclose(whole[:-1], whole[1:])  # rows differ, so an order mix-up would show
