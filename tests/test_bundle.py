"""Bundles: checksummed manifest, atomic replacement, no pickle anywhere, format versions."""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest

from forgeml import Pipeline
from forgeml.bundle import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    load_predictor,
    read_manifest,
    write_bundle,
)
from forgeml.errors import BundleError

# Pickle protocol 2+ streams start with PROTO (0x80) and the protocol number; torch.save writes a
# zip archive holding one; numpy's .npy is another way code can hide in "data".
SUSPECT_STARTS = tuple(bytes([0x80, protocol]) for protocol in range(2, 6)) + (b"PK\x03\x04", b"\x93NUMPY")
SUSPECT_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".ckpt", ".bin")


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))


def test_manifest_lists_every_file_with_its_sha256(saved_bundle):
    manifest = _manifest(saved_bundle)
    assert manifest["format"] == FORMAT and manifest["format_version"] == FORMAT_VERSION
    assert manifest["task"] == "binary" and manifest["model"] == "mlp"
    on_disk = {p.relative_to(saved_bundle).as_posix() for p in saved_bundle.rglob("*") if p.is_file()} - {MANIFEST}
    assert set(manifest["files"]) == on_disk
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((saved_bundle / name).read_bytes()).hexdigest() == digest, name
    assert read_manifest(saved_bundle) == manifest


@pytest.mark.parametrize("victim", ["features.json", "metrics.json", "weights.safetensors"])
def test_any_changed_file_is_detected(bundle_copy, victim):
    path = next(bundle_copy.rglob(victim))  # bagged members keep their weights in fold<k>/
    with open(path, "ab") as handle:
        handle.write(b" ")
    with pytest.raises(BundleError, match=rf"{path.relative_to(bundle_copy).as_posix()}.*checksum"):
        Pipeline.load(bundle_copy)


def test_a_deleted_file_is_detected(bundle_copy):
    (bundle_copy / "features.json").unlink()
    with pytest.raises(BundleError, match="features.json is missing"):
        Pipeline.load(bundle_copy)


def test_a_corrupted_manifest_is_a_bundle_error(bundle_copy):
    (bundle_copy / MANIFEST).write_text('{"format": "forgeml-bun', encoding="utf-8")
    with pytest.raises(BundleError, match="manifest.json is corrupted"):
        Pipeline.load(bundle_copy)


def test_a_newer_format_version_is_refused(bundle_copy):
    manifest = _manifest(bundle_copy)
    manifest["format_version"] = FORMAT_VERSION + 1
    (bundle_copy / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="newer than this forgeml") as caught:
        Pipeline.load(bundle_copy)
    assert "upgrade" in caught.value.hint


# ----------------------------------------------------------------------------- atomic writes
def _write(pipeline, path: Path) -> Path:
    """``write_bundle`` without the report, which is slow to draw and beside the point here."""
    return write_bundle(path, pipeline.predictor_, metrics={"task": "binary"}, report_html=None, model_card="# card\n")


def test_save_replaces_a_bundle_whole(fitted_pipeline, bundle_copy):
    (bundle_copy / "stale.txt").write_text("from an older bundle", encoding="utf-8")
    _write(fitted_pipeline, bundle_copy)
    assert not (bundle_copy / "stale.txt").exists()
    assert read_manifest(bundle_copy)
    assert sorted(p.name for p in bundle_copy.parent.iterdir()) == ["bundle"]  # no .old or temp folder


def test_a_failure_inside_the_write_leaves_the_previous_bundle(fitted_pipeline, bundle_copy, monkeypatch):
    def contents() -> dict[str, bytes]:
        return {p.relative_to(bundle_copy).as_posix(): p.read_bytes() for p in bundle_copy.rglob("*") if p.is_file()}

    before = contents()

    def broken_save(directory):
        (directory / "weights.safetensors").write_bytes(b"half a tensor")
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(fitted_pipeline.predictor_.estimator, "save", broken_save)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        _write(fitted_pipeline, bundle_copy)
    assert contents() == before
    assert sorted(p.name for p in bundle_copy.parent.iterdir()) == ["bundle"]


