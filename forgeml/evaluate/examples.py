"""The held-out rows a model got most wrong, for the report: image thumbnails with their true and
predicted labels, and the most confident wrong text predictions.

"Worst" is the most confident wrong answer for classes (the errors a user should look at first:
mislabelled data, a confusing class, a shortcut the model learned) and the largest absolute
error for regression. Thumbnails are small PNGs embedded in the page, so the report stays one file.
"""
from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd

THUMBNAIL = 96
TEXT_CHARS = 240


def worst_rows(task: Any, y_true: np.ndarray, scores: np.ndarray, class_names: list[str] | None, count: int) -> list[dict[str, Any]]:
    """Row positions with true/predicted values and the score that ranks them, worst first."""
    if task.is_classification:
        predicted = scores.argmax(axis=1)
        confidence = scores.max(axis=1)
        wrong = np.flatnonzero(predicted != y_true)
        order = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
        names = class_names or [str(i) for i in range(scores.shape[1])]
        return [{"row": int(i), "true": names[int(y_true[i])], "predicted": names[int(predicted[i])],
                 "score": f"confidence {confidence[i]:.2f}"} for i in order]
    truth = np.asarray(y_true, dtype=float).reshape(len(y_true), -1)[:, 0]
    error = np.abs(scores[:, 0] - truth)
    order = np.argsort(-error, kind="stable")[:count]
    return [{"row": int(i), "true": f"{truth[i]:.4g}", "predicted": f"{scores[i, 0]:.4g}", "score": f"error {error[i]:.3g}"} for i in order]


def thumbnail_data_uri(path: str) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
    except (OSError, ValueError, UnidentifiedImageError):
        return None
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def error_examples(predictor: Any, frame: pd.DataFrame, y_true: np.ndarray, scores: np.ndarray, *, count: int = 8) -> dict[str, Any] | None:
    """``{"images": {feature: [...]}, "texts": {feature: [...]}}`` for the image and text inputs, or None."""
    from forgeml.features.image import resolve_path

    images = [f.name for f in predictor.featureset.features if f.type_name == "image"]
    texts = [f.name for f in predictor.featureset.features if f.type_name == "text"]
    if not (images or texts) or len(frame) == 0:
        return None
    rows = worst_rows(predictor.task, np.asarray(y_true), scores, predictor.class_names, count)
    out: dict[str, Any] = {"images": {}, "texts": {}, "count": len(rows)}
    for name in images:
        base_dir = frame[name].attrs.get("base_dir")
        entries = []
        for row in rows:
            value = frame[name].iloc[row["row"]]
            path = resolve_path(value, base_dir)
            entries.append({**row, "path": str(value), "src": thumbnail_data_uri(str(path)) if path else None})
        out["images"][name] = entries
    for name in texts:
        out["texts"][name] = [{**row, "text": _short(frame[name].iloc[row["row"]])} for row in rows]
    return out


def _short(value: Any) -> str:
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
