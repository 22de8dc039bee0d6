"""The stacked form of K tabular networks gives the member loop's averaged scores (≤ 1e-6), and
declines the networks it does not cover."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from forgeml.models.networks import MLPConfig
from forgeml.features.featureset import InputSpec, TokenInput
from forgeml.models.linear_skip import LinearSkip
from forgeml.models.network import FusionNet
from forgeml.models.stacked import NUMPY_ROWS, StackedNet, StackedScorer
from forgeml.models.tasks import Task

SPEC = InputSpec(dense_columns=["a", "b", "c", "d"], dense_groups=[("a", 1), ("b", 1), ("date", 2)],
                 codes=[("city", 5, 3), ("kind", 7, 4)])


def members(cfg: MLPConfig, outputs: int, k: int = 5, skip: bool = False, spec: InputSpec = SPEC) -> list[torch.nn.Module]:
    """K networks with random weights and random batch-norm statistics, as training leaves them."""
    out = []
    for seed in range(k):
        torch.manual_seed(seed)
        net = FusionNet(spec, outputs, cfg)
        with torch.no_grad():
            for module in net.modules():
                if isinstance(module, torch.nn.BatchNorm1d):
                    module.running_mean.normal_(0, 0.5)
                    module.running_var.uniform_(0.5, 2.0)
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.normal_(0, 0.2)
                if isinstance(module, torch.nn.LayerNorm):
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.normal_(0, 0.2)
        model = net
        if skip:
            model = LinearSkip(net, spec, outputs)
            with torch.no_grad():
                model.linear.weight.normal_()
                model.gate.fill_(0.3 + seed / 10)
                for table in model.code_weights:
                    table.weight.normal_()
        out.append(model.eval())
    return out


def inputs(rows: int, spec: InputSpec = SPEC) -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    codes = torch.stack([torch.randint(0, card, (rows,)) for _, card, _ in spec.codes], dim=1) if spec.codes else torch.zeros(rows, 0, dtype=torch.int64)
    return {"dense": torch.randn(rows, spec.dense_width), "codes": codes}


def loop(models, task: Task, x) -> np.ndarray:
    """What ``BaggedEstimator.scores`` computed before stacking: each member, then the mean."""
    with torch.no_grad():
        return np.mean([task.scores(model(x).float()) for model in models], axis=0)


CASES = {
    "default mlp, multiclass": (MLPConfig(), Task("multiclass", "cross_entropy", 3), False),
    "binary (bce head)": (MLPConfig(), Task("binary", "bce", 2), False),
    "regression with the linear skip": (MLPConfig(), Task("regression", "mse", 2), True),
    "poisson": (MLPConfig(num_layers=1), Task("regression", "poisson", 1), False),
    "layer norm, gelu, no residual": (MLPConfig(norm="layer", activation="gelu", residual=False, hidden_size=32), Task("multiclass", "cross_entropy", 4), False),
    "no norm, silu, three blocks": (MLPConfig(norm="none", activation="silu", num_layers=3, hidden_size=16), Task("multiclass", "cross_entropy", 3), False),
    "no hidden blocks": (MLPConfig(num_layers=0), Task("multiclass", "cross_entropy", 3), False),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("k", [1, 5])
def test_stacked_equals_the_member_loop(case, k):
    cfg, task, skip = CASES[case]
    models = members(cfg, task.output_size, k=k, skip=skip)
    net = StackedNet.build(models, task.score_tensor)
    assert net is not None
    for rows in (1, 7, 300):
        x = inputs(rows)
        got = net.scores(x["dense"], x["codes"], batch_size=128).numpy()  # 300 rows: three chunks
        want = loop(models, task, x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_only_dense_or_only_codes():
    for spec in (InputSpec(dense_columns=["a", "b"], dense_groups=[("a", 2)]), InputSpec(codes=[("city", 5, 3)])):
        task = Task("multiclass", "cross_entropy", 3)
        models = members(MLPConfig(), 3, spec=spec)
        x = inputs(9, spec)
        got = StackedNet.build(models, task.score_tensor).scores(x["dense"], x["codes"]).numpy()
        np.testing.assert_allclose(got, loop(models, task, x), rtol=0, atol=1e-6)


def test_declines_what_it_does_not_cover():
    task = Task("multiclass", "cross_entropy", 3)
    text_spec = InputSpec(dense_columns=["a"], dense_groups=[("a", 1)], tokens=[TokenInput("review", 50, 8, 12)])
    assert StackedNet.build(members(MLPConfig(), 3, spec=text_spec, k=2), task.score_tensor) is None
    assert StackedNet.build(members(MLPConfig(combiner="transformer"), 3, k=2), task.score_tensor) is None
    mixed = members(MLPConfig(), 3, k=1) + members(MLPConfig(hidden_size=32), 3, k=1)  # different shapes
    assert StackedNet.build(mixed, task.score_tensor) is None


def test_scorer_rebuilds_when_weights_change():
    cfg, task = MLPConfig(), Task("multiclass", "cross_entropy", 3)
    models = members(cfg, 3, k=3)
    scorer = StackedScorer()

    class Config:
        class train:
            precision = "fp32"

    first = scorer.get(models, Config, task.score_tensor)
    assert scorer.get(models, Config, task.score_tensor) is first  # cached
    with torch.no_grad():
        models[1].head.weight.mul_(0.5)  # an in-place edit, as an optimizer step makes
    second = scorer.get(models, Config, task.score_tensor)
    assert second is not first
    x = inputs(5)
    np.testing.assert_allclose(second.scores(x["dense"], x["codes"]).numpy(), loop(models, task, x), rtol=0, atol=1e-6)
    Config.train.precision = "bf16"
    assert scorer.get(models, Config, task.score_tensor) is None  # autocast: the loop's job


def test_bagged_penguins_bundle_matches_the_loop(fitted_penguins):
    predictor, frame = fitted_penguins
    estimator = predictor.estimator
    assert len(estimator.members) == 5
    arrays = predictor.featureset.transform(frame)
    x = {key: torch.from_numpy(value) for key, value in arrays.items()}
    want = loop([member.model for member in estimator.members], predictor.task, x)
    np.testing.assert_allclose(estimator.scores(arrays), want, rtol=0, atol=1e-6)
    assert estimator._stacked._net is not None  # the stacked form ran



@pytest.mark.parametrize("case", list(CASES))
def test_numpy_forward_for_few_rows_equals_the_loop(case):
    """The numpy forward that serves small batches on the CPU gives the torch forward's scores."""
    cfg, task, skip = CASES[case]
    models = members(cfg, task.output_size, k=5, skip=skip)
    net = StackedNet.build(models, task.score_tensor)
    for rows in (1, 3, NUMPY_ROWS):
        x = inputs(rows)
        got = net.numpy_scores(x["dense"].numpy(), x["codes"].numpy())
        assert got.dtype == np.float32 and got.shape == (rows, loop(models, task, x).shape[1])
        np.testing.assert_allclose(got, loop(models, task, x), rtol=0, atol=1e-6)
        np.testing.assert_allclose(got, net.scores(x["dense"], x["codes"]).numpy(), rtol=0, atol=1e-6)
