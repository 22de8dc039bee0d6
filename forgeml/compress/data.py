"""The rows a compression method and the trade-off table use: where they come from.

A bundle's config.yaml records the training file (``data.path``, absolute, written by
``forgeml train`` and ``Pipeline.fit`` on a path) and how it was split (``data.split``: shares,
seed, a split column or separate validation/test files). Re-running the same load → clean →
split on that file with that config gives the same train/validation/test rows the bundle was
trained and evaluated on. ``--data PATH`` replaces the recorded file (a moved file, or a bundle
fitted on an in-memory DataFrame, which records none) and is split the same way.

The split frames are transformed by the *bundle's* FeatureSet (its vocabularies and scalers),
never by a re-fitted one, so the arrays are exactly what the bundle's model sees at predict time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeml.compress.errors import CompressError


@dataclass
class PreparedData:
    """Split rows for compression: frames, the bundle FeatureSet's arrays and encoded targets."""

    frames: dict[str, pd.DataFrame]  # "train", "validation" (may be empty), "test" (may be absent)
    arrays: dict[str, dict[str, np.ndarray]]
    targets: dict[str, np.ndarray]
    source: str  # the file, for messages and the table's caption

    @property
    def test_split(self) -> str:
        """The held-out split the table scores on: test, else validation (as training's report does)."""
        return "test" if len(self.frames.get("test", ())) else "validation"


def data_path(config: Any, given: Path | None) -> Path | None:
    """``--data`` when given, else the file the bundle was trained on when it still exists."""
    if given is not None:
        if not Path(given).exists():
            raise CompressError("data file not found", where=str(given), hint="pass the file the bundle was trained on with --data")
        return Path(given)
    recorded = getattr(config.data, "path", None)
    return Path(recorded) if recorded and Path(recorded).exists() else None


def require_data(data: PreparedData | None, needed_by: str, config: Any) -> PreparedData:
    """``data``, or the one-line refusal for a method that cannot work without rows."""
    if data is None:
        recorded = getattr(config.data, "path", None)
        why = f"the bundle's training file {recorded} no longer exists" if recorded else "the bundle records no training file (fitted on a DataFrame)"
        raise CompressError(f"{needed_by} needs the training rows, and {why}", where="--data",
                            hint="pass the file the bundle was trained on with --data PATH")
    return data


def prepare_data(predictor: Any, path: Path | None) -> PreparedData | None:
    """The bundle's splits of ``path`` (see the module docstring), or None without a file."""
    if path is None:
        return None
    from forgeml.config import Config
    from forgeml.workflow import prepare

    config = predictor.config
    if Path(path).resolve() != Path(config.data.path or "").resolve():
        config = Config.from_dict({**config.model_dump(mode="json"), "data": {**config.data.model_dump(mode="json"), "path": str(Path(path).resolve())}})
    prepared = prepare(config, path)  # same cleaning, same split seed → the same rows
    featureset = predictor.featureset
    frames = {name: frame for name, frame in prepared.frames.items() if frame is not None}
    arrays = {name: featureset.transform(frame, source=f"{name} split") for name, frame in frames.items()}
    targets = {name: featureset.target.encode(frame, source=f"{name} split") for name, frame in frames.items()}
    return PreparedData(frames, arrays, targets, str(path))
