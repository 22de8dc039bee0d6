"""Data parallelism: shards, gradient averaging by DDP, one writer, all ranks stopping together.

The two-rank test starts its processes with ``torch.multiprocessing`` and a gloo process group
over a file store (no ports to race for), exactly what torchrun would set up on one host.
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn import functional as F

from forgeml.config import TrainConfig
from forgeml.train.checkpoint import LAST
from forgeml.train.distributed import DistContext
from forgeml.train.trainer import TensorData, Trainer, TrainingInterrupted

ROWS, GLOBAL_BATCH = 96, 16  # divisible, so both ranks see whole batches: 6 steps per epoch


def _config(**overrides) -> TrainConfig:
    options = dict(
        epochs=3, batch_size=GLOBAL_BATCH, optimizer="sgd", learning_rate=0.05, momentum=0.9, weight_decay=0.0,
        schedule="none", grad_clip=None, early_stopping_patience=0, progress=False, threads=1, seed=3,
    )
    options.update(overrides)
    return TrainConfig(**options)


class _Net(nn.Module):
    def __init__(self, norm: bool = False):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8) if norm else nn.Identity(), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.body(inputs["x"])  # (B, 1)


def _net(norm: bool = False) -> _Net:
    torch.manual_seed(0)
    return _Net(norm)


def _data(rows: int = ROWS, seed: int = 0) -> TensorData:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 4, generator=generator)
    return TensorData({"x": x}, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]))


# ----------------------------------------------------------------------------- single process
def test_single_process_context_is_off_and_passes_values_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context = DistContext.from_env()
    assert (context.rank, context.world_size, context.enabled, context.is_main) == (0, 1, False, True)
    assert context.any_flag(True) is True and context.any_flag(False) is False
    assert context.broadcast("run-id") == "run-id"
    context.barrier()  # no process group: a no-op, not an error


def test_each_rank_takes_a_disjoint_equal_shard_of_the_epoch_order() -> None:
    config = _config()
    single = Trainer(config)._epoch_order(ROWS + 1, epoch=2)
    shards = [Trainer(config, dist=DistContext(rank, 2, 2))._epoch_order(ROWS + 1, epoch=2) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == ROWS // 2  # the odd row out is dropped: equal step counts
    assert not set(shards[0].tolist()) & set(shards[1].tolist())
    assert torch.equal(shards[0], single[0::2][: ROWS // 2]) and torch.equal(shards[1], single[1::2][: ROWS // 2])
    # a global batch of 16 is 8 rows per rank, so the step count matches one process
    assert Trainer(config, dist=DistContext(0, 2, 2))._local_batch_size() == GLOBAL_BATCH // 2
    assert Trainer(config, dist=DistContext(0, 2, 2))._steps_per_epoch(ROWS) == Trainer(config)._steps_per_epoch(ROWS)


# ----------------------------------------------------------------------------- two processes
def _worker(rank: int, store: str, out: str) -> None:
    os.environ.update(WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
    # a short timeout: a rank left waiting in a collective fails the test instead of hanging it
    torch_dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2, timeout=timedelta(seconds=60))
    try:
        context = DistContext.from_env()
        results: dict = {"rank": context.rank, "world_size": context.world_size, "run_id": context.broadcast(f"id-from-{rank}")}

        # 1. plain model: DDP-averaged gradients of two half batches equal one process's full batch
        model = _net()
        Trainer(_config(), dist=context, checkpoint_dir=Path(out) / f"plain-{rank}").fit(model, F.mse_loss, _data())
        results["plain"] = model.state_dict()

        # 2. batch norm + early stopping on validation: ranks must agree on every decision
        model = _net(norm=True)
        config = _config(epochs=6, early_stopping_patience=2, learning_rate=0.02)
        fit = Trainer(config, dist=context).fit(model, F.mse_loss, _data(), _data(40, seed=1))
        results["norm"] = model.state_dict()
        results["norm_history"] = [{k: v for k, v in row.items() if k != "seconds"} for row in fit.history]

        # 3. a stop signal on rank 1 only: both ranks stop at the same step, rank 0 checkpoints
        trainer = Trainer(_config(epochs=2), dist=context, checkpoint_dir=Path(out) / "stopped")
        calls = [0]

        def loss_fn(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            calls[0] += 1
            if rank == 1 and calls[0] == 4:
                trainer._stop_signal = 15
            return F.mse_loss(outputs, targets)

        try:
            trainer.fit(_net(), loss_fn, _data())
        except TrainingInterrupted as stop:
            results["stopped_after"] = calls[0]
            results["checkpoint"] = str(stop.checkpoint) if stop.checkpoint else None
        torch.save(results, Path(out) / f"rank{rank}.pt")
        torch_dist.barrier()  # neither rank tears gloo down while the other still talks to it (issue 17's SIGABRT)
    finally:
        torch_dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    mp.start_processes(_worker, args=(str(out / "store"), str(out)), nprocs=2, join=True, start_method="spawn")
    return [torch.load(out / f"rank{rank}.pt", weights_only=True) | {"out": out} for rank in (0, 1)]


def test_ranks_join_one_group_and_share_rank_zeros_values(two_ranks: list[dict]) -> None:
    assert [r["rank"] for r in two_ranks] == [0, 1] and {r["world_size"] for r in two_ranks} == {2}
    assert {r["run_id"] for r in two_ranks} == {"id-from-0"}


def test_ddp_ends_with_the_same_weights_on_both_ranks(two_ranks: list[dict]) -> None:
    for key in ("plain", "norm"):
        first, second = two_ranks[0][key], two_ranks[1][key]
        for name in first:
            assert torch.equal(first[name], second[name]), f"{key}: {name} differs between ranks"
    assert two_ranks[0]["norm_history"] == two_ranks[1]["norm_history"]


def test_ddp_averages_gradients_like_one_process_with_the_global_batch(two_ranks: list[dict]) -> None:
    model = _net()
    Trainer(_config()).fit(model, F.mse_loss, _data())
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(two_ranks[0]["plain"][name], tensor, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(model.state_dict()["body.0.weight"], _net().state_dict()["body.0.weight"])


def test_only_rank_zero_writes_checkpoints(two_ranks: list[dict]) -> None:
    out = two_ranks[0]["out"]
    checkpoint = torch.load(out / "plain-0" / LAST, weights_only=True)
    assert checkpoint["world_size"] == 2 and checkpoint["global_step"] == 3 * ROWS // GLOBAL_BATCH
    assert not (out / "plain-1").exists()


def test_a_signal_on_one_rank_stops_every_rank_at_the_same_step(two_ranks: list[dict]) -> None:
    assert two_ranks[0]["stopped_after"] == two_ranks[1]["stopped_after"] == 4
    assert two_ranks[0]["checkpoint"] == str(two_ranks[0]["out"] / "stopped" / LAST)
    assert two_ranks[1]["checkpoint"] is None
    assert torch.load(two_ranks[0]["out"] / "stopped" / LAST, weights_only=True)["global_step"] == 4


def _leave_in_a_child(world_size: str) -> subprocess.CompletedProcess:
    code = ("import logging, sys\n"
            "from forgeml.train.ranks import leave\n"
            "logging.basicConfig(stream=sys.stderr)\n"
            "logging.getLogger('x').warning('logged')\n"
            "sys.stdout.write('written, not flushed')\n"
            "import atexit; atexit.register(lambda: print('teardown ran'))\n"
            "leave(3)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "WORLD_SIZE": world_size})


def test_a_torchrun_rank_leaves_without_the_interpreters_teardown_but_says_everything() -> None:
    rank = _leave_in_a_child("2")
    assert rank.returncode == 3
    assert rank.stdout == "written, not flushed" and "logged" in rank.stderr  # flushed before os._exit
    assert "teardown ran" not in rank.stdout  # atexit (and the C++ teardown with it) skipped
    single = _leave_in_a_child("1")
    assert single.returncode == 3 and "teardown ran" in single.stdout  # one process: a normal exit


def test_default_threads_honours_a_users_omp_num_threads_outside_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    from forgeml.train.distributed import default_threads

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")  # ignored, as OpenMP ignores it
    assert default_threads() == max(1, len(os.sched_getaffinity(0)))
    # under torchrun every rank gets OMP_NUM_THREADS=1 unasked: the ranks share the cores instead
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert default_threads(local_world_size=1) == max(1, len(os.sched_getaffinity(0)))
