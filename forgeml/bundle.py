"""Bundles: the one artifact every later stage reads.

A folder with the resolved ``config.yaml``, fitted ``features.json``, the model's weights
(safetensors or LightGBM text), ``metrics.json``, ``report.html``, ``model_card.md`` and a
``manifest.json`` holding each file's SHA-256. Written atomically (temp folder + rename);
loaded with YAML/JSON/safetensors only, so opening a bundle never executes code.

Integrity: the loader reads nothing the manifest does not list. ``verified_bundle`` copies every
listed file, hashing the bytes as it copies them, into a private temporary folder and the loaders
parse that copy, so the bytes parsed are the bytes checked (a file swapped on disk between the
check and the read is never seen) and each file is read from the bundle once. Names that would
leave the folder (``..``, absolute paths) and anything but regular files are refused. Checksums
detect *corruption* (a truncated copy, a flipped bit, an edited file); anyone who can edit a file
can also edit its checksum, so they do not prove who wrote the bundle. For that, set
``FORGEML_BUNDLE_KEY``: bundles written with it carry an HMAC-SHA256 signature of the manifest,
and with it set, loading refuses unsigned bundles and any whose signature does not match.
Files added later (``exports/``) are recorded in the same manifest, and re-signed.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from forgeml.errors import BundleError, ForgeError
from forgeml.fileio import atomic_directory

FORMAT = "forgeml-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNING_KEY_ENV = "FORGEML_BUNDLE_KEY"
EXPORTS_PREFIX = "exports/"  # recorded after training by `forgeml export`; not part of the model
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_BLOCK = 1 << 20
_RESTORE = "restore the bundle from a good copy or retrain"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def signing_key() -> bytes | None:
    """The HMAC key from ``FORGEML_BUNDLE_KEY``, or None (checksums only)."""
    key = os.environ.get(SIGNING_KEY_ENV, "")
    return key.encode("utf-8") if key else None


def signature(manifest: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 of the manifest without its signature, as canonical JSON (sorted keys)."""
    body = {name: value for name, value in manifest.items() if name != "signature"}
    payload = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def sign(manifest: dict[str, Any], key: bytes | None = None) -> dict[str, Any]:
    """``manifest`` with a fresh signature when a key is set (given or from the environment)."""
    key = key if key is not None else signing_key()
    manifest = {name: value for name, value in manifest.items() if name != "signature"}
    if key is not None:
        manifest["signature"] = {"algorithm": "hmac-sha256", "value": signature(manifest, key)}
    return manifest


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
    SHA-256 plus ``manifest_fields``, signed when ``FORGEML_BUNDLE_KEY`` is set) is added and the
    folder moved into place atomically.
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
            _write_json(tmp / MANIFEST, sign(manifest))
    except OSError as exc:  # disk full, read-only folder: atomic_directory has left any older bundle in place
        raise BundleError(f"could not write the bundle ({exc.strerror or exc})", where=str(path),
                          hint="free disk space or choose another folder; an existing bundle there is unchanged") from exc
    return path


def _write_json(path: Path, value: Any) -> None:
    from forgeml.fileio import atomic_write_json

    atomic_write_json(path, value)


def read_manifest(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """The bundle's manifest, checked: format, safe file names, the signature when a key is set,
    and (``verify``) every listed file's SHA-256. ``verify=False`` is for callers that then load
    through ``verified_bundle``, which checks each file as it reads it."""
    path = Path(path)
    if not path.exists():
        raise BundleError("bundle not found", where=str(path), hint="pass a bundle folder, e.g. runs/<id>/bundle (see `forgeml runs list`)")
    if not path.is_dir():
        raise BundleError("a bundle is a folder, not a file", where=str(path), hint="pass the folder that holds manifest.json")
    try:
        manifest = json.loads(_read_regular(path / MANIFEST, str(path)))
    except FileNotFoundError:
        raise BundleError("not a forgeml bundle (no manifest.json)", where=str(path), hint="pass a folder written by `forgeml train` or Pipeline.save") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError("manifest.json is corrupted", where=str(path), hint=_RESTORE) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError("not a forgeml bundle (foreign manifest)", where=str(path), hint="pass a folder written by `forgeml train` or Pipeline.save")
    if not isinstance(manifest.get("format_version", 0), int) or manifest.get("format_version", 0) > FORMAT_VERSION:
        raise BundleError(f"bundle format {manifest.get('format_version')} is newer than this forgeml understands", where=str(path), hint="upgrade forgeml")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(d, str) and _HEX64.match(d) for d in files.values()):
        raise BundleError("manifest.json is corrupted (its file list is not name → SHA-256)", where=str(path), hint=_RESTORE)
    for name in files:
        _check_name(name, str(path))
    _check_signature(manifest, str(path))
    if verify:
        for name, expected in files.items():
            _copy_verified(path, name, expected, None)
    return manifest


