"""Text features: Hugging Face tokenizers trained on train, stored as JSON, Chinese as well as English."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forgeml.config import CleanConfig, TextFeature
from forgeml.data.clean import CleaningReport
from forgeml.errors import ConfigError, DataError
from forgeml.features import FitContext, build_feature, feature_from_json
from tests.multimodal_data import chinese_corpus, english_reviews


def fit(config, values, checkpoint=None):
    feature = build_feature(config)
    feature.fit(pd.Series(values), FitContext(CleanConfig(), CleaningReport(rows_in=len(values)), checkpoint=checkpoint))
    return feature


@pytest.mark.parametrize("kind", ["word", "bpe", "wordpiece"])
def test_trained_tokenizers_pad_truncate_and_survive_json(kind):
    texts = english_reviews(120)["review"].tolist()
    feature = fit(TextFeature(name="review", tokenizer=kind), texts)
    state = json.loads(json.dumps(feature.to_json()))
    assert state["state"]["tokenizer"]["model"]["type"] == {"word": "WordLevel", "bpe": "BPE", "wordpiece": "WordPiece"}[kind]
    ids = feature.transform(pd.Series(texts[:5] + ["", None]))
    length = feature.state["max_length"]
    assert ids.shape == (7, length) and feature.state["pad_id"] == 0
    assert (ids[5] == 0).all() and (ids[6] == 0).all()  # empty and missing texts are all padding
    assert (ids[0] > 1).sum() >= 4  # known tokens, not [UNK]
    np.testing.assert_array_equal(feature_from_json(state).transform(pd.Series(texts[:5])), ids[:5])


def test_max_length_and_vocabulary_are_inferred_from_train():
    texts = [" ".join(["word"] * n) for n in range(1, 41)] * 3
    feature = fit(TextFeature(name="t"), texts)
    assert 30 <= feature.state["max_length"] <= 40  # the 95th percentile of token counts
    assert feature.state["vocab_size"] == 3  # [PAD], [UNK], "word": words seen once are not kept
    long = feature.transform(pd.Series([" ".join(["word"] * 100)]))
    assert long.shape == (1, feature.state["max_length"]) and (long > 0).all()  # truncated, not wrapped


def test_chinese_word_level_is_characters_and_bpe_learns_words():
    texts = chinese_corpus(240)["新闻"].tolist()
    word = fit(TextFeature(name="新闻", tokenizer="word"), texts)
    assert {"股", "票", "足", "球"} <= set(word.tokenizer.get_vocab())
    assert word.tokens("股票市场") == ["股", "票", "市", "场"]
    bpe = fit(TextFeature(name="新闻", tokenizer="bpe", vocab_size=300), texts)
    pieces = bpe.tokens("股票市场增长")
    assert any(len(piece) >= 2 for piece in pieces)  # merges learned inside unspaced text


def test_cleaning_normalises_unicode_strips_controls_and_urls():
    feature = fit(TextFeature(name="t", remove_urls=True), ["Ｆｕｌｌ width\x07 text see https://x.example/a?b=1 now"] * 4)
    assert feature.tokens("Ｆｕｌｌ width\x07 text see https://x.example/a?b=1 now") == ["full", "width", "text", "see", "now"]


def test_all_empty_text_column_is_a_clear_error():
    with pytest.raises(DataError, match="empty in every train row"):
        fit(TextFeature(name="notes"), [None, "", "  ", None])


def test_pretrained_tokenizer_comes_from_the_checkpoint(minilm_dir):
    feature = fit(TextFeature(name="t", tokenizer="pretrained"), ["A short review.", "Another one here"] * 5, checkpoint=str(minilm_dir))
    assert feature.state["vocab_size"] == 30522 and feature.state["pretrained"]["model_type"] == "bert"
    ids = feature.transform(pd.Series(["A short review."]))
    assert ids[0, 0] == 101 and 102 in ids[0]  # [CLS] ... [SEP], as BERT expects


@pytest.mark.parametrize("path, message", [("/no/such/folder", "not found"), (".", "no config.json")])
def test_pretrained_path_missing_or_not_a_checkpoint(path, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        fit(TextFeature(name="t", tokenizer="pretrained"), ["text one", "text two"], checkpoint=str(tmp_path if path == "." else path))


def test_missing_value_markers_are_missing_text_not_words():
    """breaches.csv writes MySQL's NULL as "\\N": such a cell is missing (all padding, counted), not a token."""
    texts = english_reviews(60)["review"].tolist() + ["\\N", "NULL", " N/A "] * 10
    report = CleaningReport(rows_in=len(texts))
    feature = build_feature(TextFeature(name="review"))
    feature.fit(pd.Series(texts), FitContext(CleanConfig(), report))
    assert "\\n" not in feature.tokenizer.get_vocab() and "null" not in feature.tokenizer.get_vocab()
    ids = feature.transform(pd.Series(["\\N", "NULL", None, "N/A"]))
    assert (ids == feature.state["pad_id"]).all()
    assert report.missing["review"]["count"] == 30
    assert not (feature.transform(pd.Series(["none"])) == feature.state["pad_id"]).all()  # a word that may be an answer stays text
