"""Image features and image folders: decoding, sizes and modes, train-only statistics, bad files."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forgeml.config import CleanConfig, ImageFeature
from forgeml.data.clean import CleaningReport
from forgeml.data.images import image_folder_frame
from forgeml.data.infer import infer_features
from forgeml.data.load import load_table
from forgeml.errors import DataError
from forgeml.features import FitContext, build_feature, feature_from_json
from tests.multimodal_data import shape_image, write_image_folder


def column(paths, base_dir):
    series = pd.Series(paths, dtype=object)
    series.attrs["base_dir"] = str(base_dir)
    return series


def fitted(config, series):
    feature = build_feature(config)
    mask = feature.missing_mask(series)
    feature.fit(series[~mask].reset_index(drop=True).pipe(lambda s: s.__setattr__("attrs", series.attrs) or s),
                FitContext(CleanConfig(), CleaningReport()))
    return feature, mask


def test_mixed_sizes_and_modes_become_one_shape(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    shape_image("left", rng, 20, "L").save(tmp_path / "gray.png")
    shape_image("left", rng, 40, "RGB").resize((40, 30)).save(tmp_path / "wide.jpg", quality=95)
    shape_image("right", rng, 24, "RGBA").save(tmp_path / "alpha.png")
    shape_image("right", rng, 24, "RGB").convert("P").save(tmp_path / "palette.gif")
    Image.fromarray(np.zeros((24, 24, 4), np.uint8), "RGBA").save(tmp_path / "clear.png")  # fully transparent → white
    series = column(["gray.png", "wide.jpg", "alpha.png", "palette.gif", "clear.png"], tmp_path)
    feature, mask = fitted(ImageFeature(name="img"), series)
    assert not mask.any()
    assert feature.state["channels"] == 3 and feature.state["size"] == 24  # median short side
    out = feature.transform(series)
    assert out.shape == (5, 3, 24, 24) and out.dtype == np.uint8
    assert (out[4] == 255).all()
    assert len(feature.state["mean"]) == 3 and all(0 < s for s in feature.state["std"])
    assert feature.state["augment"] is None  # 24 px: below the augmentation default's 32
    restored = feature_from_json(json.loads(json.dumps(feature.to_json())))
    np.testing.assert_array_equal(restored.transform(series), out)


@pytest.mark.parametrize("policy", ["crop", "stretch", "pad"])
def test_resize_policies(tmp_path, policy):
    from PIL import Image

    pixels = np.zeros((20, 40), np.uint8)
    pixels[:, :20] = 255  # left half white
    Image.fromarray(pixels, "L").save(tmp_path / "wide.png")
    feature, _ = fitted(ImageFeature(name="img", size=20, resize=policy), column(["wide.png"], tmp_path))
    out = feature.transform(column(["wide.png"], tmp_path))[0, 0]
    assert out.shape == (20, 20) and feature.state["channels"] == 1
    if policy == "crop":  # the centre 20×20 straddles the edge: half white, half black
        assert 0.4 < (out > 128).mean() < 0.6
    if policy == "stretch":
        assert (out[:, :8] > 200).all() and (out[:, 12:] < 50).all()
    if policy == "pad":  # 40×20 → 20×10 centred: black bands above and below
        assert (out[:4] == 0).all() and (out[6:14, :8] > 200).all()


def test_unreadable_files_are_skipped_with_a_count_and_names(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        shape_image("left", rng).save(tmp_path / f"ok{i}.png")
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "cut.png").write_bytes((tmp_path / "ok0.png").read_bytes()[:120])  # truncated
    series = column(["ok0.png", "notes.png", "ok1.png", "cut.png", "gone.png", "ok2.png"], tmp_path)
    feature, mask = fitted(ImageFeature(name="img"), series)
    assert mask.tolist() == [False, True, False, True, True, False]
    note = feature.notes()[0]
    assert "skipped 3 unreadable" in note and "notes.png (not an image)" in note and "cut.png (truncated)" in note and "gone.png (file not found)" in note
    _, errors = feature.transform_rows(series, strict=True)
    assert sorted(errors) == [1, 3, 4]


def test_normalisation_statistics_come_from_the_train_split_only(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((16, 16), 50, np.uint8), "L").save(tmp_path / "dark.png")
    Image.fromarray(np.full((16, 16), 250, np.uint8), "L").save(tmp_path / "light.png")
    feature, _ = fitted(ImageFeature(name="img"), column(["dark.png"] * 3, tmp_path))
    assert feature.state["mean"] == [pytest.approx(50 / 255, abs=1e-4)]
    assert feature.transform(column(["light.png"], tmp_path))[0, 0, 0, 0] == 250  # other splits: transformed, not fitted


def test_image_folder_layout_empty_classes_and_other_files(tmp_path):
    root = write_image_folder(tmp_path / "imgs", per_class=3)
    (root / "empty").mkdir()
    (root / "left" / "README.txt").write_text("notes")
    frame = load_table(root)
    assert list(frame.columns) == ["image", "label"] and len(frame) == 9
    assert sorted(frame["label"].unique()) == ["left", "right", "stripes"]
    assert frame.attrs["base_dir"] == str(root.resolve())
    notes = " ".join(frame.attrs["notes"])
    assert "without images ignored: empty" in notes and "1 file(s) that are not images" in notes
    features, _ = infer_features(frame, ["label"])
    assert [(f.name, f.type) for f in features] == [("image", "image")]


def test_flat_folder_has_no_label_and_empty_folder_is_an_error(tmp_path):
    rng = np.random.default_rng(0)
    shape_image("left", rng).save(tmp_path / "a.png")
    assert list(image_folder_frame(tmp_path).columns) == ["image"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        load_table(tmp_path / "empty")


def test_one_class_folder_cannot_train(tmp_path):
    from forgeml import Pipeline

    root = write_image_folder(tmp_path / "one", per_class=5, classes=("left",))
    with pytest.raises(DataError, match="single value 'left'"):
        Pipeline(target="label").fit(root)


def test_geometry_is_chosen_on_the_train_split_not_on_every_row(tmp_path):
    rng = np.random.default_rng(3)
    for i in range(3):
        shape_image("left", rng, 16, "L").save(tmp_path / f"train{i}.png")
    for i in range(5):  # the held-out rows are larger and in colour: they must not decide
        shape_image("right", rng, 48, "RGB").save(tmp_path / f"test{i}.png")
    every = column([f"train{i}.png" for i in range(3)] + [f"test{i}.png" for i in range(5)], tmp_path)
    feature = build_feature(ImageFeature(name="img"))
    assert not feature.missing_mask(every).any()  # before the split: all rows, a provisional 48 px RGB
    feature.fit(column([f"train{i}.png" for i in range(3)], tmp_path), FitContext(CleanConfig(), CleaningReport()))
    assert (feature.state["size"], feature.state["channels"]) == (16, 1)
    assert feature.transform(every).shape == (8, 1, 16, 16)  # nothing decoded at the provisional size is served