def _check_name(name: Any, where: str) -> None:
    """A listed name must stay inside the bundle: relative, '/'-separated, no '..', '.' or empty parts."""
    parts = name.split("/") if isinstance(name, str) else [""]
    if (not isinstance(name, str) or name.startswith("/") or "\\" in name or "\0" in name or ":" in parts[0]
            or any(part in ("", ".", "..") for part in parts) or name == MANIFEST):
        raise BundleError(f"manifest.json lists an unsafe file name {name!r}", where=where,
                          hint="a bundle lists only files inside its folder; " + _RESTORE)


def _check_signature(manifest: dict[str, Any], where: str) -> None:
    key = signing_key()
    if key is None:
        return  # no key: checksums only (a signed bundle loads too)
    signed = manifest.get("signature")
    if not isinstance(signed, dict) or signed.get("algorithm") != "hmac-sha256":
        raise BundleError(f"the bundle is not signed, and {SIGNING_KEY_ENV} is set", where=where,
                          hint=f"re-save it with {SIGNING_KEY_ENV} set, or unset {SIGNING_KEY_ENV} to load unsigned bundles")
    if not hmac.compare_digest(str(signed.get("value", "")), signature(manifest, key)):
        raise BundleError("the bundle's signature does not match: it was changed after it was signed, or signed with another key",
                          where=where, hint=f"use the bundle as its author wrote it, or the {SIGNING_KEY_ENV} it was signed with")


def _open_regular(file: Path, where: str) -> int:
    """A descriptor on a regular file; never blocks on a FIFO or a device named like a bundle file."""
    descriptor = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise BundleError(f"{file.name} is not a regular file", where=where, hint=_RESTORE)
    return descriptor


def _read_regular(file: Path, where: str) -> bytes:
    with os.fdopen(_open_regular(file, where), "rb") as handle:
        return handle.read()


def _copy_verified(root: Path, name: str, expected: str, target: Path | None) -> None:
    """Read ``root/name`` once, in blocks, hashing it (and copying it to ``target`` when given);
    a hash other than ``expected`` is refused (the copy is discarded with its folder)."""
    digest = hashlib.sha256()
    try:
        handle = os.fdopen(_open_regular(root / name, str(root)), "rb")
    except FileNotFoundError:
        raise BundleError(f"{name} is missing from the bundle", where=str(root), hint=_RESTORE) from None
    except OSError as exc:
        raise BundleError(f"{name} cannot be read ({exc.strerror or exc})", where=str(root), hint="check its permissions") from None
    with handle, (open(target, "wb") if target is not None else contextlib.nullcontext()) as out:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
            if out is not None:
                out.write(block)
    if digest.hexdigest() != expected:
        raise BundleError(f"{name} is corrupted (checksum mismatch with manifest.json)", where=str(root), hint=_RESTORE)


def read_verified(path: str | Path, name: str, manifest: dict[str, Any] | None = None) -> bytes:
    """One listed file's bytes, hashed as read: what a caller parses is what was checked."""
    path = Path(path)
    manifest = manifest if manifest is not None else read_manifest(path, verify=False)
    expected = manifest["files"].get(name)
    if expected is None:
        raise BundleError(f"{name} is not listed in manifest.json", where=str(path), hint=_RESTORE)
    try:
        data = _read_regular(path / name, str(path))
    except FileNotFoundError:
        raise BundleError(f"{name} is missing from the bundle", where=str(path), hint=_RESTORE) from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise BundleError(f"{name} is corrupted (checksum mismatch with manifest.json)", where=str(path), hint=_RESTORE)
    return data


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle's checked files: ``folder`` is a private copy holding exactly the listed files."""

    path: Path  # the bundle as the user named it (for messages)
    folder: Path
    manifest: dict[str, Any]