def test_a_failed_first_write_leaves_no_folder(fitted_pipeline, tmp_path, monkeypatch):
    monkeypatch.setattr(fitted_pipeline.predictor_.estimator, "save", lambda directory: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        _write(fitted_pipeline, tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- no pickle
def test_bundle_holds_no_pickle(saved_bundle):
    for path in (p for p in saved_bundle.rglob("*") if p.is_file()):
        assert path.suffix not in SUSPECT_SUFFIXES, path.name
        assert not path.read_bytes().startswith(SUSPECT_STARTS), f"{path.name} looks like a pickle/zip/npy"
    weights = next(saved_bundle.rglob("weights.safetensors")).read_bytes()
    header_length = int.from_bytes(weights[:8], "little")
    header = json.loads(weights[8:8 + header_length])
    assert header and all("dtype" in entry for name, entry in header.items() if name != "__metadata__")


def test_loading_never_unpickles(saved_bundle, mixed_frame, monkeypatch):
    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("a bundle load must not unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    predictor = load_predictor(saved_bundle)
    assert len(predictor.predict(mixed_frame.head(5))) == 5


def test_a_bundle_can_move(saved_bundle, tmp_path, mixed_frame):
    moved = Path(shutil.copytree(saved_bundle, tmp_path / "elsewhere" / "model"))
    assert len(Pipeline.load(moved).predict(mixed_frame.head(3))) == 3


# ----------------------------------------------------------------------------- integrity
def _rewrite_manifest(bundle: Path, change) -> None:
    manifest = _manifest(bundle)
    change(manifest)
    (bundle / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize("name", ["../outside.json", "/etc/hostname", "fold0/../../x", "a//b", "C:evil", "manifest.json"])
def test_unsafe_names_in_the_manifest_are_refused(bundle_copy, name):
    _rewrite_manifest(bundle_copy, lambda m: m["files"].__setitem__(name, "0" * 64))
    with pytest.raises(BundleError, match="unsafe file name"):
        Pipeline.load(bundle_copy)


def test_a_file_the_loader_reads_must_be_listed(bundle_copy):
    _rewrite_manifest(bundle_copy, lambda m: m["files"].pop("features.json"))
    with pytest.raises(BundleError, match="features.json is not listed"):
        load_predictor(bundle_copy)
    from forgeml.bundle import read_json

    _rewrite_manifest(bundle_copy, lambda m: m["files"].pop("metrics.json"))  # on disk, but not listed

    with pytest.raises(BundleError, match="metrics.json is not listed"):
        read_json(bundle_copy, "metrics.json")
    assert read_json(bundle_copy, "no_such.json") is None  # older bundles lack some files


def test_the_bytes_parsed_are_the_bytes_checked_and_each_file_is_read_once(saved_bundle, bundle_copy, monkeypatch):
    """A file swapped on disk right after its check is never parsed: the loader reads the
    verified copy. And loading opens each bundle file exactly once (no check-then-read-again)."""
    import sys

    import forgeml.bundle as bundle_module

    real = bundle_module._copy_verified

    def swap_after_check(root, name, expected, target):
        real(root, name, expected, target)
        if name == "features.json":
            (root / name).write_text("{}", encoding="utf-8")  # a swap between the check and the parse

    monkeypatch.setattr(bundle_module, "_copy_verified", swap_after_check)
    assert load_predictor(bundle_copy).featureset.input_names  # the checked bytes were parsed
    monkeypatch.setattr(bundle_module, "_copy_verified", real)
    with pytest.raises(BundleError, match="features.json is corrupted"):
        load_predictor(bundle_copy)

    opened: list[str] = []
    root = str(saved_bundle.resolve())
    watching = [True]

    def audit(event, args):
        if watching[0] and event == "open" and isinstance(args[0], (str, Path)) and str(args[0]).startswith(root):
            opened.append(Path(args[0]).relative_to(root).as_posix())

    sys.addaudithook(audit)  # audit hooks cannot be removed: this one goes quiet after the load
    try:
        load_predictor(saved_bundle.resolve())
    finally:
        watching[0] = False
    assert sorted(opened) == sorted([MANIFEST, *_manifest(saved_bundle)["files"]])


def test_a_fifo_in_place_of_a_file_is_refused_without_hanging(bundle_copy):
    import os

    (bundle_copy / "model_card.md").unlink()
    os.mkfifo(bundle_copy / "model_card.md")  # reading it would block forever
    with pytest.raises(BundleError, match="model_card.md is not a regular file"):
        load_predictor(bundle_copy)


def test_an_optional_signature_detects_what_checksums_cannot(fitted_pipeline, tmp_path, monkeypatch, mixed_frame):
    """Checksums catch corruption; an edit that also fixes the checksum needs the HMAC key to catch."""
    from forgeml.bundle import SIGNING_KEY_ENV

    unsigned = _write(fitted_pipeline, tmp_path / "unsigned")
    monkeypatch.setenv(SIGNING_KEY_ENV, "s3cret")
    signed = _write(fitted_pipeline, tmp_path / "signed")
    assert _manifest(signed)["signature"]["algorithm"] == "hmac-sha256"
    assert len(load_predictor(signed).predict(mixed_frame.head(2))) == 2
    with pytest.raises(BundleError, match="not signed"):
        load_predictor(unsigned)

    def edit_consistently(manifest):  # change a file and write its new checksum, as an attacker would
        metrics = signed / "metrics.json"
        metrics.write_text('{"accuracy": 1.0}\n', encoding="utf-8")
        manifest["files"]["metrics.json"] = hashlib.sha256(metrics.read_bytes()).hexdigest()

    _rewrite_manifest(signed, edit_consistently)
    with pytest.raises(BundleError, match="signature does not match"):
        load_predictor(signed)
    monkeypatch.setenv(SIGNING_KEY_ENV, "another key")
    with pytest.raises(BundleError, match="signature does not match"):
        load_predictor(unsigned.parent / "signed")
    monkeypatch.delenv(SIGNING_KEY_ENV)
    assert load_predictor(signed)  # without the key only checksums are checked, and they hold
    assert load_predictor(unsigned)


def test_a_bundle_written_by_an_earlier_version_loads(saved_bundle, tmp_path, mixed_frame):
    """Before this version: no signature, exports/manifest.json beside the checksums, not in them."""
    old = Path(shutil.copytree(saved_bundle, tmp_path / "old"))
    (old / "exports").mkdir()
    (old / "exports" / "manifest.json").write_text('{"format": "forgeml-exports", "exports": {}}', encoding="utf-8")
    assert "signature" not in _manifest(old)
    assert len(Pipeline.load(old).predict(mixed_frame.head(3))) == 3
