"""``forgeml runs list | show | compare | prune``: imports only typer at module level.

Each command first finishes the "running" runs whose process is gone (``liveness``), so a run
killed mid-training shows as failed (or interrupted, when it can be resumed) rather than running
forever, and can be pruned.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from forgeml.cli_options import RunsDir

# What `forgeml runs prune` may delete, by flag; running and completed runs are never pruned.
PRUNABLE: dict[str, str] = {"failed": "failed", "interrupted": "interrupted"}


def _registry(runs_dir: Optional[Path]) -> Any:
    from forgeml.runs.liveness import mark_dead_runs
    from forgeml.runs.registry import RunRegistry, default_runs_root

    registry = RunRegistry(runs_dir or default_runs_root())
    if registry.index_path.exists():  # never create a runs folder just to look at it
        mark_dead_runs(registry)
    return registry


def _print(renderable: Any) -> None:
    from forgeml.console import console

    console().print(renderable)


def register(app: typer.Typer) -> None:
    runs_app = typer.Typer(no_args_is_help=True, help="List, show, compare and prune runs.")
    app.add_typer(runs_app, name="runs")

    @runs_app.command("list")
    def runs_list(limit: int = typer.Option(50, help="How many runs."), runs_dir: Optional[Path] = RunsDir) -> None:
        """Runs so far, newest first, with each run's key metric."""
        from forgeml.runs.views import render_list

        _print(render_list(_registry(runs_dir).list(limit=limit)))

    @runs_app.command("show")
    def runs_show(run_id: str, runs_dir: Optional[Path] = RunsDir) -> None:
        """One run: status, metrics, paths, epochs."""
        from forgeml.runs.views import render_show

        registry = _registry(runs_dir)
        record = registry.get(run_id)
        _print(render_show(record, registry.history(record.id)))

    @runs_app.command("compare")
    def runs_compare(first: str, second: str, runs_dir: Optional[Path] = RunsDir) -> None:
        """Two runs side by side: metrics and config differences."""
        from forgeml.runs.views import render_compare

        registry = _registry(runs_dir)
        a, b = registry.get(first), registry.get(second)
        _print(render_compare(a, b, registry.history(a.id), registry.history(b.id)))

    @runs_app.command("prune")
    def runs_prune(
        failed: bool = typer.Option(False, "--failed", help="Delete failed runs (bad input, a crash, a killed process without a checkpoint)."),
        interrupted: bool = typer.Option(False, "--interrupted", help="Delete interrupted runs too (they have a checkpoint --resume could continue)."),
        dry_run: bool = typer.Option(False, "--dry-run", "-n", help="List what would be deleted, delete nothing."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking (needed when not on a terminal)."),
        runs_dir: Optional[Path] = RunsDir,
    ) -> None:
        """Delete failed (and with --interrupted, interrupted) runs: their folders and index rows.
        Lists them first and asks; --dry-run only lists, --yes does not ask."""
        wanted = {"failed": failed, "interrupted": interrupted}
        prune(_registry(runs_dir), [PRUNABLE[flag] for flag, on in wanted.items() if on], dry_run=dry_run, yes=yes)


def prune(registry: Any, statuses: list[str], *, dry_run: bool, yes: bool) -> int:
    """Delete the runs whose status is in ``statuses``; returns how many were deleted."""
    import sys

    from forgeml.errors import ConfigError
    from forgeml.runs.views import render_list

    if not statuses:
        raise ConfigError("say which runs to delete", where="forgeml runs prune",
                          hint="add --failed (and --interrupted for resumable ones); --dry-run lists them first")
    if not registry.index_path.exists():
        _print(f"nothing to prune: no runs in {registry.root}")
        return 0
    doomed = [record for record in registry.list(limit=1_000_000) if record.status in statuses]
    if not doomed:
        _print(f"nothing to prune: no {' or '.join(statuses)} runs in {registry.root}")
        return 0
    size = sum(_folder_bytes(record.dir) for record in doomed)
    _print(render_list(doomed))
    what = f"{len(doomed)} {' or '.join(statuses)} run{'s' if len(doomed) != 1 else ''} ({_size(size)})"
    if dry_run:
        _print(f"dry run: would delete {what}; nothing deleted")
        return 0
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"not deleting {what} without a confirmation", where="forgeml runs prune",
                              hint="add --yes to delete them, or --dry-run to only list them")
        if not typer.confirm(f"delete {what}?", default=False):
            _print("nothing deleted")
            return 0
    for record in doomed:
        registry.delete(record.id)
    _print(f"deleted {what}")
    return len(doomed)


def _folder_bytes(folder: Path) -> int:
    import os

    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
