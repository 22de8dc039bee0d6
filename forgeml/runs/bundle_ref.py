"""A bundle named the way users name it: a folder, or the run id (or a unique prefix of it) that
``forgeml runs list`` shows — ``forgeml predict 20261206-1130 new.csv`` is what people type.

Imports neither torch nor pandas: the commands resolve the bundle before loading anything heavy.
"""
from __future__ import annotations

import os
from pathlib import Path

from forgeml.errors import BundleError, RunError

_HINT = "pass a bundle folder (runs/<id>/bundle) or a run id from `forgeml runs list`"


def resolve_bundle(argument: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """The bundle folder ``argument`` names: an existing path as is, else the bundle of the run
    whose id is or uniquely starts with it. Unknown or ambiguous names raise one ``ForgeError``
    listing the candidates; a run without a bundle (failed, interrupted) says so."""
    from forgeml.runs.registry import INDEX_NAME, RunRegistry, default_runs_root

    text = str(argument)
    path = Path(text).expanduser()
    if path.exists():
        return path
    root = Path(runs_dir) if runs_dir is not None else default_runs_root()
    looks_like_path = any(sep in text for sep in ("/", os.sep)) or text.startswith((".", "~"))
    if looks_like_path or not text.strip() or not (root / INDEX_NAME).is_file():
        # never create a runs folder just to look a typo up in it
        raise BundleError("bundle not found (no such folder or run id)", where=text, hint=_HINT)
    registry = RunRegistry(root)
    try:
        record = registry.get(text)
    except RunError as exc:
        if "matches several runs" in exc.message:
            raise
        recent = [r.id for r in registry.list(limit=5)]
        hint = ("recent runs: " + ", ".join(recent)) if recent else _HINT
        raise BundleError(f"no bundle folder or run id matches {text!r}", where=str(root), hint=hint) from None
    if not (record.bundle_dir / "manifest.json").is_file():
        raise BundleError(f"run {record.id} has no bundle (status: {record.status})", where=str(record.dir),
                          hint=f"only a completed run has one; see `forgeml runs show {record.id}`")
    return record.bundle_dir
