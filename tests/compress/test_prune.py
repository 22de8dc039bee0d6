"""Structured pruning: half the hidden units really gone (smaller tensors, smaller file), the
metric close after the fine-tune, and every member of a bag pruned."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from tests.compress.conftest import tree_digest


def _shapes(bundle, name="weights.safetensors"):
    from safetensors.torch import load_file

    return {key: tuple(value.shape) for key, value in load_file(str(bundle / name)).items()}


def test_half_the_hidden_units_are_removed(pruned, mlp_bundle):
    result, _ = pruned
    before, after = _shapes(mlp_bundle), _shapes(result.path)
    assert before["combiner.blocks.1.layers.0.weight"] == (128, 128) and after["combiner.blocks.1.layers.0.weight"] == (64, 64)
    assert after["head.weight"][1] == 64 and after["combiner.blocks.0.layers.1.running_mean"] == (64,)
    assert (result.path / "weights.safetensors").stat().st_size < 0.6 * (mlp_bundle / "weights.safetensors").stat().st_size
    from forgeml import Pipeline

    assert Pipeline.load(result.path).predictor_.config.model.hidden_size == 64


def test_the_metric_stays_close_after_the_fine_tune(pruned, mlp_bundle):
    result, before = pruned
    table = json.loads((result.path / "compression.json").read_text())
    assert table["before"]["metric"] > 0.7 and abs(table["metric_change"]) <= 0.05, table
    assert table["ratios"]["parameters"] > 2
    history = json.loads((result.path / "history.json").read_text())
    assert 1 <= len([row for row in history if "epoch" in row]) <= 5  # the fine-tune's epochs, not the original's
    assert tree_digest(mlp_bundle) == before


def test_kept_units_are_the_largest_outgoing_norms():
    from forgeml.compress.prune import kept_units, sliced_state
    from forgeml.config import Config
    from forgeml.models.network import FusionNet

    config = Config(target=["y"], model={"type": "mlp", "hidden_size": 8, "num_layers": 2})
    spec = type("Spec", (), {"codes": [], "tokens": [], "images": [], "dense_width": 3, "dense_groups": [("x", 3)]})()
    net = FusionNet(spec, 1, config.model)
    with torch.no_grad():
        net.combiner.blocks[1].layers[0].weight.zero_()
        net.head.weight.zero_()
        net.combiner.blocks[1].layers[0].weight[:, [2, 5]] = 1.0  # units 2 and 5 feed the next block
        net.head.weight[:, 7] = 3.0  # block 2's unit 7 feeds the head
    keep = kept_units(net, 8, 3)
    assert keep.tolist() == [2, 5, 7]
    small = FusionNet(spec, 1, config.model.model_copy(update={"hidden_size": 3}))
    state = sliced_state(net.state_dict(), small.state_dict(), 8, keep, "test")
    assert torch.equal(state["head.weight"], net.head.weight[:, [2, 5, 7]])
    assert torch.equal(state["combiner.blocks.0.layers.0.weight"], net.combiner.blocks[0].layers[0].weight[[2, 5, 7]])


def test_every_member_of_a_bag_is_pruned(bagged_bundle, tmp_path, compress_csv):
    from forgeml import Pipeline
    from forgeml.compress.run import compress_bundle

    result = compress_bundle(bagged_bundle, "prune", {"amount": 0.5, "structured": True, "epochs": 2}, output=tmp_path / "pruned")
    for fold in ("fold0", "fold1"):
        assert _shapes(result.path, f"{fold}/weights.safetensors")["head.weight"][1] == 64
    frame = pd.read_csv(compress_csv).head(50)
    assert np.isfinite(Pipeline.load(result.path).predict(frame)["label_proba_yes"]).all()


def test_simple_cnn_channels_are_pruned_with_their_norms_and_the_dense_columns(tmp_path):
    from forgeml import Pipeline
    from forgeml.compress.run import compress_bundle
    from tests.multimodal_data import write_image_folder

    root = write_image_folder(tmp_path / "images", per_class=8, size=16)
    overrides = {"model.type": "mlp", "model.image.channels": [8, 16], "model.image.dense_size": 32, "model.hidden_size": 24,  # ≠ 32: block 0 not residual
                 "train.epochs": 2, "train.progress": False, "train.threads": 1, "train.bagging_folds": 1}
    bundle = Pipeline(target="label", overrides=overrides).fit(root).save(tmp_path / "bundle")
    result = compress_bundle(bundle, "prune", {"amount": 0.5, "structured": True, "epochs": 1}, output=tmp_path / "pruned")
    before, after = _shapes(bundle), _shapes(result.path)
    assert before["images.0.body.features.4.weight"] == (16, 8, 3, 3) and after["images.0.body.features.4.weight"] == (8, 4, 3, 3)
    assert after["images.0.body.features.5.running_var"] == (8,)
    assert after["images.0.body.head.1.weight"][1] == before["images.0.body.head.1.weight"][1] // 2  # 16 → 8 channels × 4×4
    loaded = Pipeline.load(result.path)
    assert loaded.predictor_.config.model.image.channels == [4, 8] and loaded.predictor_.config.model.hidden_size == 12


def test_channel_slicing_keeps_the_strongest_channels_and_their_dense_columns():
    from forgeml.compress.prune_channels import kept_channels, sliced_image_state
    from forgeml.models.encoders.image import SimpleCNN

    cfg = type("Cfg", (), {"channels": [4], "dense_size": 3, "dropout": 0.0})()
    spec = type("Spec", (), {"channels": 1, "size": 4})()
    body = SimpleCNN(spec, cfg)  # one block: 4 channels, 4 px → 2 px after pooling; dense input 4 × 2 × 2
    with torch.no_grad():
        body.features[1].weight.copy_(torch.tensor([0.1, -2.0, 0.3, 1.5]))
    kept = kept_channels(body, 0.5)
    assert kept[0].tolist() == [1, 3]
    state = sliced_image_state(body.state_dict(), "", body, kept)
    dense = body.head[1].weight
    assert torch.equal(state["head.1.weight"], torch.cat([dense[:, 4:8], dense[:, 12:16]], dim=1))
    assert torch.equal(state["features.0.weight"], body.features[0].weight[[1, 3]])
