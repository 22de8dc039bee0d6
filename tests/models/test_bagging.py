"""Bagging: K fold models averaged, saved in checksummed sub-folders, resolved into the config."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeml import Pipeline
from forgeml.errors import BundleError
from forgeml.models.bagging import AUTO_FOLDS, fold_indices, resolve_folds


def test_auto_bags_small_torch_runs_only():
    assert resolve_folds("auto", "mlp", 300) == AUTO_FOLDS
    assert resolve_folds("auto", "mlp", 5_000) == 1
    assert resolve_folds("auto", "gbm", 300) == 1
    assert resolve_folds(3, "gbm", 300) == 3
    assert resolve_folds(5, "mlp", 6) == 3  # never a fold of fewer than two rows


def test_folds_cover_every_row_once_and_stratify():
    labels = np.array([0] * 30 + [1] * 10)
    folds = fold_indices(40, 5, seed=0, labels=labels)
    held_out = np.concatenate([out for _, out in folds])
    assert sorted(held_out.tolist()) == list(range(40))
    assert all(labels[out].sum() == 2 for _, out in folds)  # 10 positives spread 2 per fold


@pytest.fixture(scope="module")
def regression_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 3))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": 2 * x[:, 0] - x[:, 1] ** 2 + rng.normal(0, 0.1, 240)})


@pytest.fixture(scope="module")
def bagged(regression_frame, tmp_path_factory):
    pipeline = Pipeline(target="y", overrides={"model.type": "mlp", "train.progress": False, "train.epochs": 15, "train.threads": 1}).fit(regression_frame)
    bundle = tmp_path_factory.mktemp("bag") / "bundle"
    pipeline.save(bundle)
    return pipeline, bundle


def test_small_run_is_bagged_and_the_prediction_is_the_members_mean(bagged, regression_frame):
    pipeline, _ = bagged
    estimator = pipeline.predictor_.estimator
    assert pipeline.predictor_.config.train.bagging_folds == AUTO_FOLDS
    assert len(estimator.members) == AUTO_FOLDS
    arrays = pipeline.predictor_.featureset.transform(regression_frame)
    member_scores = [member.scores(arrays) for member in estimator.members]
    assert not np.allclose(member_scores[0], member_scores[1])  # trained on different folds
    np.testing.assert_allclose(estimator.scores(arrays), np.mean(member_scores, axis=0), rtol=1e-6, atol=1e-7)
    assert pipeline.metrics_["r2"] > 0.8
    folds = {row["fold"] for row in pipeline.fit_summary_.history}
    assert folds == set(range(AUTO_FOLDS))  # every member's learning curve is kept, tagged


def test_bagged_bundle_round_trips_and_checksums_the_members(bagged, regression_frame, tmp_path):
    pipeline, bundle = bagged
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {f"fold{k}/weights.safetensors" for k in range(AUTO_FOLDS)} <= set(manifest["files"])
    loaded = Pipeline.load(bundle)
    pd.testing.assert_frame_equal(loaded.predict(regression_frame), pipeline.predict(regression_frame))

    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    weights = copy / "fold3" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="fold3/weights.safetensors"):
        Pipeline.load(copy)


def test_bagging_folds_one_turns_it_off(regression_frame):
    pipeline = Pipeline(target="y", overrides={"model.type": "mlp", "train.progress": False, "train.epochs": 3, "train.bagging_folds": 1}).fit(regression_frame)
    assert not hasattr(pipeline.predictor_.estimator, "members")


def test_bad_folds_value_is_a_config_error():
    from forgeml.errors import ConfigError

    with pytest.raises(ConfigError, match="bagging_folds"):
        Pipeline(target="y", overrides={"train.bagging_folds": 0}).build_config()


def test_resume_skips_finished_folds_and_ends_where_a_clean_run_ends(regression_frame, tmp_path, monkeypatch):
    import shutil

    from forgeml.models.torch_estimator import TorchEstimator

    overrides = {"model.type": "mlp", "train.progress": False, "train.epochs": 6, "train.threads": 1}
    clean = Pipeline(target="y", overrides=overrides).fit(regression_frame, checkpoint_dir=tmp_path / "ckpt")
    # as if the run was killed while training fold 3: folds 3 and 4 left nothing behind
    for k in (3, 4):
        shutil.rmtree(tmp_path / "ckpt" / f"fold{k}")
    trained = []
    original = TorchEstimator.fit
    monkeypatch.setattr(TorchEstimator, "fit", lambda self, *a, **k: trained.append(1) or original(self, *a, **k))
    resumed = Pipeline(target="y", overrides=overrides).fit(regression_frame, checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert len(trained) == 2  # only the unfinished folds were trained again
    pd.testing.assert_frame_equal(resumed.predict(regression_frame), clean.predict(regression_frame))


@pytest.mark.slow
def test_cli_resume_continues_a_bagged_run(tmp_path, regression_frame):
    """A bagged run interrupted after its first folds is found by --resume and completes."""
    import shutil
    import subprocess
    import sys

    regression_frame.to_csv(tmp_path / "data.csv", index=False)
    command = [sys.executable, "-m", "forgeml.cli", "train", "data.csv", "--target", "y", "--runs-dir", "runs",
               "--model", "mlp", "--set", "train.epochs=3", "--set", "train.progress=false", "--threads", "1"]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    from forgeml.runs.registry import RunRegistry

    registry = RunRegistry(tmp_path / "runs")
    (record,) = registry.list()
    # make it look killed during fold 2: later folds gone, status interrupted
    for k in (2, 3, 4):
        shutil.rmtree(record.dir / "checkpoint" / f"fold{k}")
    registry.finish(record.id, "interrupted", "regression", "mlp", None, None, {})
    resumed = subprocess.run(command + ["--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert registry.get(record.id).status == "completed"
    assert len(registry.list()) == 1  # the same run, not a new one
    history = registry.history(record.id)  # folds 2-4 ran twice: their later rows count, once
    assert [row["epoch"] for row in history] == sorted({row["epoch"] for row in history})
    assert {row["folds"] for row in history} == {AUTO_FOLDS}


def test_members_are_seeded_apart_and_every_train_row_has_an_out_of_fold_prediction(bagged):
    pipeline, _ = bagged
    estimator = pipeline.predictor_.estimator
    seed = pipeline.predictor_.config.train.seed
    assert [member.config.train.seed for member in estimator.members] == [seed + k for k in range(AUTO_FOLDS)]
    assert estimator.oof_.shape == (len(pipeline.prepared_.targets["train"]), 1)
    assert not np.isnan(estimator.oof_).any()


def test_a_passed_deadline_stops_a_network_after_one_epoch(regression_frame):
    import time

    from forgeml.models.build import build_estimator
    from forgeml.models.estimator import FitOptions
    from forgeml.workflow import prepare

    prepared = prepare(Pipeline(target="y", overrides={"model.type": "mlp", "train.progress": False, "train.bagging_folds": 1}).build_config(), regression_frame)
    estimator = build_estimator(prepared.config, prepared.task, prepared.featureset.input_spec())
    summary = estimator.fit(prepared.arrays["train"], prepared.targets["train"], prepared.arrays["validation"], prepared.targets["validation"],
                            FitOptions(deadline=time.monotonic() - 1))
    assert len(summary.history) == 1


def test_folds_come_from_the_training_seed_not_the_split_seed(regression_frame, monkeypatch):
    """Changing data.split.seed moves rows between train and test, not between folds; train.seed moves folds."""
    import forgeml.models.bagging as bagging

    seen = []
    real = bagging.fold_indices
    monkeypatch.setattr(bagging, "fold_indices", lambda rows, folds, seed, labels: seen.append(seed) or real(rows, folds, seed, labels))
    overrides = {"model.type": "mlp", "train.epochs": 1, "train.progress": False, "train.threads": 1, "train.bagging_folds": 2, "train.seed": 11, "data.split.seed": 3}
    Pipeline(target="y", overrides=overrides).fit(regression_frame)
    assert seen == [11]


def test_a_bag_whose_first_fold_shows_it_cannot_end_in_time_gives_up_when_asked():
    """The ensemble's members are abandoned after one fold when the rest would blow the time
    budget; a bag on its own (abandon_when_late off) finishes its folds."""
    import time

    from forgeml.config import Config
    from forgeml.models.bagging import MemberOutOfTime, build_bagged
    from forgeml.models.estimator import FitOptions, FitSummary
    from forgeml.models.tasks import Task

    class SlowMember:
        files = ()

        def fit(self, train, y, val, y_val, options):
            time.sleep(0.2)  # ignores its deadline, as one long epoch or a slow solver does
            return FitSummary([], 0, None, False, 0.2)

        def scores(self, arrays):
            return np.zeros((len(arrays["dense"]), 1))

    config = Config.from_dict({"target": "y", "model": {"type": "mlp"}})
    task = Task.resolve("regression", "auto", 1)
    arrays, y = {"dense": np.zeros((50, 2), np.float32)}, np.zeros((50, 1))
    bag = build_bagged(config, task, None, 5, lambda *a: SlowMember(), lambda *a: SlowMember())
    with pytest.raises(MemberOutOfTime, match="other 4 folds would need about 1 s"):
        bag.fit(arrays, y, None, None, FitOptions(deadline=time.monotonic() + 0.3, abandon_when_late=True))
    started = time.monotonic()
    build_bagged(config, task, None, 5, lambda *a: SlowMember(), lambda *a: SlowMember()).fit(arrays, y, None, None, FitOptions(deadline=started + 0.3))
    assert time.monotonic() - started >= 1.0  # not asked to give up: every fold ran
