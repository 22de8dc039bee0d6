"""Data parallelism for the LM: 2 processes (gloo, DDP or FSDP) end with the weights 1 process
reaches with the same global batch, because each rank reads its own share of the same windows
and the gradients are averaged."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from forgeml.lm.corpus import TokenCorpus, prepare_corpus
from forgeml.lm.train import LMTrainer
from forgeml.train.distributed import DistContext
from forgeml.train.trainer import TrainingInterrupted

from .conftest import tiny_config

OVERRIDES = {"train.max_steps": 4, "train.eval_every": 4}


def _config(vocab: int, **extra):
    config = tiny_config(**OVERRIDES, **extra)
    return config.model_copy(update={"model": config.model.model_copy(update={"vocab_size": vocab})})


def _worker(rank: int, store: str, out: str, corpus: TokenCorpus) -> None:
    os.environ.update(WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
    torch_dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2, timeout=timedelta(seconds=60))
    try:
        context = DistContext.from_env()
        results = {}
        for strategy in ("ddp", "fsdp"):
            rows: list[dict] = []
            trainer = LMTrainer(_config(corpus.meta["vocab_size"], **{"train.strategy": strategy}), dist=context,
                                checkpoint_dir=Path(out) / f"{strategy}-{rank}", log=rows.append)
            result = trainer.fit(corpus)
            results[strategy] = {k: v.clone() for k, v in result.model.state_dict().items()} if strategy == "ddp" else \
                torch.load(Path(out) / "fsdp-0" / "last.pt", weights_only=True)["model"] if rank == 0 else {}
            results[f"{strategy}_rows"] = rows
        # FSDP stopped after step 3 by a signal, then resumed: the optimizer's shards come back too
        config = _config(corpus.meta["vocab_size"], **{"train.strategy": "fsdp"})
        stopped = LMTrainer(config, dist=context, checkpoint_dir=Path(out) / "fsdp-resume")
        stopped.log = lambda row: setattr(stopped, "_stop_signal", 15) if row.get("step") == 2 else None
        try:
            stopped.fit(corpus)
        except TrainingInterrupted:
            results["fsdp_stopped"] = True
        LMTrainer(config, dist=context, checkpoint_dir=Path(out) / "fsdp-resume").fit(corpus, resume=True)
        if rank == 0:
            results["fsdp_resumed"] = torch.load(Path(out) / "fsdp-resume" / "last.pt", weights_only=True)["model"]
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        torch_dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(corpus_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm-ddp")
    corpus = prepare_corpus(corpus_dir, tiny_config().corpus, cache_dir=out / "cache")
    mp.start_processes(_worker, args=(str(out / "store"), str(out), corpus), nprocs=2, join=True, start_method="spawn")
    single = LMTrainer(_config(corpus.meta["vocab_size"])).fit(corpus)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)], single, out


def test_two_processes_reach_the_weights_of_one_with_the_same_global_batch(runs) -> None:
    (rank0, rank1), single, _ = runs
    for name, tensor in single.model.state_dict().items():
        torch.testing.assert_close(rank0["ddp"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
        assert torch.equal(rank0["ddp"][name], rank1["ddp"][name])
    # and training moved them: the comparison is not between two untouched initialisations
    torch.manual_seed(0)
    assert single.history[-1]["val_loss"] < single.history[0]["train_loss"]


def test_fsdp_gathers_full_weights_equal_to_ddp(runs) -> None:
    (rank0, _), single, out = runs
    for name, tensor in single.model.state_dict().items():
        torch.testing.assert_close(rank0["fsdp"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    assert not (out / "fsdp-1").exists() and not (out / "ddp-1").exists()  # only rank 0 writes


def test_fsdp_resumes_to_the_weights_of_an_uninterrupted_run(runs) -> None:
    (rank0, rank1), _, _ = runs
    assert rank0["fsdp_stopped"] and rank1["fsdp_stopped"]
    for name, tensor in rank0["fsdp"].items():
        torch.testing.assert_close(rank0["fsdp_resumed"][name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_ranks_log_the_same_reduced_numbers(runs) -> None:
    (rank0, rank1), single, _ = runs
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("tokens_per_s", "mfu")} for r in rows]
    assert strip(rank0["ddp_rows"]) == strip(rank1["ddp_rows"])
    val = [r["val_loss"] for r in rank0["ddp_rows"] if "val_loss" in r]
    assert val[-1] == pytest.approx(single.metrics["val_loss"], rel=1e-4)
