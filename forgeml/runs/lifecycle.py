"""A run folder's life, shared by every kind of training run (``forgeml train``'s
``train_run``, ``forgeml lm train``'s ``lm.run``): created (or reopened to resume) by rank 0 and
its id told to the other ranks, per-epoch rows appended to metrics.jsonl and train.log, and a
failure written into train.log with the status that says whether ``--resume`` can continue it."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeml.errors import CheckpointError
from forgeml.runs.liveness import RunLock


class MetricsLog:
    """Appends each epoch's row to runs/<id>/metrics.jsonl and train.log as it happens."""

    def __init__(self, registry: Any, run_id: str, logger: logging.Logger):
        self.registry, self.run_id, self.logger = registry, run_id, logger

    def on_data_prepared(self, notes: list[str]) -> None:
        """What cleaning and splitting did, in train.log and on the terminal: a skipped image or a
        thousand dropped duplicates should not wait for someone to open the report."""
        for note in notes:
            self.logger.info("data: %s", note)
        if notes:  # piped to a file, each note stays one line (console: no wrapping off a terminal)
            from rich.markup import escape

            from forgeml.console import console

            console(stderr=True, highlight=False).print("\n".join(f"[dim]data: {escape(note)}[/dim]" for note in notes))

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        self.registry.append_metrics(self.run_id, row)
        self.logger.info("epoch %s %s", row.get("epoch"), json.dumps({k: v for k, v in row.items() if k != "epoch"}))


def _logger(run_dir: Path) -> logging.Logger:
    logger = logging.getLogger(f"forgeml.run.{run_dir.name}")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger


@dataclass
class OpenedRun:
    """A run as one rank sees it: every rank knows the id and folder; only rank 0 has the record
    and holds the run's lock (``runs.liveness``: a run whose lock is free has died)."""

    id: str
    record: Any  # the registry row (rank 0), None on the other ranks
    dir: Path
    logger: logging.Logger
    lock: Any = None


def open_run(registry: Any, dist: Any, name: str, config_yaml: str, source: str, resume: bool, what: str = "run") -> OpenedRun:
    """Rank 0 creates the run (or finds the latest interrupted one of this name to resume) and
    tells the other ranks its id. ``what`` names the kind of run in the error ("LM run")."""
    run_id = None
    if dist.is_main:
        if resume:
            run_id = registry.reopen(find_resumable(registry, name, what).id).id  # `runs list` and the dashboard show it running again
        else:
            run_id = registry.create(name, config_yaml, source).id
    run_id = dist.broadcast(run_id)
    # only rank 0 touches the registry: on another host the runs folder is another disk, without this run
    record = registry.get(run_id) if dist.is_main else None
    run_dir = record.dir if record is not None else registry.run_dir(run_id)
    logger = _logger(run_dir) if dist.is_main else logging.getLogger("forgeml.run.worker")
    lock = RunLock(run_dir) if dist.is_main else None
    return OpenedRun(run_id, record, run_dir, logger, lock)


def find_resumable(registry: Any, name: str, what: str = "run") -> Any:
    """The latest interrupted run of this name (never another data set's), or ``CheckpointError``."""
    record = registry.latest_resumable(name)
    if record is None:
        raise CheckpointError(f"no interrupted {what} named {name!r} with a checkpoint to resume", where=str(registry.root), hint="start without --resume")
    return record


def log_failure(logger: logging.Logger, exc: BaseException, status: str) -> None:
    """The error in the run's own train.log: one line saying what (the line the CLI printed),
    then the traceback — a failed run found later in `forgeml runs list` or the dashboard
    must say why without the terminal it ran in."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    logger.error("%s: %s%s", status, type(exc).__name__, f": {message}" if message else "", exc_info=exc)


def resumable_status(record: Any) -> str:
    """A run that failed after writing a checkpoint (say, another rank of the job crashed) can be
    continued with --resume, so it is "interrupted"; without a checkpoint it is "failed"."""
    return "interrupted" if record.checkpoint_path.is_file() else "failed"
