"""Bundles: the one artifact every later stage reads.

A folder with the resolved ``config.yaml``, fitted ``features.json``, the model's weights
(safetensors or LightGBM text), ``metrics.json``, ``report.html``, ``model_card.md`` and a
``manifest.json`` holding each file's SHA-256. Written atomically (temp folder + rename);
loaded with YAML/JSON/safetensors only, so opening a bundle never executes code, and a file
changed after writing is detected before anything is used.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from forgeml.errors import BundleError
from forgeml.fileio import atomic_directory

FORMAT = "forgeml-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_bundle(path: str | Path, predictor: Any, *, metrics: dict, report_html: str | None, model_card: str, extra: dict[str, Any] | None = None) -> Path:
    def write(tmp: Path) -> None:
        (tmp / "config.yaml").write_text(predictor.config.to_yaml(), encoding="utf-8")
        _write_json(tmp / "features.json", predictor.featureset.to_json())
        _write_json(tmp / "metrics.json", metrics)
        (tmp / "model_card.md").write_text(model_card, encoding="utf-8")
        if report_html is not None:
            (tmp / "report.html").write_text(report_html, encoding="utf-8")
        for name, value in (extra or {}).items():
            _write_json(tmp / name, value)
        predictor.estimator.save(tmp)

    return write_bundle_files(path, write, task=predictor.task.name, loss=predictor.task.loss, model=predictor.config.model.type)


def write_bundle_files(path: str | Path, write: Callable[[Path], None], **manifest_fields: Any) -> Path:
    """Any bundle: ``write(tmp)`` fills a temporary folder, then the manifest (every file's
    SHA-256 plus ``manifest_fields``) is added and the folder moved into place atomically.
    Language-model bundles come through here too, so every bundle is verified the same way."""
    from forgeml import __version__

    path = Path(path)
    try:
        with atomic_directory(path) as tmp:
            write(tmp)
            files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())  # bagged members live in sub-folders
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "forgeml_version": __version__,
                **manifest_fields,
                "files": {name: _sha256(tmp / name) for name in files},
            }
            _write_json(tmp / MANIFEST, manifest)
    except OSError as exc:  # disk full, read-only folder: atomic_directory has left any older bundle in place
        raise BundleError(f"could not write the bundle ({exc.strerror or exc})", where=str(path),
                          hint="free disk space or choose another folder; an existing bundle there is unchanged") from exc
    return path


def _write_json(path: Path, value: Any) -> None:
    from forgeml.fileio import _json_default

    path.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default) + "\n", encoding="utf-8")


def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise BundleError("bundle not found", where=str(path), hint="pass a bundle folder, e.g. runs/<id>/bundle (see `forgeml runs list`)")
    if not path.is_dir():
        raise BundleError("a bundle is a folder, not a file", where=str(path), hint="pass the folder that holds manifest.json")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError("not a forgeml bundle (no manifest.json)", where=str(path), hint="pass a folder written by `forgeml train` or Pipeline.save") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError("manifest.json is corrupted", where=str(path), hint="restore the bundle or retrain") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError("not a forgeml bundle (foreign manifest)", where=str(path), hint="pass a folder written by `forgeml train` or Pipeline.save")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise BundleError(f"bundle format {manifest.get('format_version')} is newer than this forgeml understands", where=str(path), hint="upgrade forgeml")
    for name, expected in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            raise BundleError(f"{name} is missing from the bundle", where=str(path), hint="restore the bundle or retrain")
        if _sha256(file) != expected:
            raise BundleError(f"{name} was changed after the bundle was written (checksum mismatch)", where=str(path), hint="restore the original file or retrain")
    return manifest


def load_predictor(path: str | Path) -> Any:
    """Verify checksums, then rebuild features, task and model from plain files."""
    path = Path(path)
    manifest = read_manifest(path)  # before the heavy imports below: a wrong path fails at once
    if manifest.get("task") == "lm":
        raise BundleError("this is a language-model bundle", where=str(path), hint="use `forgeml lm generate` or `forgeml lm eval` with it")
    from forgeml.config import Config
    from forgeml.features.featureset import FeatureSet
    from forgeml.models.estimator import load_estimator
    from forgeml.models.tasks import Task
    from forgeml.predict import Predictor

    try:
        config = Config.from_yaml(path / "config.yaml")
        featureset = FeatureSet.from_json(json.loads((path / "features.json").read_text(encoding="utf-8")))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"bundle contents do not parse ({exc.__class__.__name__})", where=str(path), hint="restore the bundle or retrain") from None
    task = Task.resolve(manifest["task"], manifest["loss"], featureset.target.output_size)
    estimator = load_estimator(path, config, task, featureset.input_spec())
    return Predictor(config, featureset, task, estimator)


def read_json(path: str | Path, name: str) -> Any:
    file = Path(path) / name
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
