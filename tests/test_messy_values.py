"""Messy real-world values through the whole flow: what cleaning repairs or counts at training time
is repaired or counted the same way when the bundle predicts or evaluates."""
from __future__ import annotations

import numpy as np
import pandas as pd

from forgeml import Pipeline
from forgeml.config import CategoryFeature, CleanConfig
from forgeml.data.clean import CleaningReport, repair_cell, repair_text
from forgeml.features import FitContext, build_feature

FAST = {"train.epochs": 2, "train.progress": False, "train.threads": 1}

# Values as Chinese spreadsheets write them: full-width punctuation and letters, an ideographic space.
CITIES = {"北京\u3000": "a", "上海，浦东": "b", "广州：天河": "c", "ＳＺ深圳": "d"}


def _chinese_frame(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(list(CITIES), rows)
    return pd.DataFrame({"city": city, "x": rng.normal(size=rows).round(3), "label": [CITIES[c] for c in city]})


def test_category_values_are_repaired_at_predict_time_as_cleaning_repaired_them(tmp_path):
    frame = _chinese_frame()
    pipeline = Pipeline(target="label", overrides=FAST).fit(frame)
    loaded = Pipeline.load(pipeline.save(tmp_path / "bundle")).predictor_
    city = loaded.featureset.features[loaded.featureset.input_names.index("city")]
    assert "上海,浦东" in city.vocabulary  # trained on the repaired values
    repaired = frame.assign(city=repair_text(frame["city"])[0])
    codes = city.codes(frame["city"])
    assert (codes > 0).all()  # no raw value is an unseen "<other>"
    np.testing.assert_array_equal(codes, city.codes(repaired["city"]))
    want = loaded.predict(repaired)
    pd.testing.assert_frame_equal(loaded.predict(frame), want)  # the pandas path (more than 64 rows)
    for i in range(4):  # the few-rows fast paths: a small DataFrame and records
        row, fixed = frame.iloc[[i]].drop(columns="label"), repaired.iloc[[i]].drop(columns="label")
        pd.testing.assert_frame_equal(loaded.predict(row), loaded.predict(fixed))
        assert loaded.predict_records(row.to_dict("records")) == loaded.predict_records(fixed.to_dict("records"))


def test_category_values_are_left_raw_when_repair_is_off():
    values = pd.Series(["ＡＢ", "ＡＢ", "cd", "cd"])
    config = CleanConfig(outliers="none", repair_text=False)
    feature = build_feature(CategoryFeature(name="c"))
    feature.fit(values, FitContext(config, CleaningReport(rows_in=4)))
    assert feature.codes(pd.Series(["ＡＢ"]))[0] == feature.vocabulary.index("ＡＢ")
    assert feature.transform_values(["ＡＢ"])[0] == feature.vocabulary.index("ＡＢ")


def _junk_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows).round(3).astype(object)
    x[::40] = "abc"
    x[5::40] = "—"
    return pd.DataFrame({"x": x, "z": rng.normal(size=rows).round(2), "label": np.where(rng.normal(size=rows) > 0, "yes", "no")})


def test_junk_in_a_number_column_of_held_out_rows_is_missing_and_counted():
    train, validation, test = _junk_frame(400, 0), _junk_frame(80, 1), _junk_frame(80, 2)
    pipeline = Pipeline(target="label", overrides=FAST).fit(train, validation=validation, test=test)
    assert set(pipeline.evaluations_) == {"validation", "test"}
    messages = pipeline.prepared_.cleaning.messages
    assert "treated 20 values of 'x' that are not numbers as missing (e.g. 'abc', '—')" in messages
    assert "treated 4 values of 'x' in the validation data that are not numbers as missing (e.g. 'abc', '—')" in messages
    assert pipeline.prepared_.cleaning.not_numbers == {"x": 28}
    assert validation["x"].iloc[0] == "abc"  # the caller's frames are not modified


def test_a_bundle_trained_on_gbk_data_reads_utf8_files_to_predict(tmp_path):
    frame = _chinese_frame().assign(city=lambda f: f["city"].map(repair_cell))
    frame.to_csv(tmp_path / "train.csv", index=False, encoding="gbk")
    rows = frame.drop(columns="label").head(5)
    rows.to_csv(tmp_path / "utf8.csv", index=False, encoding="utf-8")
    pipeline = Pipeline(target="label", overrides={**FAST, "data.encoding": "gbk"}).fit(tmp_path / "train.csv")
    predictor = Pipeline.load(pipeline.save(tmp_path / "bundle")).predictor_
    assert predictor.read(tmp_path / "utf8.csv")["city"].tolist() == rows["city"].tolist()
    pd.testing.assert_frame_equal(predictor.predict(tmp_path / "utf8.csv"), predictor.predict(rows.copy()))


def test_a_bundle_trained_with_a_configured_delimiter_sniffs_files_to_predict(tmp_path):
    frame = _chinese_frame()
    frame.to_csv(tmp_path / "train.csv", index=False, sep=";")
    rows = frame.drop(columns="label").head(5)
    rows.to_csv(tmp_path / "commas.csv", index=False)
    pipeline = Pipeline(target="label", overrides={**FAST, "data.delimiter": ";"}).fit(tmp_path / "train.csv")
    predictor = Pipeline.load(pipeline.save(tmp_path / "bundle")).predictor_
    assert list(predictor.read(tmp_path / "commas.csv").columns) == list(rows.columns)
    pd.testing.assert_frame_equal(predictor.predict(tmp_path / "commas.csv"), predictor.predict(rows.copy()))


def test_decimal_commas_are_read_at_predict_time_as_in_training(tmp_path):
    rng = np.random.default_rng(0)
    price = rng.uniform(1, 3000, 160).round(2)
    german = [f"{p:,.2f} €".replace(",", "_").replace(".", ",").replace("_", ".") for p in price]
    pd.DataFrame({"preis": german, "stadt": "Köln", "label": np.where(price > 1500, "hoch", "tief")}).to_csv(
        tmp_path / "train.csv", sep=";", index=False)
    (tmp_path / "rows.csv").write_text("preis;stadt\n1.200 €;Köln\n2.900,10 €;Köln\n3,5;Köln\n", encoding="utf-8")
    pipeline = Pipeline(target="label", overrides=FAST).fit(tmp_path / "train.csv")
    assert [f.decimal for f in pipeline.prepared_.config.features if f.name == "preis"] == [","]
    predictor = Pipeline.load(pipeline.save(tmp_path / "bundle")).predictor_
    numbers = pd.DataFrame({"preis": [1200.0, 2900.1, 3.5], "stadt": "Köln"})
    pd.testing.assert_frame_equal(predictor.predict(tmp_path / "rows.csv"), predictor.predict(numbers))
