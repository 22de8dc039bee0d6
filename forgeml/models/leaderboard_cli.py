"""``forgeml leaderboard RUN``: every model an ensemble fitted, with its out-of-fold score, fit
seconds, predict cost and ensemble weight (a single-model bundle shows its one row).

Typer only at module level: the CLI imports this at start-up (``--help`` stays fast). The rows
are ``models.leaderboard``'s, which the dashboard reads too."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from forgeml.cli_options import BUNDLE_HELP, RunsDir
from forgeml.models.leaderboard import COLUMNS, leaderboard_rows


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
