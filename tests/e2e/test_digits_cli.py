"""The founding documents' digits task through the real command line: a 28×28 PNG folder (written by
``examples/make_digits_png.py``) → ``forgeml train`` → ``forgeml predict`` → ``forgeml evaluate``."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from make_digits_png import write_digits  # noqa: E402

QUICK = ["--set", "train.progress=false", "--threads", "1"]
TRAIN_IMAGES, HELD_OUT = 400, 80  # ~40 per class to train on; the next 80 digits are never seen in training


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """``digits/<label>/*.png`` (the first 400) and ``held/<label>/*.png`` (the next 80)."""
    root = tmp_path_factory.mktemp("digits")
    write_digits(root / "all", limit=TRAIN_IMAGES + HELD_OUT)
    for png in sorted((root / "all").rglob("*.png")):
        target = root / ("digits" if int(png.stem) < TRAIN_IMAGES else "held") / png.parent.name / png.name
        target.parent.mkdir(parents=True, exist_ok=True)
        png.rename(target)
    return root


def test_digits_folder_train_predict_evaluate(digits, cli):
    train = cli("train", "digits", "--target", "label", "--set", "train.epochs=6", *QUICK, "--runs-dir", "runs", cwd=digits)
    assert train.returncode == 0, train
    accuracy = float(next(line for line in train.stdout.splitlines() if "accuracy" in line and "balanced" not in line).split()[-2])
    assert accuracy >= 0.8, train  # chance is 0.1
    bundle = digits / "runs" / train.run_id / "bundle"
    assert "type: image" in (bundle / "config.yaml").read_text()

    held = sorted((digits / "held").rglob("*.png"))
    paths = [str(p) for p in held] + [str(digits / "held" / "gone.png")]  # the last one does not exist
    pd.DataFrame({"image": paths}).to_csv(digits / "new.csv", index=False)
    predict = cli("predict", bundle, "new.csv", "-o", "preds.csv", cwd=digits)
    assert predict.returncode == 0, predict
    preds = pd.read_csv(digits / "preds.csv", dtype={"label_prediction": "string"}, keep_default_na=False)
    assert preds["image"].tolist() == paths  # one row per image, in input order
    errors = preds["error"].tolist()
    assert all(e == "" for e in errors[:-1]) and "gone.png" in errors[-1]
    assert preds["label_prediction"].iloc[-1] == ""
    truth = [p.parent.name for p in held]
    assert (preds["label_prediction"].iloc[:-1].to_numpy() == truth).mean() >= 0.8

    # evaluate on the held-out folder with one digit filed under the wrong class: at least one sure error
    wrong = next(p for p in held if p.parent.name == "3")
    (digits / "held" / "8").mkdir(exist_ok=True)
    wrong.rename(digits / "held" / "8" / wrong.name)
    evaluate = cli("evaluate", bundle, "held", "-o", "evaluation", cwd=digits)
    assert evaluate.returncode == 0, evaluate
    assert f"metrics on held ({HELD_OUT} rows)" in evaluate.stdout and "accuracy" in evaluate.stdout
    report = (digits / "evaluation" / "report.html").read_text(encoding="utf-8")
    assert 'id="worst-errors"' in report and "rows of the evaluated data" in report
    assert 'class="thumbs"' in report and "data:image/png;base64," in report
    assert f"{wrong.name}<br>true <b>8</b>" in report  # the misfiled 3, shown with its true (folder) label