@contextlib.contextmanager
def verified_bundle(path: str | Path) -> Iterator[VerifiedBundle]:
    """Copy every listed model file (not ``exports/``) into a private temporary folder, verifying
    each as it is read; loaders parse the copy. Messages naming the copy name the bundle instead."""
    import shutil
    import tempfile

    path = Path(path)
    manifest = read_manifest(path, verify=False)
    names = [name for name in manifest["files"] if not name.startswith(EXPORTS_PREFIX)]
    folder = Path(tempfile.mkdtemp(prefix="forgeml-bundle-", dir=_scratch_dir(path, names)))  # 0700: nobody else can swap a file in
    try:
        for name in names:
            expected = manifest["files"][name]
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy_verified(path, name, expected, target)
        try:
            yield VerifiedBundle(path, folder, manifest)
        except ForgeError as exc:
            if exc.where and str(folder) in exc.where:
                exc.where = exc.where.replace(str(folder), str(path))
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _scratch_dir(path: Path, names: list[str]) -> str | None:
    """Memory (/dev/shm) when it has room for twice the files: on disk the copy's folders cost
    ~5 ms each to remove (30 ms of a 55 ms load for a bagged bundle); containers often give
    /dev/shm only 64 MB, so large bundles go to the usual temporary folder."""
    shm = "/dev/shm"
    try:
        size = sum((path / name).stat().st_size for name in names)
        free = os.statvfs(shm)
    except OSError:
        return None
    return shm if free.f_bavail * free.f_frsize > 2 * size and os.access(shm, os.W_OK) else None


def model_files(manifest: dict[str, Any]) -> dict[str, str]:
    """The files written with the model (what its version and weights checksum cover): not exports."""
    return {name: digest for name, digest in manifest.get("files", {}).items() if not name.startswith(EXPORTS_PREFIX)}


def load_predictor(path: str | Path) -> Any:
    """Verify checksums, then rebuild features, task and model from plain files."""
    with verified_bundle(path) as bundle:  # before the heavy imports below: a wrong path fails at once
        return _predictor_from(bundle)


REQUIRED = ("config.yaml", "features.json")  # what every tabular bundle's loader reads


def _predictor_from(bundle: VerifiedBundle) -> Any:
    manifest, folder = bundle.manifest, bundle.folder
    if manifest.get("task") == "lm":
        raise BundleError("this is a language-model bundle", where=str(bundle.path), hint="use `forgeml lm generate` or `forgeml lm eval` with it")
    for name in REQUIRED:
        if name not in manifest["files"]:
            raise BundleError(f"{name} is not listed in manifest.json", where=str(bundle.path), hint=_RESTORE)
    from forgeml.config import Config
    from forgeml.features.featureset import FeatureSet
    from forgeml.models.build import load_estimator
    from forgeml.models.tasks import Task
    from forgeml.predict import Predictor

    try:
        config = Config.from_yaml(folder / "config.yaml")
        featureset = FeatureSet.from_json(json.loads((folder / "features.json").read_text(encoding="utf-8")))
        task = Task.resolve(manifest["task"], manifest["loss"], featureset.target.output_size)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"bundle contents do not parse ({exc.__class__.__name__})", where=str(bundle.path), hint=_RESTORE) from None
    estimator = load_estimator(folder, config, task, featureset.input_spec())
    return Predictor(config, featureset, task, estimator)


def read_json(path: str | Path, name: str) -> Any:
    """A listed JSON file of the bundle (metrics, history, ...), verified; None if the bundle has
    none (older bundles lack some). A file on disk that the manifest does not list is refused."""
    path = Path(path)
    manifest = read_manifest(path, verify=False)
    if name not in manifest["files"]:
        if (path / name).exists():
            raise BundleError(f"{name} is not listed in manifest.json", where=str(path), hint="remove it, or " + _RESTORE)
        return None
    try:
        return json.loads(read_verified(path, name, manifest))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BundleError(f"{name} does not parse", where=str(path), hint=_RESTORE) from None
