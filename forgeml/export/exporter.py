"""Export a bundle's network, prove the file computes what eager PyTorch computes, then publish it.

Flow: load the bundle (checksums verified) → scoring graph → write to a temporary file → load the
file back with its own runtime → compare with the *unmodified* eager model on verification rows
(the user's rows through the FeatureSet when ``data`` is given, else generated arrays covering
every code and token id) at batch 1 and batch N → only then move it into ``<bundle>/exports/``
and record it, with its SHA-256 and the bundle's weights checksum, in ``exports/manifest.json``.
A mismatch above the tolerance raises ``ExportError`` and leaves nothing behind.

The bundle's own ``manifest.json`` then lists ``exports/manifest.json`` and every export file
with their SHA-256 (re-signed when ``FORGEML_BUNDLE_KEY`` is set), so an export is checked like
any other bundle file: a loader uses it only if its bytes match. Exports written before that
(not listed) are ignored by the onnx backend, which exports in memory instead.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeml.errors import BundleError, ForgeError
from forgeml.export.verification import TOLERANCE, ExportError, verification_arrays, verify

EXPORTS_DIR = "exports"
EXPORT_MANIFEST = "manifest.json"


@dataclass
class ExportResult:
    format: str
    path: Path
    sha256: str
    max_abs_diff: float
    rows_checked: int


def weights_checksum(manifest: dict[str, Any]) -> str:
    """What ties an export to the bundle it came from: the weights file's recorded SHA-256."""
    from forgeml.bundle import model_files

    files = model_files(manifest)  # not the exports themselves: exporting must not change it
    weights = {name: digest for name, digest in files.items() if name.rsplit("/", 1)[-1] == "weights.safetensors"}
    if len(weights) == 1:
        return next(iter(weights.values()))
    # a bagged bundle (fold<k>/weights.safetensors), or no torch weights: one digest over them all
    return hashlib.sha256(json.dumps(weights or files, sort_keys=True).encode()).hexdigest()


# What a bundle without a torch network holds instead, per family ({files}: its model files).
NATIVE_WORDS: dict[str, str] = {
    "gbm": "its model is LightGBM's own text format: {files} in the bundle (lightgbm.Booster(model_file=...) loads it), "
           "or `forgeml export --format lightgbm`",
    "ensemble": "an ensemble is served as it is: forgeml predict, evaluate and serve and Pipeline.load take the bundle "
                "(its members' own files, no pickle: {files})",
}


def require_torch_bundle(predictor: Any, where: str) -> None:
    estimator = getattr(predictor, "estimator", None)
    if getattr(estimator, "quantized", False):  # forgeml compress --quantize int8
        raise ExportError("this bundle is int8-quantised: its model already is an ONNX graph, model.int8.onnx in the bundle "
                          "(onnxruntime.InferenceSession runs it; forgeml predict, evaluate and serve use it as it is)", where=where,
                          hint="for torchscript, safetensors or a float ONNX graph, export the bundle it was compressed from (its compression.json names it)")
    members = getattr(estimator, "members", None) or [estimator]
    if not all(hasattr(member, "model") for member in members):
        files = list(getattr(estimator, "files", ()) or ("its model files",))
        shown = ", ".join(files[:4]) + (f" and {len(files) - 4} more" if len(files) > 4 else "")
        kind = predictor.config.model.type
        native = NATIVE_WORDS.get(kind, "its model is {files} in the bundle").format(files=shown)
        raise ExportError(
            f"this {kind} bundle has no torch network for onnx, torchscript or safetensors",
            where=where,
            hint=f"{native}; for those formats or the onnx backend train one network (--model mlp)",
        )


def build_verified(predictor: Any, fmt: str, directory: Path, data: Any = None, tolerance: float = TOLERANCE) -> tuple[Path, dict[str, Any], float, int]:
    """Write ``fmt`` into ``directory`` (a scratch folder) and verify it; returns (file, info, diff, rows)."""
    from forgeml.export.formats import FORMATS
    from forgeml.export.graph import build_graph

    exporter = FORMATS[fmt]()
    graph = build_graph(predictor)
    arrays = verification_arrays(predictor, data)
    path = directory / exporter.filename
    try:
        info = exporter.write(graph, arrays, path)
    except ForgeError:
        raise
    except Exception as exc:  # the exporters raise many types; the user needs one line and the cause
        raise ExportError(f"{fmt} export failed ({exc.__class__.__name__}: {str(exc).splitlines()[0][:200]})", hint="run with --debug for the full trace") from exc
    worst = verify(exporter.load(path, graph), predictor, arrays, tolerance, fmt)
    return path, info, worst, len(next(iter(arrays.values())))


