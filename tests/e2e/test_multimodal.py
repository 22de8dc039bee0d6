"""End to end: image folders, image-path columns, text (Chinese, pretrained), mixed inputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml import Pipeline
from tests.multimodal_data import chinese_corpus, shape_image, write_image_folder

QUICK = ["--set", "train.progress=false", "--threads", "1"]


def test_image_folder_train_then_predict_a_folder_with_a_broken_file(tmp_path, cli):
    root = write_image_folder(tmp_path / "shapes", per_class=30)
    (root / "left" / "broken.png").write_bytes(b"\x89PNG not really")
    train = cli("train", root, "--target", "label", "--set", "train.epochs=12", *QUICK, "--runs-dir", "runs", cwd=tmp_path)
    assert train.returncode == 0, train
    accuracy = float(next(line for line in train.stdout.splitlines() if "accuracy" in line and "balanced" not in line).split()[-2])
    assert accuracy >= 0.9, train
    report = (tmp_path / "runs" / train.run_id / "bundle" / "report.html").read_text()
    assert "broken.png (not an image)" in report  # skipped, named in the cleaning notes
    assert 'id="worst-errors"' in report and ('class="thumbs"' in report or "No errors on the test split" in report)
    new = tmp_path / "new"
    new.mkdir()
    rng = np.random.default_rng(5)
    shape_image("left", rng).save(new / "a_left.png")
    shape_image("stripes", rng).save(new / "b_stripes.png")
    (new / "c_broken.jpg").write_bytes(b"\xff\xd8\xff truncated")
    predict = cli("predict", tmp_path / "runs" / train.run_id / "bundle", new, "-o", "preds.csv", cwd=tmp_path)
    assert predict.returncode == 0, predict
    preds = pd.read_csv(tmp_path / "preds.csv")
    assert preds["image"].tolist() == ["a_left.png", "b_stripes.png", "c_broken.jpg"]
    assert preds["label_prediction"].tolist()[:2] == ["left", "stripes"]
    assert pd.isna(preds.loc[2, "label_prediction"]) and "c_broken.jpg" in preds.loc[2, "error"]


def test_table_mixing_numbers_categories_text_and_image_paths(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "pics").mkdir()
    rows = []
    for i in range(150):
        kind = ["left", "right", "stripes"][i % 3]
        shape_image(kind, rng).save(tmp_path / "pics" / f"{i}.png")
        rows.append({"photo": f"pics/{i}.png", "size": rng.normal(), "shop": rng.choice(["a", "b", "c"]),
                     "note": rng.choice(["fresh stock today", "old stock item", "new arrival here"]) + f" {i}", "label": kind})
    pd.DataFrame(rows).to_csv(tmp_path / "items.csv", index=False)
    pipeline = Pipeline(target="label", overrides={"model.type": "mlp", "train.epochs": 15, "train.progress": False, "train.threads": 1,
                                                   "model.combiner": "transformer"}).fit(tmp_path / "items.csv")
    types = {f.name: f.type for f in pipeline.predictor_.config.features}
    assert types == {"photo": "image", "size": "number", "shop": "category", "note": "text"}
    assert pipeline.metrics_["accuracy"] >= 0.8
    importance = pipeline.importance_
    assert importance["photo"] > 5 * max(importance["size"], importance["shop"], 1e-3)  # only the image carries the label
    html = pipeline.report()
    assert 'id="worst-errors"' in html
    examples = pipeline.error_examples_
    assert set(examples["images"]) == {"photo"} and set(examples["texts"]) == {"note"}
    for entry in examples["images"]["photo"]:  # most confident wrong first, each with a thumbnail
        assert entry["true"] != entry["predicted"] and entry["src"].startswith("data:image/png;base64,")
    bundle = pipeline.save(tmp_path / "bundle")
    new = pd.DataFrame([{"photo": str(tmp_path / "pics" / "0.png"), "size": 0.1, "shop": "a", "note": "fresh"},
                        {"photo": "nowhere.png", "size": 0.1, "shop": "a", "note": "fresh"}])
    preds = Pipeline.load(bundle).predict(new)
    assert preds.loc[0, "label_prediction"] == "left" and "file not found" in preds.loc[1, "error"]


@pytest.mark.parametrize("tokenizer", ["inferred", "bpe"])
def test_chinese_text_classifier_learns(tokenizer):
    from forgeml.config import Config, TextFeature

    frame = chinese_corpus(300)
    train = {"epochs": 40, "progress": False, "threads": 1, "learning_rate": 0.01}
    if tokenizer == "inferred":  # the unspaced column is recognised as text and tokenised by character
        pipeline = Pipeline(target="类别", model="mlp", overrides={f"train.{k}": v for k, v in train.items()}).fit(frame)
    else:
        pipeline = Pipeline(config=Config(target="类别", features=[TextFeature(name="新闻", tokenizer=tokenizer)], train=train), model="mlp").fit(frame)
    assert pipeline.predictor_.config.features[0].type == "text"
    assert pipeline.metrics_["accuracy"] >= 0.9
    preds = pipeline.predict(pd.DataFrame({"新闻": ["股票市场今天增长。", "球员进球比赛冠军。"]}))
    assert preds["类别_prediction"].tolist() == ["财经", "体育"]


@pytest.mark.slow
def test_pretrained_encoder_from_the_command_line(tmp_path, cli, minilm_dir):
    from tests.multimodal_data import english_reviews

    english_reviews(120).to_csv(tmp_path / "reviews.csv", index=False)
    train = cli("train", "reviews.csv", "--target", "sentiment", "--model", "pretrained", "--encoder", minilm_dir,
                "--set", "train.epochs=2", "--set", "train.batch_size=16", *QUICK, "--runs-dir", "runs", cwd=tmp_path)
    assert train.returncode == 0, train
    bundle = tmp_path / "runs" / train.run_id / "bundle"
    config = (bundle / "config.yaml").read_text()
    assert "type: pretrained" in config and "tokenizer: pretrained" in config
    pd.DataFrame({"review": ["love it, perfect and great", "awful, broken, want a refund"]}).to_csv(tmp_path / "new.csv", index=False)
    predict = cli("predict", bundle, "new.csv", "-o", "p.csv", cwd=tmp_path)
    assert predict.returncode == 0, predict
    assert pd.read_csv(tmp_path / "p.csv")["sentiment_prediction"].tolist() == ["pos", "neg"]


@pytest.mark.parametrize("encoder, message", [("missing-dir", "pretrained checkpoint folder not found"), (".", "not a Hugging Face checkpoint")])
def test_pretrained_bad_paths_are_one_line_errors(tmp_path, cli, encoder, message):
    pd.DataFrame({"review": [f"good thing {i}" for i in range(20)], "y": ["a", "b"] * 10}).to_csv(tmp_path / "r.csv", index=False)
    result = cli("train", "r.csv", "--target", "y", "--model", "pretrained", "--encoder", encoder, *QUICK, "--runs-dir", "runs", cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_all_empty_text_column_in_a_config_is_a_clear_error(tmp_path):
    from forgeml.config import Config, NumberFeature, TextFeature
    from forgeml.errors import DataError

    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=40), "notes": [None] * 40, "y": ["a", "b"] * 20})
    with pytest.raises(DataError, match="'notes' is empty in every train row"):
        Pipeline(config=Config(target="y", features=[NumberFeature(name="x"), TextFeature(name="notes")])).fit(frame)
    inferred = Pipeline(target="y", model="mlp", overrides={"train.epochs": 1, "train.progress": False}).fit(frame)
    assert "notes" in inferred.predictor_.config.data.drop_reasons  # inference drops it, with the reason


def test_gbm_refuses_images_with_a_clear_error(tmp_path):
    from forgeml.errors import ConfigError

    root = write_image_folder(tmp_path / "shapes", per_class=8)
    with pytest.raises(ConfigError, match="LightGBM cannot read images"):
        Pipeline(target="label", model="gbm").fit(root)
