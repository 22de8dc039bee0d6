"""The LM training loop: it learns, it resumes exactly, it refuses a different model, it stops
on time and on signals, compile falls back, bf16 runs."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from forgeml.errors import CheckpointError
from forgeml.lm.corpus import prepare_corpus
from forgeml.lm.train import BatchPlan, LMTrainer, warmup_cosine
from forgeml.train.trainer import TrainingInterrupted

from .conftest import tiny_config


@pytest.fixture(scope="module")
def corpus(corpus_dir, tmp_path_factory):
    return prepare_corpus(corpus_dir, tiny_config().corpus, cache_dir=tmp_path_factory.mktemp("cache"))


def _config(corpus, **overrides):
    config = tiny_config(**overrides)
    return config.model_copy(update={"model": config.model.model_copy(update={"vocab_size": corpus.meta["vocab_size"]})})


def test_loss_falls_and_rows_carry_speed_and_validation(corpus) -> None:
    rows: list[dict] = []
    result = LMTrainer(_config(corpus, **{"train.max_steps": 12, "train.eval_every": 6}), log=rows.append).fit(corpus)
    train_rows = [r for r in rows if "train_loss" in r]
    evals = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in train_rows] == list(range(1, 13)) and [r["step"] for r in evals] == [6, 12]
    assert train_rows[-1]["train_loss"] < train_rows[0]["train_loss"] - 0.3
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert evals[0]["val_ppl"] == pytest.approx(math.exp(evals[0]["val_loss"]))
    assert all(r["tokens_per_s"] > 0 and 0 < r["mfu"] < 1 for r in train_rows)
    assert train_rows[-1]["tokens"] == 12 * 512  # 512 tokens per step: 16 sequences of 32
    metrics = result.metrics
    assert metrics["steps"] == 12 and metrics["val_loss"] == evals[-1]["val_loss"]
    assert metrics["val_bits_per_byte"] == pytest.approx(metrics["val_loss"] / math.log(2) * corpus.meta["val_tokens"] / corpus.meta["val_bytes"])


def test_a_stopped_run_resumes_to_the_same_weights(corpus, tmp_path: Path) -> None:
    straight = LMTrainer(_config(corpus), checkpoint_dir=tmp_path / "a").fit(corpus).model.state_dict()

    trainer = LMTrainer(_config(corpus), checkpoint_dir=tmp_path / "b")
    trainer.log = lambda row: setattr(trainer, "_stop_signal", 15) if row.get("step") == 2 else None  # "SIGTERM" after step 2
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.fit(corpus)
    assert stop.value.checkpoint == tmp_path / "b" / "last.pt"
    assert torch.load(stop.value.checkpoint, weights_only=True)["step"] == 3  # the flag is seen at the next step
    resumed = LMTrainer(_config(corpus), checkpoint_dir=tmp_path / "b").fit(corpus, resume=True)
    assert resumed.steps == 6
    for name, tensor in straight.items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor, msg=name)


def test_resuming_with_a_different_model_is_refused(corpus, tmp_path: Path) -> None:
    LMTrainer(_config(corpus, **{"train.max_steps": 2}), checkpoint_dir=tmp_path).fit(corpus)
    with pytest.raises(CheckpointError, match=r"different model \(n_layer: 2 → 3\)"):
        LMTrainer(_config(corpus, **{"model.n_layer": 3}), checkpoint_dir=tmp_path).fit(corpus, resume=True)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        LMTrainer(_config(corpus), checkpoint_dir=tmp_path / "none").fit(corpus, resume=True)


def test_a_time_budget_ends_training_early_with_a_result(corpus) -> None:
    result = LMTrainer(_config(corpus, **{"train.max_steps": 10_000, "train.time_budget_s": 0.5})).fit(corpus)
    assert 1 <= result.steps < 10_000 and "val_loss" in result.metrics


def test_a_model_that_cannot_compile_trains_eagerly_with_a_warning(corpus, monkeypatch) -> None:
    class Broken(torch.nn.Module):
        def forward(self, *args, **kwargs):
            raise RuntimeError("no C compiler")

    monkeypatch.setattr("forgeml.lm.train._compile", lambda model, enabled: Broken() if enabled else model)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        result = LMTrainer(_config(corpus, **{"train.compile": True, "train.max_steps": 3})).fit(corpus)
    assert result.steps == 3


def test_bf16_autocast_trains(corpus) -> None:
    rows: list[dict] = []
    LMTrainer(_config(corpus, **{"train.precision": "bf16"}), log=rows.append).fit(corpus)
    losses = [r["train_loss"] for r in rows if "train_loss" in r]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]


def test_batch_plan_reaches_the_token_batch_by_accumulation() -> None:
    plan = BatchPlan.make(batch_tokens=4096, block_size=64, micro_batch=8, world_size=2)
    assert (plan.micro_batch, plan.accumulation, plan.tokens) == (8, 4, 4096)
    assert BatchPlan.make(4096, 64, 8, 1).accumulation == 8
    assert BatchPlan.make(64, 64, 8, 2).micro_batch == 1  # fewer sequences than ranks × micro


def test_schedule_warms_up_then_decays_to_the_floor() -> None:
    values = [warmup_cosine(s, warmup=10, total=110, min_ratio=0.1) for s in range(111)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert max(values) == pytest.approx(1.0) and values[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
