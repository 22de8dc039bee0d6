"""``forgeml leaderboard RUN``: every model an ensemble fitted, with its out-of-fold score, fit
seconds, predict cost and ensemble weight (a single-model bundle shows its one row).

Typer only at module level: the CLI imports this at start-up (``--help`` stays fast)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from forgeml.cli_options import BUNDLE_HELP, RunsDir

COLUMNS = ("member", "family", "status", "score_name", "score", "val_loss", "weight", "fit_seconds", "predict_ms_per_row")


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


def register(app: typer.Typer) -> None:
    @app.command()
    def leaderboard(bundle: str = typer.Argument(..., help=BUNDLE_HELP), runs_dir: Optional[Path] = RunsDir) -> None:
        """Every model of a run's ensemble: out-of-fold score, fit seconds, predict ms/row, weight."""
        from rich.console import Console
        from rich.table import Table

        from forgeml.runs.bundle_ref import resolve_bundle

        rows = leaderboard_rows(resolve_bundle(bundle, runs_dir))
        table = Table(title="leaderboard (out-of-fold validation)")
        for column in COLUMNS:
            table.add_column(column.replace("_", " "), justify="right" if column not in ("member", "family", "status", "score_name") else "left")
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in COLUMNS))
        Console().print(table)
