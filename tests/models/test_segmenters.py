"""Word segmentation of Chinese for the n-gram model's word n-grams: jieba's words cover their
text exactly, other scripts are split as scikit-learn splits them, a missing jieba is one line."""
from __future__ import annotations

import sys

import pytest

from forgeml.errors import ConfigError
from forgeml.models import segmenters
from forgeml.models.text_vectors import normalise


def test_words_cover_their_characters_and_latin_words_stay_whole():
    text = normalise("这本书质量很好，iPhone15也不错！Great value")
    spans = segmenters.word_spans(text, "jieba")
    assert all(text[start:end] == word for word, start, end in spans)  # positions are exact (the highlights use them)
    words = [word for word, _, _ in spans]
    assert "质量" in words and "不错" in words and "iphone15" in words and "great" in words
    assert "，" not in "".join(words) and "!" not in "".join(words)  # punctuation is no word
    assert segmenters.word_tokens(text, "none") == ["这本书质量很好", "iphone15", "也不错", "great", "value"]  # a CJK run whole


def test_auto_picks_jieba_only_for_text_with_cjk():
    assert segmenters.resolve("auto", ["great value", "bad"]) == "none"
    assert segmenters.resolve("auto", ["great value", "质量很好"]) == "jieba"
    assert segmenters.resolve("none", ["质量很好"]) == "none"


def test_word_ngrams_join_words_with_a_space():
    analyzer = segmenters.WordNgrams((1, 2), "jieba", normalise)
    grams = analyzer("质量很好")
    assert "质量" in grams and "质量 很" in grams


def test_a_missing_jieba_is_one_line_naming_the_option(monkeypatch):
    segmenters._jieba.cache_clear()
    segmenters._tokens.cache_clear()
    monkeypatch.setitem(sys.modules, "jieba", None)  # import jieba → ImportError
    try:
        with pytest.raises(ConfigError) as raised:
            segmenters.word_tokens("质量很好", "jieba")
        assert raised.value.where == "model.segmenter: jieba" and "segmenter: none" in raised.value.hint
    finally:
        segmenters._jieba.cache_clear()
        segmenters._tokens.cache_clear()
