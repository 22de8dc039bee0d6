"""Exports: each format reloads and matches eager PyTorch; a wrong graph or a LightGBM bundle fails loudly."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from forgeml.bundle import _sha256, load_predictor, read_manifest
from forgeml.errors import BundleError
from forgeml.export import exporter
from forgeml.export.exporter import ExportError, export_bundle, read_exports, verified_export, weights_checksum


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "safetensors"])
def test_export_reloads_and_matches_eager(bundle_copy, fmt):
    result = export_bundle(bundle_copy, fmt)
    assert result.path.parent == bundle_copy / "exports" and result.path.is_file()
    assert result.max_abs_diff <= 1e-4 and result.rows_checked == 256
    entry = read_exports(bundle_copy)[fmt]
    assert entry["sha256"] == _sha256(result.path) == result.sha256
    assert entry["weights_sha256"] == weights_checksum(read_manifest(bundle_copy))
    assert verified_export(bundle_copy, fmt, read_manifest(bundle_copy)) == result.path.read_bytes()
    listed = read_manifest(bundle_copy)["files"]  # the export is checked like any bundle file
    assert listed["exports/manifest.json"] == _sha256(bundle_copy / "exports" / "manifest.json")
    assert listed[f"exports/{result.path.name}"] == result.sha256


def test_onnx_has_dynamic_batch_and_matches_predictor_on_real_rows(bundle_copy, mixed_frame):
    import onnxruntime as ort

    export_bundle(bundle_copy, "onnx")
    session = ort.InferenceSession(str(bundle_copy / "exports" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["dense", "codes", "tokens.review"]
    assert all(isinstance(i.shape[0], str) for i in session.get_inputs())  # symbolic batch axis
    predictor = load_predictor(bundle_copy)
    rows = mixed_frame.drop(columns=["label"]).head(37)
    arrays = predictor.featureset.transform(rows, strict=True)
    got = session.run(None, {i.name: arrays[i.name] for i in session.get_inputs()})[0]
    np.testing.assert_allclose(got, predictor.scores(rows), atol=1e-5)


def test_export_on_user_rows(bundle_copy, mixed_frame, tmp_path):
    data = tmp_path / "rows.csv"
    mixed_frame.drop(columns=["label"]).head(50).to_csv(data, index=False)
    assert export_bundle(bundle_copy, "torchscript", data=data).rows_checked == 50


def test_mismatching_export_fails_loudly_and_writes_nothing(bundle_copy, monkeypatch):
    from forgeml.export import graph as graph_module

    real = graph_module.export_friendly

    def perturbed(model):
        import torch

        copy = real(model)
        with torch.no_grad():
            copy.head.bias.add_(0.5)  # the exported network is no longer the bundle's
        return copy

    monkeypatch.setattr(graph_module, "export_friendly", perturbed)
    with pytest.raises(ExportError, match="differs from eager PyTorch"):
        export_bundle(bundle_copy, "onnx")
    assert not (bundle_copy / "exports" / "model.onnx").exists()
    assert read_exports(bundle_copy) == {}


def test_tampered_or_stale_export_is_refused(bundle_copy):
    result = export_bundle(bundle_copy, "onnx")
    manifest = read_manifest(bundle_copy)
    with open(result.path, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match="corrupted"):
        verified_export(bundle_copy, "onnx", manifest)
    for name in [n for n in manifest["files"] if n.endswith("weights.safetensors")]:  # fold<k>/ when bagged
        manifest["files"][name] = "0" * 64
    with pytest.raises(BundleError, match="other weights"):
        verified_export(bundle_copy, "onnx", manifest)


def test_unknown_format(bundle_copy):
    with pytest.raises(ExportError, match="unknown export format"):
        export_bundle(bundle_copy, "pickle")


def test_export_cli_and_gbm_message(cli_trains, cli, tmp_path):
    run = cli_trains["gbm"].result()
    assert run.train.returncode == 0, run.train
    done = cli("export", run.bundle, "--format", "onnx", cwd=tmp_path)
    assert done.returncode == 2 and "LightGBM" in done.stderr and "Traceback" not in done.stderr, done
    bundle = shutil.copytree(cli_trains["config"].result().bundle, tmp_path / "bundle")  # others read the original
    done = cli("export", bundle, "--format", "safetensors", cwd=tmp_path)
    assert done.returncode == 0 and "model.safetensors" in done.stdout, done
    entry = json.loads((bundle / "exports" / "manifest.json").read_text())["exports"]["safetensors"]
    assert entry["max_abs_diff"] <= 1e-4
    assert exporter.weights_checksum(read_manifest(bundle)) == entry["weights_sha256"]


def test_lightgbm_format_needs_a_gbm_bundle(bundle_copy):
    with pytest.raises(ExportError, match="has no LightGBM model"):
        export_bundle(bundle_copy, "lightgbm")
    assert not (bundle_copy / "exports" / "model.txt").exists()


def test_an_export_from_an_earlier_version_is_ignored_not_trusted(bundle_copy):
    """Before the bundle's manifest listed exports, nothing checked exports/manifest.json: such an
    export is not used (the onnx backend exports in memory instead), and re-exporting records it."""
    export_bundle(bundle_copy, "onnx")
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["files"] = {n: d for n, d in manifest["files"].items() if not n.startswith("exports/")}
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    assert read_exports(bundle_copy) == {} and verified_export(bundle_copy, "onnx", manifest) is None
    export_bundle(bundle_copy, "onnx")
    assert verified_export(bundle_copy, "onnx", read_manifest(bundle_copy)) is not None


def test_exporting_a_signed_bundle_re_signs_it_and_needs_the_key(bundle_copy, monkeypatch):
    from forgeml.bundle import SIGNING_KEY_ENV, sign

    monkeypatch.setenv(SIGNING_KEY_ENV, "k")
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    (bundle_copy / "manifest.json").write_text(json.dumps(sign(manifest)))
    export_bundle(bundle_copy, "safetensors")
    assert "exports/model.safetensors" in read_manifest(bundle_copy)["files"]  # signature still valid
    monkeypatch.delenv(SIGNING_KEY_ENV)
    with pytest.raises(ExportError, match="the bundle is signed"):
        export_bundle(bundle_copy, "onnx")
