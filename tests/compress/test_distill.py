"""Knowledge distillation (forgeml/compress/distill.py): an ensemble teacher, a single student.

One small ensemble (two LightGBM members and a linear one, 3 folds) is trained per table and saved
as a bundle; the students are trained in process (fast) and once through ``forgeml compress``
(the bundle untouched, the new bundle a plain MLP bundle that predict reads)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeml.api import Pipeline
from forgeml.compress.data import prepare_data
from forgeml.compress.distill import DistillOptions, distill, fit_on_labels

TEACHER = {"model.type": "ensemble", "model.members": ["lightgbm", "lightgbm_xt", "linear"], "model.folds": 3,
           "train.progress": False, "train.threads": 1, "train.time_budget": 60}
QUICK = {"train.epochs": 40, "train.progress": False, "train.threads": 1}  # the students: enough epochs to converge here


def noisy_classes(rows: int = 700, seed: int = 0) -> pd.DataFrame:
    """A curved two-class boundary with 15 % of labels flipped: a student of the labels alone
    fits some of the flips; the teacher's probabilities smooth them away."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 1, rows), rng.normal(0, 1, rows)
    shop = rng.choice(["north", "south", "east"], rows, p=[0.5, 0.3, 0.2])
    score = x1**2 + np.sin(2 * x2) + (shop == "north") * 0.8 - 1.2
    label = np.where(score + rng.normal(0, 0.3, rows) > 0, "buy", "skip")
    flip = rng.random(rows) < 0.15
    label[flip] = np.where(label[flip] == "buy", "skip", "buy")
    return pd.DataFrame({"x1": x1.round(4), "x2": x2.round(4), "shop": shop, "label": label})


