"""The distillation transfer set's new rows (forgeml/compress/augment.py): near the data, from
its own values, the input untouched."""
from __future__ import annotations

import numpy as np
import pandas as pd

from forgeml.compress.augment import AugmentOptions, augment
from forgeml.config import Config
from forgeml.features.featureset import FeatureSet


def features_of(frame: pd.DataFrame, target: str):
    from forgeml.data.infer import infer_features

    inferred, _ = infer_features(frame, [target])
    return FeatureSet.from_config(Config(target=target, features=inferred), "binary").features


def table(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    label = rng.choice(["a", "b"], rows)
    words = {"a": ["red apple", "ripe apple pie", "green apple"], "b": ["old boat", "fast boat trip", "blue boat"]}
    frame = pd.DataFrame({
        "size": rng.normal(10, 2, rows).round(3),
        "count": rng.integers(0, 50, rows).astype(float),
        "colour": rng.choice(["red", "green", "blue"], rows, p=[0.6, 0.3, 0.1]),
        "note": [f"{words[value][i % 3]} number {i}" for i, value in enumerate(label)],
        "label": label,
    })
    frame.loc[::17, "size"] = np.nan
    return frame


def test_new_rows_stay_within_the_data_and_leave_the_input_alone():
    frame = table()
    original = frame.copy()
    new = augment(frame, features_of(frame, "label"), (frame["label"] == "b").to_numpy().astype(int), AugmentOptions(multiplier=3, seed=1))
    pd.testing.assert_frame_equal(frame, original)
    assert len(new) == 900 and list(new.columns) == list(frame.columns)
    size = new["size"].astype(float)
    assert size.min() >= frame["size"].min() and size.max() <= frame["size"].max()
    assert size.isna().any() and not size.dropna().isin(frame["size"].dropna()).all()  # jittered and mixed, blanks kept
    assert set(new["colour"]) <= set(frame["colour"])
    share = new["colour"].value_counts(normalize=True)
    assert abs(share["red"] - 0.6) < 0.08  # resampled from the column's frequencies
    assert set(new["note"]) <= set(frame["note"])  # text is never invented


def test_text_and_mixup_stay_within_the_class():
    frame = table()
    groups = (frame["label"] == "b").to_numpy().astype(int)
    new = augment(frame, features_of(frame, "label"), groups, AugmentOptions(multiplier=4, resample=1.0, seed=2))
    # each new row's text, swapped or mixed in, belongs to a row of the class of the row it came from
    note_class = dict(zip(frame["note"], frame["label"]))
    assert (new["note"].map(note_class) == new["label"]).all()


def test_same_seed_same_rows_and_zero_multiplier_none():
    frame = table(60)
    features = features_of(frame, "label")
    groups = np.zeros(len(frame), dtype=int)
    pd.testing.assert_frame_equal(augment(frame, features, groups, AugmentOptions(seed=5)), augment(frame, features, groups, AugmentOptions(seed=5)))
    assert len(augment(frame, features, groups, AugmentOptions(multiplier=0))) == 0
