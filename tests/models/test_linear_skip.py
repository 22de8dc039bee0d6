"""The CANN-style linear path: starts exactly at the ridge fit, stays there, network slowed down."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from forgeml.config import TrainConfig
from forgeml.models.networks import MLPConfig
from forgeml.features.featureset import InputSpec
from forgeml.models.linear_skip import NETWORK_LR_SCALE, LinearSkip, wants_linear_skip
from forgeml.models.mlp import TabularMLP
from forgeml.train.optim import build_optimizer


def _data(rows: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(rows, 3)).astype(np.float32)
    codes = rng.integers(0, 4, size=(rows, 1)).astype(np.int64)
    y = dense @ np.array([1.5, -2.0, 0.5]) + np.array([0.0, 1.0, -1.0, 2.0])[codes[:, 0]] + rng.normal(0, 0.1, rows)
    spec = InputSpec(dense_columns=["a", "b", "c"], codes=[("k", 4, 3)])
    return spec, {"dense": dense, "codes": codes}, y.reshape(-1, 1).astype(np.float32)


def test_starts_at_the_ridge_solution():
    spec, arrays, y = _data()
    torch.manual_seed(0)
    model = LinearSkip(TabularMLP(spec, 1, MLPConfig()), spec, 1).eval()
    alpha = model.init_from_ridge(arrays, y)
    design = np.concatenate([arrays["dense"], np.eye(4)[arrays["codes"][:, 0]]], axis=1)
    expected = Ridge(alpha=alpha).fit(design, y).predict(design)
    with torch.no_grad():
        got = model({k: torch.from_numpy(v) for k, v in arrays.items()}).numpy()
    np.testing.assert_allclose(got, expected.reshape(-1, 1), atol=1e-4)
    assert np.corrcoef(got[:, 0], y[:, 0])[0, 1] > 0.99  # and the fit is real


def test_linear_part_frozen_and_network_slowed():
    spec, _, _ = _data()
    model = LinearSkip(TabularMLP(spec, 1, MLPConfig()), spec, 1)
    optimizer = build_optimizer(model, TrainConfig(learning_rate=1e-3))
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert all(id(p) not in in_optimizer for p in model.linear.parameters())
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert rates[id(model.gate)] == pytest.approx(1e-3 * NETWORK_LR_SCALE)
    assert all(rates[id(p)] == pytest.approx(1e-3 * NETWORK_LR_SCALE) for p in model.network.parameters())


def test_auto_means_regression_only():
    assert wants_linear_skip("auto", "regression")
    assert not wants_linear_skip("auto", "binary") and not wants_linear_skip("off", "regression")
    assert wants_linear_skip("on", "multiclass")


def test_a_large_table_and_a_many_valued_category_keep_the_ridge_init_cheap():
    """The init fits a sample of rows and leaves a 2,000-level category to the network (its
    one-hot block made RidgeCV take minutes on 37,000 movie rows)."""
    import time

    from forgeml.models.linear_skip import RIDGE_MAX_LEVELS, RIDGE_MAX_ROWS

    rng = np.random.default_rng(1)
    rows = RIDGE_MAX_ROWS * 4
    dense = rng.normal(size=(rows, 3)).astype(np.float32)
    codes = np.stack([rng.integers(0, 4, rows), rng.integers(0, 2000, rows)], axis=1).astype(np.int64)
    y = (dense @ np.array([1.5, -2.0, 0.5]) + np.array([0.0, 1.0, -1.0, 2.0])[codes[:, 0]]).reshape(-1, 1).astype(np.float32)
    spec = InputSpec(dense_columns=["a", "b", "c"], codes=[("k", 4, 3), ("title", 2000, 16)])
    assert 2000 > RIDGE_MAX_LEVELS
    model = LinearSkip(TabularMLP(spec, 1, MLPConfig()), spec, 1).eval()
    started = time.perf_counter()
    model.init_from_ridge({"dense": dense, "codes": codes}, y)
    assert time.perf_counter() - started < 5
    assert float(model.code_weights[1].weight.abs().max()) == 0.0  # left to the network
    np.testing.assert_allclose(model.linear.weight.numpy()[0], [1.5, -2.0, 0.5], atol=0.01)  # the sample still finds the truth