def smooth_regression(rows: int = 500, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(-2, 2, rows), rng.uniform(0, 5, rows)
    kind = rng.choice(["a", "b"], rows)
    value = 3 * np.sin(x1) + 0.5 * x2**1.5 + (kind == "a") * 2 + rng.normal(0, 0.5, rows)
    return pd.DataFrame({"x1": x1.round(4), "x2": x2.round(4), "kind": kind, "value": value.round(3)})


def teacher_bundle(folder: Path, frame: pd.DataFrame, target: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "data.csv"
    frame.to_csv(csv, index=False)
    Pipeline(target=target, overrides=TEACHER).fit(csv).save(folder / "teacher")
    return folder / "teacher"


@pytest.fixture(scope="module")
def classes_teacher(tmp_path_factory) -> Path:
    return teacher_bundle(tmp_path_factory.mktemp("distill_classes"), noisy_classes(), "label")


@pytest.fixture(scope="module")
def regression_teacher(tmp_path_factory) -> Path:
    return teacher_bundle(tmp_path_factory.mktemp("distill_regression"), smooth_regression(), "value")


def loaded(bundle: Path):
    source = Pipeline.load(bundle)
    return source, prepare_data(source.predictor_, Path(source.predictor_.config.data.path))


def test_distilled_student_follows_the_teacher_closer_than_a_student_of_the_labels(classes_teacher):
    source, data = loaded(classes_teacher)
    options = DistillOptions(student="mlp", augment=2.0, student_overrides=QUICK)
    student = distill(source, data, options)
    labels_only = fit_on_labels(source, data, options)
    test = data.frames["test"]
    teacher_p = source.predictor_.scores(test)[:, 1]
    gap = np.abs(student.predictor_.scores(test)[:, 1] - teacher_p).mean()
    gap_labels = np.abs(labels_only.predictor_.scores(test)[:, 1] - teacher_p).mean()
    assert gap < gap_labels, (gap, gap_labels)
    teacher_auc = source.predictor_.evaluate_frame(test, source="test").metrics["roc_auc"]
    student_auc = student.predictor_.evaluate_frame(test, source="test").metrics["roc_auc"]
    assert student_auc >= teacher_auc - 0.03, (student_auc, teacher_auc)  # 210-row test split: 0.03 AUC is its noise
    assert student.distillation_["transfer_rows"] == {"training": len(data.frames["train"]), "augmented": 2 * len(data.frames["train"])}


def test_student_is_one_model_where_the_teacher_is_many(classes_teacher, tmp_path):
    source, data = loaded(classes_teacher)
    student = distill(source, data, DistillOptions(student="mlp", augment=1.0, student_overrides=QUICK))
    teacher_models = sum(len(m["estimator"].members) for m in source.predictor_.estimator.members)  # members × folds
    assert teacher_models >= 3  # at least one bag of 3 folds (members of weight 0 are not kept)
    assert student.predictor_.config.model.type == "mlp" and student.predictor_.estimator.files == ("weights.safetensors",)
    assert not hasattr(student.predictor_.estimator, "members")
    # saved, it is a plain single-model bundle: it loads and predicts the same, and its card names the teacher
    path = student.save(tmp_path / "student")
    again = Pipeline.load(path)
    assert again.predictor_.config.model.type == "mlp" and again.predictor_.config.train.bagging_folds == 1
    np.testing.assert_allclose(again.predictor_.scores(data.frames["test"]), student.predictor_.scores(data.frames["test"]), atol=1e-6)
    assert again.distillation_["teacher"]["model"] == "ensemble"
    assert "Distilled from" in (path / "model_card.md").read_text(encoding="utf-8")


def test_gbm_student_and_auto_keep_the_closer_student(classes_teacher):
    source, data = loaded(classes_teacher)
    student = distill(source, data, DistillOptions(student="auto", augment=1.0, student_overrides=QUICK))
    tried = student.distillation_["students_tried"]
    assert set(tried) == {"mlp", "gbm"}
    assert student.predictor_.config.model.type == min(tried, key=tried.get)
    gbm = distill(source, data, DistillOptions(student="gbm", augment=1.0))
    assert gbm.predictor_.config.model.type == "gbm" and len(gbm.predictor_.estimator.boosters) == 1
    test = data.frames["test"]
    agreement = (gbm.predictor_.scores(test).argmax(1) == source.predictor_.scores(test).argmax(1)).mean()
    assert agreement >= 0.9, agreement


def test_regression_student_learns_the_teachers_values(regression_teacher):
    source, data = loaded(regression_teacher)
    # 1,275 transfer rows: batches of 256, so more epochs than QUICK's to take as many steps
    student = distill(source, data, DistillOptions(student="mlp", augment=2.0, student_overrides={**QUICK, "train.epochs": 150}))
    test = data.frames["test"]
    teacher = source.predictor_.evaluate_frame(test, source="test").metrics
    learned = student.predictor_.evaluate_frame(test, source="test").metrics
    assert learned["rmse"] <= teacher["rmse"] * 1.10, (learned["rmse"], teacher["rmse"])
    follows = np.corrcoef(student.predictor_.scores(test).ravel(), source.predictor_.scores(test).ravel())[0, 1]
    assert follows > 0.97, follows
    assert student.distillation_["distance"].startswith("mean squared difference")


@pytest.mark.parametrize("options, where", [
    ({"student": "ensemble"}, "--student"),
    ({"student": "linear"}, "--student"),
    ({"temperature": 0}, "--temperature"),
    ({"augment": -1}, "--augment"),
    ({"alpha": 0.5}, "forgeml compress --distill"),
])
def test_impossible_options_are_one_line_errors(classes_teacher, options, where):
    from forgeml.compress.distill import check
    from forgeml.compress.errors import CompressError

    source = Pipeline.load(classes_teacher)
    with pytest.raises(CompressError) as caught:
        check(source, options)
    assert caught.value.where == where and caught.value.hint and "\n" not in str(caught.value)


def test_cli_distills_leaving_the_teacher_byte_identical(classes_teacher, cli, tmp_path):
    before = {p: p.read_bytes() for p in sorted(classes_teacher.rglob("*")) if p.is_file()}
    out = tmp_path / "student"
    result = cli("compress", classes_teacher, "--distill", "--augment", "1", "--seed", "3", "--set", "student_overrides={train.epochs: 20}",
                 "-o", out, cwd=tmp_path)
    assert result.returncode == 0, result
    assert {p: p.read_bytes() for p in sorted(classes_teacher.rglob("*")) if p.is_file()} == before
    assert "Distilled from" in (out / "model_card.md").read_text(encoding="utf-8")
    assert "latency, 1 row" in result.stdout
    predicted = cli("predict", out, classes_teacher.parent / "data.csv", "-o", tmp_path / "p.csv", cwd=tmp_path)
    assert predicted.returncode == 0, predicted
    assert len(pd.read_csv(tmp_path / "p.csv")) == 700
    exported = cli("export", out, cwd=tmp_path)  # ONNX, checked against the student's own scores
    assert exported.returncode == 0 and (out / "exports" / "model.onnx").is_file(), exported


@pytest.mark.parametrize("args, named", [
    (["compress", "no_such_bundle", "--distill"], "no_such_bundle"),
    (["compress", "{teacher}", "--distill", "--student", "catboost"], "--student"),
    (["compress", "{teacher}", "--quantize", "int8", "--student", "mlp"], "--student"),
    (["compress", "{teacher}", "--distill", "--temperature", "-1"], "--temperature"),
])
def test_cli_bad_input_is_one_line(classes_teacher, cli, tmp_path, args, named):
    result = cli(*[str(classes_teacher) if a == "{teacher}" else a for a in args], "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0], result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
