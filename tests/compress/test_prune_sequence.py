"""Structured pruning of the sequence families: transformer attention heads, feed-forward units and
residual width (text encoder and transformer combiner), LSTM/GRU hidden units. Removing heads and
units that carry nothing changes no output (the slicing is exact); the width cut keeps the
channels that carry the most and every tensor of a stream lines up; real bundles get smaller
tensors and files, predict close to the source before any fine-tune at a small amount, stay close
after it, round-trip through the bundle and int8, and are left untouched."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from forgeml.config import Config
from forgeml.features.featureset import InputSpec, TokenInput
from tests.compress.conftest import tree_digest
from tests.conftest import make_mixed_frame, write_csv

SMALL = {"model.text.hidden_size": 32, "model.combiner_size": 32, "model.hidden_size": 48, "train.epochs": 3,
         "train.progress": False, "train.threads": 1, "train.bagging_folds": 1, "train.seed": 0}


def _tokens(rows: int = 6, length: int = 9) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 50, (rows, length), generator=generator)
    for row in range(rows):
        tokens[row, 2 + row:] = 0  # different lengths, padded with 0
    return tokens


def _net(model: dict):
    from forgeml.models.network import FusionNet

    config = Config(target=["y"], model=model)
    spec = InputSpec(dense_columns=["x"], dense_groups=[("x", 1)], tokens=[TokenInput("t", 50, 16, 9)])
    torch.manual_seed(0)
    return config, spec, FusionNet(spec, 2, config.model).eval()


def _rebuilt(config, spec, changes: dict, state: dict):
    from forgeml.compress.prune import sliced_state
    from forgeml.config import apply_overrides
    from forgeml.models.network import FusionNet

    small = apply_overrides(config, changes)
    net = FusionNet(spec, 2, small.model).eval()
    net.load_state_dict(sliced_state(state, net.state_dict(), config.model.hidden_size, torch.arange(config.model.hidden_size), "test", state))
    return small, net


def test_removing_silent_heads_and_units_leaves_the_transformer_output_unchanged(monkeypatch):
    from forgeml.compress import prune_attention, prune_width

    monkeypatch.setattr(prune_width, "streams", lambda *args: [])  # heads and units alone: the width cut is not exact (LayerNorm statistics)

    config, spec, net = _net({"type": "transformer", "text": {"hidden_size": 16, "heads": 4}, "combiner_size": 16, "combiner_heads": 4})
    with torch.no_grad():
        for block in [*net.text[0].blocks, *net.combiner.layers]:
            block.attention.proj.weight[:, 4:8] = 0  # heads 1 and 3 write nothing into the residual stream
            block.attention.proj.weight[:, 12:16] = 0
            block.mlp[2].weight[:, 5:37] = 0  # 32 of the 64 feed-forward units pass nothing on
    inputs = {"dense": torch.randn(6, 1), "codes": torch.zeros(6, 0, dtype=torch.long), "tokens.t": _tokens()}
    want = net(inputs)
    cut = prune_attention.cut(net, config, spec, 0.5)
    proj = net.text[0].blocks[0].attention.proj.weight
    assert torch.equal(cut["text.0.blocks.0.attention.proj.weight"], torch.cat([proj[:, 0:4], proj[:, 8:12]], dim=1))  # heads 0 and 2 kept
    small, pruned = _rebuilt(config, spec, prune_attention.changes(config, spec, 0.5), {**net.state_dict(), **cut})
    assert small.model.text.heads == 2 and small.model.text.head_size == 4 and small.model.text.ffn_size == 32
    assert pruned.text[0].blocks[0].attention.qkv.weight.shape == (24, 16)  # q|k|v of 2 heads × 4
    assert pruned.combiner.layers[0].mlp[0].weight.shape == (32, 16) and small.model.combiner_heads == 2
    assert torch.allclose(pruned(inputs), want, atol=1e-5)


def test_removing_silent_units_leaves_the_lstm_output_unchanged():
    from forgeml.compress import prune_recurrent

    config, spec, net = _net({"type": "rnn", "text": {"type": "lstm", "hidden_size": 8, "num_layers": 2}, "hidden_size": 16})
    rnn = net.text[0].rnn
    silent = [1, 2, 4, 6]
    with torch.no_grad():
        for layer in range(2):
            for suffix in ("", "_reverse"):
                getattr(rnn, f"weight_hh_l{layer}{suffix}")[:, silent] = 0
        for suffix in ("", "_reverse"):  # layer 0's silent units feed layer 1 nothing
            getattr(rnn, f"weight_ih_l1{suffix}")[:, silent + [8 + s for s in silent]] = 0
        first = net.combiner.blocks[0].layers[0].weight  # columns: x | forward 8 | backward 8
        first[:, [1 + s for s in silent] + [9 + s for s in silent]] = 0
    inputs = {"dense": torch.randn(6, 1), "codes": torch.zeros(6, 0, dtype=torch.long), "tokens.t": _tokens()}
    want = net(inputs)
    state = {**net.state_dict(), **prune_recurrent.cut(net, config, spec, 0.5)}
    small, pruned = _rebuilt(config, spec, prune_recurrent.changes(config, spec, 0.5), state)
    assert small.model.text.hidden_size == 4 and pruned.text[0].rnn.weight_hh_l1.shape == (16, 4)
    assert pruned.combiner.blocks[0].layers[0].weight.shape == (16, 1 + 8)
    assert torch.allclose(pruned(inputs), want, atol=1e-5)


@pytest.fixture(scope="module")
def text_csv(tmp_path_factory):
    frame = make_mixed_frame(rows=300, seed=5)[["review", "city", "label"]]
    return write_csv(frame, tmp_path_factory.mktemp("prune_text") / "reviews.csv")


def _bundle(text_csv, folder, overrides):
    from forgeml import Pipeline

    return Pipeline(target="label", overrides={**SMALL, **overrides}).fit(str(text_csv)).save(folder)


def _weights(bundle):
    from safetensors.torch import load_file

    return {key: tuple(value.shape) for key, value in load_file(str(bundle / "weights.safetensors")).items()}


@pytest.mark.parametrize("family", ["transformer", "rnn"])
def test_a_text_bundle_prunes_smaller_predicts_close_and_the_source_is_untouched(family, text_csv, tmp_path):
    from forgeml import Pipeline
    from forgeml.compress.run import compress_bundle

    overrides = {"model.type": family, **({"model.text.type": "gru"} if family == "rnn" else {})}
    bundle = _bundle(text_csv, tmp_path / "bundle", overrides)
    digest = tree_digest(bundle)
    frame = pd.read_csv(text_csv)
    want = Pipeline.load(bundle).predict(frame)["label_proba_yes"].to_numpy()

    light = compress_bundle(bundle, "prune", {"amount": 0.25, "structured": True, "epochs": 0}, output=tmp_path / "light")
    got = Pipeline.load(light.path).predict(frame)["label_proba_yes"].to_numpy()
    assert np.abs(got - want).mean() < 0.1 and ((got > 0.5) == (want > 0.5)).mean() >= 0.85  # before any fine-tune

    half = compress_bundle(bundle, "prune", {"amount": 0.5, "structured": True, "epochs": 3}, output=tmp_path / "half")
    before, after = _weights(bundle), _weights(half.path)
    if family == "transformer":
        assert before["text.0.blocks.0.attention.qkv.weight"] == (96, 32) and after["text.0.blocks.0.attention.qkv.weight"] == (48, 16)
        assert after["combiner.layers.0.mlp.0.weight"] == (64, 16) and after["text.0.embed.weight"] == (before["text.0.embed.weight"][0], 16)
        model = Pipeline.load(half.path).predictor_.config.model
        assert (model.text.heads, model.text.head_size, model.combiner_heads, model.combiner_ffn_size) == (2, 8, 2, 64)
        assert (model.text.hidden_size, model.combiner_size, model.hidden_size) == (16, 16, 24)
    else:
        assert before["text.0.rnn.weight_hh_l0"] == (96, 32) and after["text.0.rnn.weight_hh_l0"] == (48, 16)
        assert after["combiner.blocks.0.layers.0.weight"][1] == before["combiner.blocks.0.layers.0.weight"][1] - 32
    assert (half.path / "weights.safetensors").stat().st_size < (bundle / "weights.safetensors").stat().st_size
    table = json.loads((half.path / "compression.json").read_text())
    assert table["ratios"]["parameters"] > (1.8 if family == "transformer" else 1.1) and table["metric_change"] >= -0.05, table  # (more training may also raise it)
    assert tree_digest(bundle) == digest


def test_a_bag_text_encoder_without_hidden_blocks_is_refused(text_csv, tmp_path):
    from forgeml.compress.errors import CompressError
    from forgeml.compress.run import compress_bundle

    bundle = _bundle(text_csv, tmp_path / "bundle", {"model.type": "mlp", "model.num_layers": 0, "train.epochs": 1})
    with pytest.raises(CompressError, match="nothing to prune") as error:
        compress_bundle(bundle, "prune", {"amount": 0.5, "structured": True}, output=tmp_path / "out")
    assert "mlp network" in str(error.value) and "transformer heads" in str(error.value) and not (tmp_path / "out").exists()


def test_hidden_units_tied_to_a_residual_input_are_kept():
    from types import SimpleNamespace

    from forgeml.compress.prune import hidden_prunable

    for hidden, expected in ((16, False), (24, True)):  # the combiner's output is 16 wide: block 0 is residual at 16
        config, spec, net = _net({"type": "transformer", "text": {"hidden_size": 16}, "combiner_size": 16, "hidden_size": hidden})
        source = SimpleNamespace(predictor_=SimpleNamespace(estimator=SimpleNamespace(model=net)))
        assert hidden_prunable(source) is expected


@pytest.mark.parametrize("combiner", ["transformer", "concat"])
def test_the_width_cut_keeps_the_strongest_channels_and_every_tensor_lines_up(combiner):
    from forgeml.compress import prune_attention
    from forgeml.models.network import FusionNet

    config = Config(target=["y"], model={"type": "transformer", "text": {"hidden_size": 16, "heads": 4}, "combiner": combiner,
                                         "combiner_size": 16, "hidden_size": 24})
    spec = InputSpec(dense_columns=["x"], dense_groups=[("x", 1)], tokens=[TokenInput("a", 50, 16, 9), TokenInput("b", 50, 16, 9)])
    torch.manual_seed(0)
    net = FusionNet(spec, 2, config.model).eval()
    silent = [[1, 2, 4, 7, 8, 11, 13, 14], [0, 3, 5, 6, 9, 10, 12, 15]]  # each text encoder's weak channels: its own choice
    with torch.no_grad():
        for encoder, channels in zip(net.text, silent):
            encoder.embed.weight[:, channels] *= 0.01
            encoder.positions[:, channels] *= 0.01
            for block in encoder.blocks:
                block.attention.proj.weight[channels] *= 0.01
                block.mlp[2].weight[channels] *= 0.01
                block.norm1.weight[channels] *= 0.01
    inputs = {"dense": torch.randn(6, 1), "codes": torch.zeros(6, 0, dtype=torch.long), "tokens.a": _tokens(), "tokens.b": _tokens()}
    cut = prune_attention.cut(net, config, spec, 0.5)
    for index, channels in enumerate(silent):
        live = [c for c in range(16) if c not in channels]
        assert torch.equal(cut[f"text.{index}.embed.weight"], net.text[index].embed.weight[:, live])
        assert torch.equal(cut[f"text.{index}.norm.bias"], net.text[index].norm.bias[live])
    changes = prune_attention.changes(config, spec, 0.5)
    assert changes["model.text.hidden_size"] == 8 and changes.get("model.combiner_size") == (8 if combiner == "transformer" else None)
    small, pruned = _rebuilt(config, spec, {**changes, "model.hidden_size": 24}, {**net.state_dict(), **cut})  # (hidden units uncut here)
    assert pruned.text[1].embed.weight.shape == (50, 8) and pruned.text[1].blocks[0].attention.qkv.weight.shape == (24, 8)
    if combiner == "concat":  # the joined vector: x | a's 8 kept channels | b's 8
        first = net.combiner.blocks[0].layers[0].weight
        live_a, live_b = ([1 + c for c in range(16) if c not in ch] for ch in silent)
        assert torch.equal(pruned.combiner.blocks[0].layers[0].weight, first[:, [0] + live_a + [16 + c for c in live_b]])
    else:
        assert pruned.combiner.identity.shape == (4, 8) and pruned.combiner.project[2].weight.shape == (8, 8)
    out = pruned(inputs)
    assert out.shape == (6, 2) and torch.isfinite(out).all()


def test_a_width_pruned_transformer_round_trips_and_quantises(text_csv, tmp_path):
    from forgeml import Pipeline
    from forgeml.compress.run import compress_bundle

    bundle = _bundle(text_csv, tmp_path / "bundle", {"model.type": "transformer", "train.epochs": 2})
    half = compress_bundle(bundle, "prune", {"amount": 0.5, "structured": True, "epochs": 1}, output=tmp_path / "half")
    from forgeml.compress.data import data_path, prepare_data
    from forgeml.compress.tradeoff import parameter_count

    loaded = Pipeline.load(half.path)
    network = getattr(loaded.predictor_.estimator.model, "network", loaded.predictor_.estimator.model)
    assert network.text[0].embed.weight.shape[1] == 16 and parameter_count(loaded.predictor_.estimator) == half.table["after"]["parameters"]
    prepared = prepare_data(loaded.predictor_, data_path(loaded.predictor_.config, None))
    metric = loaded.predictor_.evaluate_frame(prepared.frames[prepared.test_split], source="test")
    assert metric.metrics[half.table["metric_name"]] == pytest.approx(half.table["after"]["metric"], abs=1e-9)  # the saved model is the one measured
    frame = pd.read_csv(text_csv)
    pruned = loaded.predict(frame)["label_proba_yes"].to_numpy()
    int8 = compress_bundle(half.path, "quantize", {"dtype": "int8"}, output=tmp_path / "int8")
    got = Pipeline.load(int8.path).predict(frame)["label_proba_yes"].to_numpy()
    assert np.abs(got - pruned).max() < 0.05 and ((got > 0.5) == (pruned > 0.5)).mean() >= 0.97
