"""int8 for a text transformer: the graph keeps a dynamic text length and an additive attention
mask, rows run in length buckets cut to each run's longest row, and the answers match the float
network's."""
from __future__ import annotations

import numpy as np

from tests.conftest import make_mixed_frame, write_csv


def test_length_batched_returns_rows_in_order_and_cuts_padding():
    from forgeml.models.length_buckets import length_batched

    tokens = np.zeros((7, 10), np.int64)
    for row, length in enumerate([3, 9, 1, 5, 0, 10, 2]):
        tokens[row, :length] = row + 1
    seen = []

    def run(part):
        seen.append(part["tokens.t"].shape[1])
        return part["tokens.t"].sum(axis=1, keepdims=True).astype(np.float32) + part["dense"]

    arrays = {"tokens.t": tokens, "dense": np.arange(7, dtype=np.float32)[:, None]}
    got = length_batched(run, arrays, {"tokens.t": 0}, chunk=3)
    np.testing.assert_array_equal(got, run(arrays))  # same rows, same order
    assert seen[:3] == [2, 9, 10]  # lengths 0,1,2 | 3,5,9 | 10: shortest chunk first, each cut to its longest row (at least 2)


def test_length_chunks_bound_the_padding_of_skewed_lengths():
    from forgeml.models.length_buckets import length_chunks

    lengths = np.random.default_rng(0).lognormal(3.8, 0.7, 256).astype(int) + 1  # long tail, like real reviews
    runs = length_chunks(lengths, chunk=256, slack=1.25, min_rows=8)
    assert sorted(np.concatenate(runs).tolist()) == list(range(256))  # every row once
    padded = sum(len(run) * lengths[run].max() for run in runs)
    assert padded <= 1.25 * lengths.sum()  # one 256-row run cut to its longest row would pad far more:
    assert 256 * lengths.max() > 2.5 * lengths.sum()
    assert all(len(run) <= 8 or len(run) * lengths[run].max() <= 1.25 * lengths[run].sum() + 1e-9 for run in runs)
    assert len(length_chunks(np.full(600, 7), chunk=256)) == 3  # equal lengths: full runs of 256


def test_a_text_transformer_quantises_and_predicts_like_the_float_network(tmp_path):
    from forgeml import Pipeline
    from forgeml.compress.run import compress_bundle

    frame = make_mixed_frame(rows=240, seed=5)[["review", "city", "label"]]
    csv = write_csv(frame, tmp_path / "reviews.csv")
    overrides = {"model.type": "transformer", "model.text.hidden_size": 32, "model.combiner_size": 32, "model.hidden_size": 32,
                 "train.epochs": 2, "train.progress": False, "train.threads": 1, "train.bagging_folds": 1}
    bundle = Pipeline(target="label", overrides=overrides).fit(str(csv)).save(tmp_path / "bundle")
    result = compress_bundle(bundle, "quantize", {"dtype": "int8"}, output=tmp_path / "int8")
    loaded = Pipeline.load(result.path)
    estimator = loaded.predictor_.estimator
    estimator._get_session()
    assert set(estimator._pads) == {"tokens.review"}  # the length axis stayed dynamic
    import onnx

    ops = {node.op_type for node in onnx.load_from_string(estimator.model_bytes).graph.node}
    assert "IsNaN" not in ops and "MatMulInteger" in ops  # additive mask: no NaN guard over the scores
    want = Pipeline.load(bundle).predict(frame)
    got = loaded.predict(frame)
    np.testing.assert_allclose(got["label_proba_yes"], want["label_proba_yes"], atol=0.05)
    assert result.table["ratios"]["size_bytes"] > 2
