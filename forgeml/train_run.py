"""A training run as the CLI knows it: registry row, run folder, per-epoch metrics, checkpoints,
bundle, report — and the same code under ``torchrun`` (rank 0 writes, the others train).

``forgeml train``, ``forgeml demo`` and the refit of ``forgeml tune`` run this. It sits above the
Python API (it drives a ``Pipeline``) and beside tune, so it is not in ``runs/``, which the API
itself reads; the run folder's lifecycle that the LM trainer shares is ``runs.lifecycle``."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeml.errors import CheckpointError
from forgeml.runs.lifecycle import MetricsLog, find_resumable, log_failure, open_run, resumable_status


@dataclass
class RunResult:
    run_id: str
    task: str
    split: str
    metrics: dict[str, Any]
    report_path: Path
    bundle_path: Path


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


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}
