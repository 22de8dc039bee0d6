"""An LM training run as the CLI knows it: registry row, corpus cache, training, bundle — and the
same code under ``torchrun`` (every host's local rank 0 prepares its corpus cache, global rank 0
writes the run)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeml.errors import CheckpointError, ConfigError
from forgeml.lm.config import LMConfig


@dataclass
class LMRunResult:
    run_id: str
    metrics: dict[str, Any]
    bundle_path: Path
    corpus: dict[str, Any]


def run_lm_training(config: LMConfig, corpus_path: Path, *, registry: Any, name: str, resume: bool,
                    cache_dir: Path | None = None) -> LMRunResult | None:
    """Returns the result on rank 0 and None on the other ranks."""
    from forgeml.train.distributed import rank_session

    with rank_session(config.train.device) as dist:
        return _run_lm_training(dist, config, corpus_path, registry=registry, name=name, resume=resume, cache_dir=cache_dir)


def _run_lm_training(dist: Any, config: LMConfig, corpus_path: Path, *, registry: Any, name: str, resume: bool,
                     cache_dir: Path | None) -> LMRunResult | None:
    from forgeml.lm.bundle import write_lm_bundle
    from forgeml.lm.corpus import prepare_corpus
    from forgeml.lm.train import LMTrainer
    from forgeml.runs.lifecycle import log_failure, open_run, resumable_status
    from forgeml.train.trainer import TrainingInterrupted

    check_same_nnodes(dist)
    corpus = _prepare_on_each_host(dist, lambda: prepare_corpus(corpus_path, config.corpus, cache_dir))
    config = LMConfig.from_dict({**config.model_dump(mode="json"), "model": {**config.model.model_dump(mode="json"), "vocab_size": corpus.meta["vocab_size"]}})
    run = open_run(registry, dist, name, config.to_yaml(), str(corpus_path), resume, what="LM run")
    run_id, record, run_dir, logger = run.id, run.record, run.dir, run.logger
    logger.info("%s LM run %s on %s (world size %d; corpus %s, %s)", "resuming" if resume else "starting", run_id, corpus_path,
                dist.world_size, corpus.meta["key"], "cache reused" if corpus.reused else "cache built")

    def log(row: dict[str, Any]) -> None:
        if dist.is_main:
            registry.append_metrics(run_id, row)
            logger.info("step %s %s", row.get("step"), json.dumps({k: v for k, v in row.items() if k != "step"}))

    trainer = LMTrainer(config, checkpoint_dir=run_dir / "checkpoint", dist=dist, log=log)
    try:
        result = trainer.fit(corpus, resume=resume)
    except TrainingInterrupted as stop:
        if dist.is_main:
            registry.finish(run_id, "interrupted", "lm", "gpt", None, None, {})
            logger.info("interrupted; checkpoint %s", stop.checkpoint)
        raise CheckpointError(f"training interrupted; checkpoint saved for run {run_id}", hint="continue with the same command plus --resume") from None
    except BaseException as exc:  # a checkpoint that did not fit, a peer that died mid-step, a bug
        if dist.is_main:  # keep the run resumable if it can be
            status = resumable_status(record)
            log_failure(logger, exc, status)
            registry.finish(run_id, status, "lm", "gpt", None, None, {})
        raise
    if not dist.is_main:
        return None
    corpus_meta = {**corpus.meta, "path": str(corpus_path)}
    bundle = write_lm_bundle(run_dir / "bundle", result.model, corpus.tokenizer_json, config, result.metrics, corpus_meta)
    scalars = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    registry.finish(run_id, "completed", "lm", "gpt", "val_loss", result.metrics.get("val_loss"), scalars)
    logger.info("completed in %.1f s; val_loss=%s", result.seconds, result.metrics.get("val_loss"))
    return LMRunResult(run_id, result.metrics, bundle, corpus_meta)


def _prepare_on_each_host(dist: Any, prepare: Any) -> Any:
    """Local rank 0 of every host builds (or finds) the corpus cache while its other ranks wait,
    then they all open it; every rank checks it holds the same tokenizer as rank 0."""
    import hashlib

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    corpus = prepare() if local_rank == 0 else None
    dist.barrier()
    if corpus is None:
        corpus = prepare()  # the cache is there now: this only hashes the files
    digest = hashlib.sha256(corpus.tokenizer_json.encode()).hexdigest()
    if dist.broadcast(digest) != digest:
        raise ConfigError("this host's corpus gives a different tokenizer than rank 0's",
                          where=f"rank {dist.rank}", hint="give every host the same corpus files (same paths' contents)")
    return corpus


def check_same_nnodes(dist: Any) -> None:
    """Every host must be started with the same --nnodes. torchrun's static rendezvous takes the
    node count from node 0, so a host started with another count would silently join a job of a
    different shape; we compare what each host was told (FORGEML_NNODES, set by our launcher)."""
    if not dist.enabled or "FORGEML_NNODES" not in os.environ:
        return
    import torch
    import torch.distributed as torch_dist

    mine = torch.tensor([int(os.environ["FORGEML_NNODES"])], device=dist.device)
    gathered = [torch.zeros_like(mine) for _ in range(dist.world_size)]
    torch_dist.all_gather(gathered, mine)
    counts = sorted({int(t) for t in gathered})
    if len(counts) > 1:
        raise ConfigError(f"the hosts were started with different --nnodes ({', '.join(map(str, counts))})",
                          where=f"rank {dist.rank}", hint="start every host with the same --nnodes")
