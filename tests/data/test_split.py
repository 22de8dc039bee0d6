"""Splitting: sizes, stratification, determinism, rare classes, split columns, separate files."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.config import SplitConfig
from forgeml.data.split import split_frame
from forgeml.errors import ConfigError, DataError


def _frame(n: int = 1000, classes: dict[str, int] | None = None) -> pd.DataFrame:
    classes = classes or {"a": n}
    labels = [label for label, count in classes.items() for _ in range(count)]
    return pd.DataFrame({"x": np.arange(len(labels)), "y": labels})


def test_sizes_70_15_15_and_no_overlap() -> None:
    df = _frame(1000)
    result = split_frame(df, ["y"], "regression", SplitConfig())
    assert result.sizes() == {"train": 700, "validation": 150, "test": 150}
    ids = [set(result[name]["x"]) for name in ("train", "validation", "test")]
    assert set.union(*ids) == set(range(1000))
    assert sum(len(s) for s in ids) == 1000
    for frame in result.values():
        assert frame.index.tolist() == list(range(len(frame)))


def test_stratification_keeps_class_ratios() -> None:
    df = _frame(classes={"a": 800, "b": 150, "c": 50}).sample(frac=1.0, random_state=1)
    result = split_frame(df, ["y"], "multiclass", SplitConfig())
    for frame in result.values():
        shares = frame["y"].value_counts(normalize=True)
        assert shares["a"] == pytest.approx(0.80, abs=0.01)
        assert shares["b"] == pytest.approx(0.15, abs=0.01)
        assert shares["c"] == pytest.approx(0.05, abs=0.01)
    assert result.messages == []


def test_unstratified_split_can_drift() -> None:
    """Guards the test above: without stratify the rare class is not forced to its share."""
    df = _frame(classes={"a": 960, "b": 40})
    shares = [
        split_frame(df, ["y"], "binary", SplitConfig(stratify=False, seed=seed))["test"]["y"].eq("b").mean()
        for seed in range(10)
    ]
    assert max(abs(s - 0.04) for s in shares) > 0.005
    stratified = split_frame(df, ["y"], "binary", SplitConfig(seed=3))["test"]["y"].eq("b").sum()
    assert stratified == 6  # 15% of 40


def test_same_seed_same_split_other_seed_differs() -> None:
    df = _frame(classes={"a": 300, "b": 200})
    first = split_frame(df, ["y"], "binary", SplitConfig(seed=7))
    again = split_frame(df, ["y"], "binary", SplitConfig(seed=7))
    other = split_frame(df, ["y"], "binary", SplitConfig(seed=8))
    for name in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(first[name], again[name])
    assert set(first["test"]["x"]) != set(other["test"]["x"])


def test_class_with_one_row_goes_to_train() -> None:
    df = _frame(classes={"a": 60, "b": 39, "lonely": 1, "pair": 2})
    result = split_frame(df, ["y"], "multiclass", SplitConfig())
    assert "lonely" in set(result["train"]["y"])
    assert set(result["train"]["y"]) >= {"lonely", "pair"}
    assert "pair" not in set(result["test"]["y"]) | set(result["validation"]["y"])
    assert len(result.messages) == 1 and "'lonely' (1 row)" in result.messages[0]
    assert sum(result.sizes().values()) == len(df)


def test_zero_validation_fraction_gives_empty_frame() -> None:
    result = split_frame(_frame(100), ["y"], "regression", SplitConfig(train=0.8, validation=0.0, test=0.2))
    assert result.sizes() == {"train": 80, "validation": 0, "test": 20}
    assert list(result["validation"].columns) == ["x", "y"]


def test_split_column_assigns_rows_and_is_removed() -> None:
    df = _frame(12)
    df["fold"] = ["train"] * 6 + ["Val", "VALID", " validation "] + ["test", "Test", "TEST"]
    result = split_frame(df, ["y"], "regression", SplitConfig(column="fold"))
    assert result["train"]["x"].tolist() == [0, 1, 2, 3, 4, 5]
    assert result["validation"]["x"].tolist() == [6, 7, 8]
    assert result["test"]["x"].tolist() == [9, 10, 11]
    assert all("fold" not in frame.columns for frame in result.values())


def test_split_column_unknown_values() -> None:
    df = _frame(12)
    df["fold"] = ["train"] * 10 + ["holdout", "dev"]
    with pytest.raises(DataError, match="'holdout'") as info:
        split_frame(df, ["y"], "regression", SplitConfig(column="fold"))
    assert "'dev'" in str(info.value) and info.value.hint


def test_split_column_missing() -> None:
    with pytest.raises(DataError, match="split column 'fold' not found"):
        split_frame(_frame(20), ["y"], "regression", SplitConfig(column="fold"))


def test_separate_test_file_splits_the_rest() -> None:
    df, test = _frame(850), _frame(150).assign(x=lambda f: f["x"] + 850)  # other rows than training's
    test["extra"] = 1
    result = split_frame(df, ["y"], "regression", SplitConfig(), test_df=test)
    assert result["test"] is not test
    assert len(result["test"]) == 150 and list(result["test"].columns) == ["x", "y"]
    # validation keeps its 15:70 ratio against train
    assert result.sizes()["validation"] == round(850 * 0.15 / 0.85)
    assert sum(result.sizes().values()) == 1000


def test_separate_validation_and_test_files() -> None:
    df, val, test = _frame(50), _frame(20).assign(x=lambda f: f["x"] + 50), _frame(30).assign(x=lambda f: f["x"] + 70)
    result = split_frame(df, ["y"], "regression", SplitConfig(), validation_df=val, test_df=test)
    assert result.sizes() == {"train": 50, "validation": 20, "test": 30}


def test_separate_file_missing_columns() -> None:
    with pytest.raises(DataError, match="lacks columns: 'y'"):
        split_frame(_frame(50), ["y"], "regression", SplitConfig(), test_df=_frame(10)[["x"]])


def test_split_column_with_separate_file_is_a_config_error() -> None:
    df = _frame(20)
    df["fold"] = "train"
    with pytest.raises(ConfigError):
        split_frame(df, ["y"], "regression", SplitConfig(column="fold"), test_df=_frame(5))


def test_too_few_rows() -> None:
    with pytest.raises(DataError, match="only 9 rows") as info:
        split_frame(_frame(9), ["y"], "regression", SplitConfig())
    assert info.value.hint


def test_empty_train_split_from_column() -> None:
    df = _frame(12)
    df["fold"] = ["validation"] * 6 + ["test"] * 6
    with pytest.raises(DataError, match="train split is empty"):
        split_frame(df, ["y"], "regression", SplitConfig(column="fold"))


def test_ten_rows_fill_every_split() -> None:
    result = split_frame(_frame(classes={"a": 5, "b": 5}), ["y"], "binary", SplitConfig())
    sizes = result.sizes()
    assert sizes["validation"] >= 1 and sizes["test"] >= 1 and sum(sizes.values()) == 10


def test_consume_gives_the_same_splits_and_empties_only_its_input():
    from forgeml.config import SplitConfig
    from forgeml.data.split import split_frame

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(list("abc"), 200), "y": rng.choice(["p", "q"], 200)})
    kept = frame.copy()
    plain = split_frame(frame, ["y"], "binary", SplitConfig())
    pd.testing.assert_frame_equal(frame, kept)  # the default leaves its input alone
    consumed = split_frame(frame, ["y"], "binary", SplitConfig(), consume=True)
    for name in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(consumed.frames[name], plain.frames[name])
    assert frame.columns.empty  # its columns were handed over one by one


def test_consume_keeps_the_frame_attrs():
    from forgeml.config import SplitConfig
    from forgeml.data.split import split_frame

    frame = pd.DataFrame({"x": np.arange(100.0), "y": ["p", "q"] * 50})
    frame.attrs["base_dir"] = "/data"
    result = split_frame(frame, ["y"], "binary", SplitConfig(), consume=True)
    assert all(part.attrs.get("base_dir") == "/data" for part in result.frames.values())


def test_rows_also_in_a_separate_test_file_are_dropped_from_training() -> None:
    df = pd.DataFrame({"x": np.arange(100, dtype=float), "c": ["a", "b"] * 50, "y": np.arange(100) % 3})
    test = df.iloc[80:].copy().astype({"x": "int64"})  # 3 in one file is 3.0 in the other
    test.loc[95, "c"] = "z"  # no longer the same row
    test.attrs["source"] = "test.csv"
    before = test.copy()
    result = split_frame(df, ["y"], "multiclass", SplitConfig(), test_df=test)
    kept = set(pd.concat([result["train"], result["validation"]])["x"])
    assert kept == set(range(80)) | {95}  # the 19 shared rows left training; the altered one stayed
    assert result.messages[0].startswith("dropped 19 training row(s) that are also in the test data (test.csv)")
    pd.testing.assert_frame_equal(result["test"], before.reset_index(drop=True))  # the benchmark as given


def test_validation_file_overlap_is_dropped_too_and_no_overlap_says_nothing() -> None:
    df = pd.DataFrame({"x": np.arange(60.0), "y": np.arange(60.0) * 2})
    result = split_frame(df, ["y"], "regression", SplitConfig(), validation_df=df.iloc[:5], test_df=df.iloc[50:].copy())
    assert len(result["train"]) + len(result["validation"]) + len(result["test"]) == 60  # 15 dropped, 15 given back
    assert [m.split(" that")[0] for m in result.messages] == ["dropped 5 training row(s)", "dropped 10 training row(s)"]
    fresh = pd.DataFrame({"x": np.arange(100.0, 120.0), "y": np.arange(20.0)})
    assert split_frame(df, ["y"], "regression", SplitConfig(), test_df=fresh).messages == []
