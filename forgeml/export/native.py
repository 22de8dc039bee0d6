"""Exports of models that are not torch networks: LightGBM's own text model.

A gbm bundle scores with LightGBM boosters (``gbm_model_<i>.txt``); onnx, torchscript and
safetensors trace a torch network, which it does not have. ``forgeml export --format lightgbm``
publishes the boosters under ``exports/`` with the name people look for (``model.txt``; one
``model_<target>.txt`` per regression target), verified like every export: each file is loaded
back with LightGBM and compared with the bundle's own booster on verification rows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from forgeml.export.verification import ExportError, full_arrays, verification_arrays


class NativeFormat(NamedTuple):
    check: Callable[[Any, str], None]  # raises ExportError when the bundle's model is not this kind
    build: Callable[..., tuple[list[Path], dict[str, Any], float, int]]  # (files, info, max |diff|, rows)


def _boosters(predictor: Any) -> list[Any]:
    return list(getattr(predictor.estimator, "boosters", None) or [])


def check_lightgbm(predictor: Any, where: str) -> None:
    if predictor.config.model.type != "gbm":
        raise ExportError(f"a {predictor.config.model.type!r} bundle has no LightGBM model", where=where,
                          hint="use --format onnx, torchscript or safetensors for torch models")
    if not _boosters(predictor):
        raise ExportError("a bagged LightGBM bundle averages several boosters, which no single LightGBM file reproduces",
                          where=where, hint="its members are fold<k>/gbm_model_0.txt in the bundle; or train with train.bagging_folds=1")


def build_lightgbm(predictor: Any, directory: Path, data: Any = None, tolerance: float = 1e-4) -> tuple[list[Path], dict[str, Any], float, int]:
    import lightgbm as lgb

    boosters = _boosters(predictor)
    targets = list(predictor.config.target)
    names = ["model.txt"] if len(boosters) == 1 else [f"model_{_safe(target)}.txt" for target in targets]
    arrays = verification_arrays(predictor, data)
    matrix = predictor.estimator._matrix(full_arrays(predictor, arrays))
    paths, worst = [], 0.0
    for name, booster in zip(names, boosters):
        path = directory / name
        path.write_text(booster.model_to_string(num_iteration=booster.best_iteration or None), encoding="utf-8")
        expected = booster.predict(matrix, num_iteration=booster.best_iteration or None)
        got = lgb.Booster(model_file=str(path)).predict(matrix)
        worst = max(worst, float(np.max(np.abs(np.asarray(got) - np.asarray(expected)))) if len(matrix) else 0.0)
        paths.append(path)
    if not np.isfinite(worst) or worst > tolerance:
        raise ExportError(f"lightgbm export differs from the bundle's model by {worst:.3g} (tolerance {tolerance:g}); nothing was written",
                          hint="report this with the bundle")
    info = {"files": [p.name for p in paths], "targets": targets, "task": predictor.task.name,
            "features": list(predictor.estimator.columns), "categorical_features": list(predictor.estimator.categorical),
            "note": "inputs are the bundle's transformed features (features.json), in this order; categories as codes"}
    return paths, info, worst, len(matrix)


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^\w.-]", "_", str(name)) or "target"


NATIVE_FORMATS: dict[str, NativeFormat] = {"lightgbm": NativeFormat(check_lightgbm, build_lightgbm)}
