"""Each family's search space: declared on its options, sampled by Optuna within its ranges, and
every sampled point a valid config of that family."""
from __future__ import annotations

import optuna
import pytest

from forgeml.config import Config, apply_overrides
from forgeml.tune.space import Choice, Float, Int, active, sample, search_space, signature

TUNABLE = ("mlp", "cnn", "rnn", "transformer", "pretrained", "gbm", "catboost", "linear")


@pytest.mark.parametrize("family", TUNABLE)
def test_each_sampled_point_is_a_valid_config_within_the_declared_ranges(family):
    space = active(search_space(family), {"text", "image"})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    base = Config(target=["y"], model={"type": family})
    for _ in range(8):
        point = sample(study.ask(), space)
        assert set(point) == set(space)
        config = apply_overrides(base, point)  # raises on a value the options refuse
        for key, dim in space.items():
            section, *path = key.split(".")
            value = getattr(config, section)
            for part in path:
                value = getattr(value, part)
            if isinstance(dim, Choice):
                assert value in dim.values
            else:
                assert dim.low <= value <= dim.high, (key, value)


def test_the_spaces_tune_what_each_family_is_known_for():
    assert {"model.num_leaves", "model.learning_rate", "model.min_data_in_leaf", "model.feature_fraction", "model.lambda_l2",
            "model.extra_trees"} <= set(search_space("gbm"))
    assert set(search_space("catboost")) == {"model.depth", "model.learning_rate", "model.l2_leaf_reg"}
    assert set(search_space("linear")) == {"model.alpha"}
    architecture = {"model.num_layers", "model.hidden_size", "model.dropout", "model.combiner", "train.learning_rate",
                    "train.weight_decay", "train.batch_size", "model.text.type"}
    assert architecture <= set(search_space("mlp"))
    assert "model.text.type" not in search_space("pretrained")  # its pretrained encoder is the point
    assert search_space("ensemble") is None


def test_an_encoders_type_is_searched_only_when_the_data_has_that_input():
    space = search_space("mlp")
    assert "model.text.type" not in active(space, set()) and "model.image.type" not in active(space, set())
    assert "model.text.type" in active(space, {"text"}) and "model.image.type" not in active(space, {"text"})
    assert signature(active(space, set())) != signature(active(space, {"text"}))  # a study keeps its data's space


def test_dimensions_sample_on_their_scale():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    space = {"a": Int(1, 1000, log=True), "b": Float(1e-5, 1.0, log=True), "c": Choice(("x", "y"))}
    points = [sample(study.ask(), space) for _ in range(200)]
    assert sum(p["a"] < 32 for p in points) > 70  # log scale: half the draws under sqrt(1000)
    assert sum(p["b"] < 1e-2 for p in points) > 100
    assert {p["c"] for p in points} == {"x", "y"}