def export_bundle(bundle: str | os.PathLike, fmt: str, *, data: Any = None, tolerance: float = TOLERANCE) -> ExportResult:
    """Export ``bundle`` as ``fmt`` into ``<bundle>/exports/`` after verifying it."""
    from forgeml.bundle import _sha256, load_predictor, read_manifest
    from forgeml.export.formats import FORMATS
    from forgeml.export.native import NATIVE_FORMATS

    if fmt not in FORMATS and fmt not in NATIVE_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}", hint=f"use one of {sorted([*FORMATS, *NATIVE_FORMATS])}")
    bundle = Path(bundle)
    predictor = load_predictor(bundle)
    manifest = read_manifest(bundle, verify=False)  # load_predictor has just verified the files
    native = NATIVE_FORMATS.get(fmt)
    if native is not None:
        native.check(predictor, str(bundle))
    else:
        require_torch_bundle(predictor, str(bundle))
    target_dir = bundle / EXPORTS_DIR
    try:
        target_dir.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".export.", dir=target_dir) as scratch:
            if native is not None:
                paths, info, worst, rows = native.build(predictor, Path(scratch), data, tolerance)
            else:
                path, info, worst, rows = build_verified(predictor, fmt, Path(scratch), data, tolerance)
                paths = [path]
            digests = {path.name: _sha256(path) for path in paths}
            umask = os.umask(0)
            os.umask(umask)
            for path in paths:
                os.chmod(path, 0o666 & ~umask)  # as readable as the rest of the bundle
                os.replace(path, target_dir / path.name)  # same folder tree: atomic, and only after verification passed
            final = target_dir / paths[0].name
            digest = digests[final.name]
    except OSError as exc:
        raise BundleError(f"could not write the export ({exc.strerror or exc})", where=str(target_dir), hint="check the folder's permissions and free space") from exc
    exports = read_exports(bundle)
    exports[fmt] = {"file": final.name, "sha256": digest, **({"sha256_by_file": digests} if len(digests) > 1 else {}),
                    "weights_sha256": weights_checksum(manifest),
                    "max_abs_diff": worst, "rows_checked": rows, "tolerance": tolerance, **info}
    record_exports(bundle, manifest, {"format": "forgeml-exports", "exports": exports}, digests)
    return ExportResult(fmt, final, digest, worst, rows)


def record_exports(bundle: Path, manifest: dict[str, Any], export_manifest: dict[str, Any], digests: dict[str, str]) -> None:
    """Write ``exports/manifest.json``, then list it and the new files in the bundle's manifest
    (re-signed), each atomically: a crash between the two leaves an export the loader ignores."""
    from forgeml.bundle import MANIFEST, sign, signing_key
    from forgeml.fileio import atomic_write_json, atomic_write_text, json_text

    if "signature" in manifest and signing_key() is None:
        raise ExportError("the bundle is signed: recording an export in it needs its key", where=str(bundle),
                          hint="set FORGEML_BUNDLE_KEY to the key it was signed with and export again")
    text = json_text(export_manifest)
    try:
        atomic_write_text(bundle / EXPORTS_DIR / EXPORT_MANIFEST, text)
        files = dict(manifest["files"])
        files[f"{EXPORTS_DIR}/{EXPORT_MANIFEST}"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        files.update({f"{EXPORTS_DIR}/{name}": digest for name, digest in digests.items()})
        atomic_write_json(bundle / MANIFEST, sign({**manifest, "files": files}))
    except OSError as exc:
        raise BundleError(f"could not record the export ({exc.strerror or exc})", where=str(bundle), hint="check the folder's permissions and free space") from exc


def read_exports(bundle: Path) -> dict[str, Any]:
    """The exports recorded in the bundle's manifest (verified); {} for none or for exports
    written before the bundle's manifest listed them."""
    from forgeml.bundle import read_manifest, read_verified

    name = f"{EXPORTS_DIR}/{EXPORT_MANIFEST}"
    manifest = read_manifest(bundle, verify=False)
    if name not in manifest["files"]:
        return {}
    try:
        data = json.loads(read_verified(bundle, name, manifest))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError(f"{name} does not parse", where=str(bundle), hint=f"delete {EXPORTS_DIR}/ and export again") from None
    return data.get("exports", {}) if isinstance(data, dict) else {}


def verified_export(bundle: Path, fmt: str, manifest: dict[str, Any]) -> bytes | None:
    """The bytes of the export for ``fmt``, if it is recorded, unchanged and from these weights
    (the bytes returned are the bytes hashed); None if there is none to use."""
    from forgeml.bundle import read_verified

    entry = read_exports(bundle).get(fmt)
    if not entry:
        return None
    name = f"{EXPORTS_DIR}/{entry.get('file', '')}"
    if not (Path(bundle) / name).is_file():
        return None
    if entry.get("weights_sha256") != weights_checksum(manifest):
        raise BundleError(f"{name} was made from other weights", where=str(bundle), hint=f"re-run `forgeml export {bundle} --format {fmt}`")
    try:
        data = read_verified(bundle, name)
    except BundleError as exc:
        raise BundleError(exc.message, where=str(bundle), hint=f"re-run `forgeml export {bundle} --format {fmt}`") from None
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise BundleError(f"{name} is corrupted (checksum mismatch with exports/manifest.json)", where=str(bundle),
                          hint=f"re-run `forgeml export {bundle} --format {fmt}`")
    return data
