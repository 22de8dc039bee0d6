"""int8 quantisation: a smaller bundle that predicts like the original, loads everywhere, and
leaves the source untouched."""
from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.compress.conftest import tree_digest
from tests.serve.conftest import serve


def test_the_int8_bundle_is_smaller_and_predicts_within_tolerance(quantized, mlp_bundle, compress_csv):
    from forgeml import Pipeline

    result, _ = quantized
    assert (result.path / "model.int8.onnx").is_file() and not (result.path / "weights.safetensors").exists()
    original_bytes = (mlp_bundle / "weights.safetensors").stat().st_size
    assert (result.path / "model.int8.onnx").stat().st_size < 0.4 * original_bytes  # int8 weights: a quarter, plus the graph
    frame = pd.read_csv(compress_csv)
    want = Pipeline.load(mlp_bundle).predict(frame)
    got = Pipeline.load(result.path).predict(frame)
    np.testing.assert_allclose(got["label_proba_yes"], want["label_proba_yes"], atol=0.05)
    assert (got["label_prediction"] == want["label_prediction"]).mean() >= 0.97


def test_the_table_is_stored_and_shown_in_the_report(quantized):
    result, _ = quantized
    table = json.loads((result.path / "compression.json").read_text())
    assert table["method"] == "quantize" and table["split"] == "test" and table["rows"] > 0
    assert table["ratios"]["size_bytes"] > 1.5 and abs(table["metric_change"]) < 0.05
    for column in ("before", "after"):
        assert {"metric", "size_bytes", "parameters", "latency_1_ms", "latency_256_ms"} <= set(table[column])
    html = (result.path / "report.html").read_text()
    assert 'id="compression"' in html and "int8-quantised" in html and "latency, 256 rows" in html
    assert "int8" in (result.path / "model_card.md").read_text()


def test_the_source_bundle_is_byte_identical(quantized, mlp_bundle):
    result, before = quantized
    assert tree_digest(mlp_bundle) == before
    assert not any(p.name.startswith(".") for p in result.path.parent.iterdir())  # no staging folder left behind


def test_a_bag_becomes_one_graph_averaging_its_members(bagged_bundle, tmp_path, compress_csv):
    from forgeml import Pipeline
    from forgeml.compress.run import compress_bundle

    result = compress_bundle(bagged_bundle, "quantize", {"dtype": "int8"}, output=tmp_path / "int8")
    loaded = Pipeline.load(result.path)
    assert loaded.predictor_.config.train.bagging_folds == 1 and not list(result.path.glob("fold*"))
    frame = pd.read_csv(compress_csv).head(100)
    np.testing.assert_allclose(loaded.predict(frame)["label_proba_yes"], Pipeline.load(bagged_bundle).predict(frame)["label_proba_yes"], atol=0.05)


def test_predict_cli_and_export_on_the_int8_bundle(quantized, compress_csv, cli, tmp_path):
    result, _ = quantized
    done = cli("predict", result.path, compress_csv, "-o", tmp_path / "p.csv", cwd=tmp_path)
    assert done.returncode == 0, done
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(pd.read_csv(compress_csv))
    export = cli("export", result.path, cwd=tmp_path)
    assert export.returncode != 0 and "already is an ONNX graph" in export.stderr and "Traceback" not in export.stderr


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_server_answers_with_the_int8_model(quantized, compress_csv, tmp_path, backend):
    from forgeml import Pipeline

    result, _ = quantized
    frame = pd.read_csv(compress_csv).head(5)
    rows = json.loads(frame.drop(columns=["label"]).to_json(orient="records"))
    want = Pipeline.load(result.path).predict(frame)
    with serve(result.path, "--backend", backend, workdir=tmp_path) as server:
        response = httpx.post(f"{server.url}/v1/predict", json={"rows": rows}, timeout=30)
    assert response.status_code == 200, response.text
    got = [p["probabilities"]["yes"] for p in response.json()["predictions"]]
    np.testing.assert_allclose(got, want["label_proba_yes"], atol=1e-5)


def test_a_bundle_without_a_data_file_is_quantised_and_timed_on_generated_rows(saved_bundle, tmp_path):
    """The session's shared bundle was fitted on a DataFrame: no rows to score, still a table."""
    from forgeml.compress.run import compress_bundle

    result = compress_bundle(saved_bundle, "quantize", {"dtype": "int8"}, output=tmp_path / "int8")
    assert result.table["split"] is None and result.table["after"]["metric"] is None
    assert result.table["after"]["latency_256_ms"] > 0 and result.table["ratios"]["size_bytes"] > 1
    assert "(no data)" in (result.path / "report.html").read_text()
