"""Feature types: fitted on train only, JSON state, identical transforms after a round trip."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forgeml.config import CategoryFeature, CleanConfig, DateFeature, NumberFeature, TextFeature, BinaryFeature
from forgeml.data.clean import CleaningReport
from forgeml.errors import SchemaError
from forgeml.features import FitContext, build_feature, feature_from_json
from forgeml.features.featureset import FeatureSet
from forgeml.features.target import ClassTarget, RegressionTarget


def fit(config, values, clean=None):
    feature = build_feature(config)
    feature.fit(pd.Series(values), FitContext(clean or CleanConfig(outliers="none"), CleaningReport(rows_in=len(values))))
    return feature


def roundtrip(feature):
    return feature_from_json(json.loads(json.dumps(feature.to_json())))


@pytest.mark.parametrize("scaling", ["zscore", "minmax", "quantile", "power", "none"])
def test_number_scalings_fit_on_train_and_survive_json(scaling):
    train = np.random.default_rng(0).lognormal(size=200)
    feature = fit(NumberFeature(name="x", scaling=scaling), train)
    out = feature.transform(pd.Series(train))
    assert out.shape == (200, 1) and out.dtype == np.float32
    if scaling == "zscore":
        assert abs(out.mean()) < 1e-5 and abs(out.std() - 1) < 1e-4
    if scaling == "minmax":
        assert out.min() == pytest.approx(0) and out.max() == pytest.approx(1)
    if scaling == "power":  # Yeo-Johnson makes a log-normal column far less skewed
        skew = lambda v: float(((v - v.mean()) ** 3).mean() / v.std() ** 3)  # noqa: E731
        assert abs(skew(out[:, 0])) < abs(skew(train)) / 3
    new = pd.Series([0.5, 3.0, np.nan])
    np.testing.assert_allclose(roundtrip(feature).transform(new), feature.transform(new))


def test_number_missing_strategies_and_indicator():
    values = [1.0, 2.0, 3.0, 10.0, np.nan]
    assert fit(NumberFeature(name="x", missing="mean", scaling="none"), values).transform(pd.Series([np.nan]))[0, 0] == pytest.approx(4.0)
    assert fit(NumberFeature(name="x", missing="median", scaling="none"), values).transform(pd.Series([np.nan]))[0, 0] == pytest.approx(2.5)
    assert fit(NumberFeature(name="x", missing="constant", fill_value=-1, scaling="none"), values).transform(pd.Series([np.nan]))[0, 0] == -1
    indicator = fit(NumberFeature(name="x", missing="indicator", scaling="none"), values)
    np.testing.assert_array_equal(indicator.transform(pd.Series([5.0, np.nan]))[:, 1], [0, 1])
    assert indicator.output_spec().width == 2


def test_number_parses_text_and_clips_outliers_learned_on_train():
    report = CleaningReport(rows_in=6)
    feature = build_feature(NumberFeature(name="price", scaling="none"))
    feature.fit(pd.Series(["1,000", "1,100", "NA", "1,050", "990", "1,020"] * 5 + ["1,000,000"]), FitContext(CleanConfig(outliers="iqr", outlier_threshold=3.0), report))
    assert "price" in report.outliers and report.outliers["price"]["clipped"] == 1
    assert feature.transform(pd.Series(["5,000,000"]))[0, 0] < 2000  # clipped to the train limit
    assert feature.transform(pd.Series(["1,050"]))[0, 0] == pytest.approx(1050)


def test_number_strict_transform_names_row_and_column():
    feature = fit(NumberFeature(name="价格"), [1.0, 2.0, 3.0])
    with pytest.raises(SchemaError, match=r"row 2.*价格|价格.*row 2"):
        feature.transform(pd.Series(["4", "cheap", "5"]), strict=True)
    assert feature.transform(pd.Series(["4", "cheap", ""])).shape == (3, 1)  # lenient at train time


def test_number_bins_become_codes():
    feature = fit(NumberFeature(name="x", bins=4), np.arange(100.0))
    codes = feature.transform(pd.Series([0.0, 30.0, 60.0, 99.0]))
    assert codes.dtype == np.int64 and list(codes) == [0, 1, 2, 3]
    assert feature.output_spec().kind == "codes" and feature.output_spec().cardinality == 4


def test_category_folds_rare_and_unseen_values_into_other():
    feature = fit(CategoryFeature(name="city", min_count=2), ["北京", "北京", "上海", "上海", "深圳", None, None])
    vocab = feature.vocabulary
    assert vocab[0] == "<other>" and "深圳" not in vocab and "<missing>" in vocab
    codes = feature.transform(pd.Series(["北京", "广州", None]))
    assert codes[0] == vocab.index("北京") and codes[1] == 0 and codes[2] == vocab.index("<missing>")


def test_category_keeps_none_and_na_strings_as_real_categories():
    feature = fit(CategoryFeature(name="damage", min_count=1), ["None", "None", "Minor", "NA", "NA"])
    assert {"None", "NA", "Minor"} <= set(feature.vocabulary)


def test_category_numbers_and_strings_map_to_the_same_codes():
    feature = fit(CategoryFeature(name="grade", min_count=1), pd.Series([1.0, 2.0, 3.0, 1.0]))
    np.testing.assert_array_equal(feature.transform(pd.Series(["1", "2", "3"])), feature.transform(pd.Series([1, 2, 3])))


def test_category_onehot():
    feature = fit(CategoryFeature(name="c", encoding="onehot", min_count=1), ["a", "b", "a"])
    out = feature.transform(pd.Series(["a", "b", "z"]))
    assert out.shape == (3, 3) and out.sum(axis=1).tolist() == [1, 1, 1] and out[2, 0] == 1


def test_binary_picks_true_value_and_fills_missing_with_mode():
    feature = fit(BinaryFeature(name="smoker"), ["yes", "no", "no", None])
    np.testing.assert_array_equal(feature.transform(pd.Series(["yes", "no", None]))[:, 0], [1, 0, 0])


def test_date_parts_are_standardised_and_cyclic():
    dates = pd.Series(pd.date_range("2020-01-01", periods=400, freq="D").strftime("%Y-%m-%d"))
    feature = fit(DateFeature(name="d"), dates)
    out = feature.transform(dates)
    assert out.shape[1] == len(feature.state["parts"]) and "month_sin" in feature.state["parts"]
    assert np.allclose(out.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(roundtrip(feature).transform(dates.head(3)), out[:3], rtol=1e-6)


def test_text_splits_chinese_into_characters_and_pads():
    texts = ["这个产品很好", "这个产品很差", "good product", "bad product"] * 3
    feature = fit(TextFeature(name="评论", max_length=6), texts)
    vocabulary = feature.tokenizer.get_vocab()
    assert "好" in vocabulary and "product" in vocabulary and "这个" not in vocabulary  # word-level: one Han character per token
    ids = feature.transform(pd.Series(["这个好", "unknownword", None]))
    assert ids.shape == (3, 6) and ids[0, 0] > 1 and ids[1, 0] == 1 and ids[2].sum() == 0


def test_featureset_transform_groups_kinds_and_roundtrips(tmp_path):
    from forgeml.config import Config

    frame = pd.DataFrame({
        "age": [20, 30, 40, 50] * 5, "city": ["a", "b", "a", "c"] * 5,
        "note": ["very good thing", "bad thing here", "ok", "good"] * 5, "y": ["p", "q"] * 10,
    })
    config = Config(target="y", features=[NumberFeature(name="age"), CategoryFeature(name="city", min_count=1), TextFeature(name="note")])
    features = FeatureSet.from_config(config, "binary").fit(frame, FitContext(CleanConfig(), CleaningReport()))
    arrays = features.transform(frame)
    assert set(arrays) == {"dense", "codes", "tokens.note", "text.note"}  # text.*: the raw strings, for n-gram models
    assert arrays["text.note"].dtype == object and arrays["text.note"][2] == "ok"
    assert arrays["dense"].shape == (20, 1) and arrays["codes"].shape == (20, 1)
    restored = FeatureSet.from_json(json.loads(json.dumps(features.to_json())))
    for key, value in restored.transform(frame).items():
        np.testing.assert_array_equal(value, arrays[key])
    with pytest.raises(SchemaError, match="city"):
        features.transform(frame.drop(columns=["city"]))


def test_class_target_numeric_labels_decode_to_ints():
    target = ClassTarget(["digit"])
    target.fit(pd.DataFrame({"digit": [3, 1, 2, 10]}))
    assert target.classes == ["1", "2", "3", "10"]
    codes = target.encode(pd.DataFrame({"digit": [10, 1]}))
    assert list(target.decode(codes)) == [10, 1]


def test_regression_target_standardises_and_decodes():
    target = RegressionTarget(["a", "b"])
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [100.0, 200.0, 300.0]})
    target.fit(frame)
    encoded = target.encode(frame)
    assert np.allclose(encoded.mean(axis=0), 0) and encoded.shape == (3, 2)
    np.testing.assert_allclose(target.decode(encoded), frame.to_numpy(), rtol=1e-5)


def test_junk_dates_at_predict_time_are_filled_and_counted(caplog):
    feature = fit(DateFeature(name="when", format="%Y-%m-%d"), ["2021-03-04", "2021-05-06", "2021-07-08"] * 5)
    rows = pd.Series(["2021-03-04", "garbage", "NA", None, "2021-02-30", "garbage"], dtype=object)
    with caplog.at_level("WARNING", logger="forgeml.features"):
        feature.transform(rows, strict=False)  # training: the cleaning report counts them as missing
        assert not caplog.records
        filled = feature.transform(rows, strict=True)
        assert [record.getMessage() for record in caplog.records] == [
            "3 value(s) of 'when' are not dates (e.g. 'garbage', '2021-02-30'): filled with 2021-05-06T00:00:00, as missing dates are"]
        np.testing.assert_array_equal(filled[1], filled[3])  # filled like a missing date
        caplog.clear()
        np.testing.assert_array_equal(feature.transform_small(rows), filled)  # the few-rows path counts too
        assert [record.getMessage()[:25] for record in caplog.records] == ["3 value(s) of 'when' are "]
        caplog.clear()
        feature.transform_small(pd.Series(["2021-03-04", None], dtype=object))  # the ISO fast path: nothing to say
        assert not caplog.records
        slashes = fit(DateFeature(name="when", format="%m/%d/%Y"), ["03/04/2021", "05/06/2021", "07/08/2021"] * 5)
        cached = slashes.transform_values(["03/04/2021", "garbage", "暂无", None])  # non-ISO: pandas' parse, cached per text
        assert [record.getMessage()[:40] for record in caplog.records] == ["1 value(s) of 'when' are not dates (e.g."]
        np.testing.assert_array_equal(cached, slashes.transform(pd.Series(["03/04/2021", "garbage", "暂无", None], dtype=object)))
