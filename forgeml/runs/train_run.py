"""A training run as the CLI knows it: registry row, run folder, per-epoch metrics, checkpoints,
bundle, report — and the same code under ``torchrun`` (rank 0 writes, the others train)."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeml.errors import CheckpointError
from forgeml.runs.liveness import RunLock


@dataclass
class RunResult:
    run_id: str
    task: str
    split: str
    metrics: dict[str, Any]
    report_path: Path
    bundle_path: Path


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


def run_training(config: Any, data: Any, *, registry: Any, name: str, resume: bool, log: tuple[str, ...] | list[str] = (),
                 tuning: dict[str, Any] | None = None) -> RunResult | None:
    """Returns the result on rank 0 and None on the other ranks. ``log``: trackers (``runs.loggers``);
    ``tuning``: the study this run refits the best trial of (its report gets a Tuning section)."""
    from forgeml.train.distributed import rank_session

    with rank_session(config.train.device) as dist:
        return _run_training(dist, config, data, registry=registry, name=name, resume=resume, log=log, tuning=tuning)


def _run_training(dist: Any, config: Any, data: Any, *, registry: Any, name: str, resume: bool, log: tuple[str, ...] | list[str],
                  tuning: dict[str, Any] | None = None) -> RunResult | None:
    from forgeml.api import Pipeline
    from forgeml.evaluate.metrics import HEADLINE
    from forgeml.train.trainer import TrainingInterrupted

    if log:
        from forgeml.runs.loggers import build_loggers, check_loggers

        check_loggers(log)  # before a run folder exists
    if resume and dist.is_main:
        find_resumable(registry, name)  # nothing to resume: say so before seconds of reading data
    pipeline = Pipeline(config=config)
    pipeline.tuning_ = tuning
    started = time.monotonic()  # train.time_budget counts reading and preparing the data too
    prepared = pipeline.prepare(data)  # a wrong --target or an unreadable file fails here, before a run folder exists
    run = open_run(registry, dist, name, config.to_yaml(), str(data), resume)
    run_id, record, run_dir, logger = run.id, run.record, run.dir, run.logger
    logger.info("%s run %s on %s (world size %d)", "resuming" if resume else "starting", run_id, data, dist.world_size)
    callbacks = [MetricsLog(registry, run_id, logger)] if dist.is_main else []
    trackers = build_loggers(log, record, config) if log and dist.is_main else []
    callbacks += trackers
    try:  # the data notes reach MetricsLog (data: lines and train.log), not warnings
        pipeline.fit_prepared(prepared, checkpoint_dir=run_dir / "checkpoint", callbacks=callbacks, resume=resume, dist=dist, started=started)
        if not dist.is_main:
            return None
        bundle = pipeline.save(record.dir / "bundle")  # a full disk here fails the run too, not leaves it "running"
    except TrainingInterrupted as stop:
        if dist.is_main:
            registry.finish(run_id, "interrupted", config.task, config.model.type, None, None, {})
            logger.info("interrupted; checkpoint %s", stop.checkpoint)
        raise CheckpointError(
            f"training interrupted; checkpoint saved for run {run_id}",
            hint="continue with the same command plus --resume",
        ) from None
    except BaseException as exc:  # a checkpoint that did not fit, bad data found mid-way, a bug
        if dist.is_main:  # with a checkpoint the run stays resumable ("interrupted"), else "failed"
            status = resumable_status(record)
            log_failure(logger, exc, status)
            registry.finish(run_id, status, config.task, config.model.type, None, None, {})
        raise
    task = pipeline.predictor_.task.name
    metrics = pipeline.metrics_
    headline = HEADLINE[task]
    registry.finish(run_id, "completed", task, pipeline.predictor_.config.model.type, headline, metrics.get(headline), _scalars(metrics))
    for tracker in trackers:
        tracker.finish(metrics)
    logger.info("completed in %.1f s; %s=%s", time.monotonic() - started, headline, metrics.get(headline))
    return RunResult(run_id, task, pipeline.test_split_, metrics, bundle / "report.html", bundle)


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


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}
