"""A bundle's leaderboard: every model an ensemble fitted (out-of-fold score, fit seconds,
predict cost, weight), read from its files without loading a model, for ``forgeml leaderboard``
and the dashboard alike."""
from __future__ import annotations

from pathlib import Path
from typing import Any

COLUMNS = ("member", "family", "status", "score_name", "score", "val_loss", "weight", "fit_seconds", "predict_ms_per_row", "refit", "note")


def leaderboard_rows(bundle: Path) -> list[dict[str, Any]]:
    """The bundle's leaderboard without loading any model: ensemble.json's, or one row built from
    the config and metrics of a single-model bundle."""
    import json

    from forgeml.errors import BundleError
    from forgeml.models.ensemble import SPEC_FILE

    spec_path = bundle / SPEC_FILE
    if spec_path.is_file():
        try:
            return json.loads(spec_path.read_text(encoding="utf-8"))["leaderboard"]
        except (ValueError, KeyError):
            raise BundleError(f"{SPEC_FILE} is not a forgeml ensemble description", where=str(spec_path), hint="the bundle is corrupted; retrain or restore it") from None
    import yaml

    try:
        config = yaml.safe_load((bundle / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        raise BundleError("no readable config.yaml", where=str(bundle), hint="pass a bundle folder or a run id (see `forgeml runs list`)") from None
    family = (config.get("model") or {}).get("type", "?")
    return [{"member": family, "family": family, "status": "fitted", "weight": 1.0}]
