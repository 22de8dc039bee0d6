"""Word segmenters for Chinese and Japanese runs of text: what the n-gram family's *word* n-grams
read where a script has no spaces (``text_vectors``).

Why: character n-grams read Chinese without a dictionary, but words carry what they cannot —
"不错" (not bad) is one word, "不" + "错" two characters that each mean something else. On
``reviews_zh`` a logistic regression on character n-grams gained about half a point of accuracy
from jieba's word 1–2-grams beside them (bench/RESULTS.md, "Text, session 13").

A segmenter maps one CJK run (no spaces, no punctuation, already NFKC-normalised) to its words.
Text outside the CJK blocks is split exactly as without a segmenter (runs of letters and digits),
so English and numbers get the same n-grams either way. ``auto`` resolves at fit time: ``jieba``
when the train texts hold CJK characters, else ``none`` — a bundle of English text never needs a
segmenter to load. Adding one (pkuseg, say) is a function and a line in ``SEGMENTERS``.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from forgeml.errors import ConfigError

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana and Han, as features/text.py
HAS_CJK = re.compile(f"[{CJK}]")

RUNS = re.compile(rf"[{CJK}]+|[^\W{CJK}]+")  # a CJK run, or a run of other letters and digits (text_vectors.WORD_PATTERN)
CACHE_TEXTS = 100_000  # segmented texts remembered per process (≈ 50 MB at most): bagged folds re-read the same rows


@lru_cache(maxsize=1)
def _jieba() -> Callable[[str], list[str]]:
    """jieba's default dictionary (shipped in its wheel: no download), loaded once per process
    (≈1 s: it builds a prefix dictionary, cached in the temp folder by jieba itself)."""
    import logging

    try:
        import jieba
    except ImportError:
        raise ConfigError("Chinese word segmentation needs the jieba package, which is not installed",
                          where="model.segmenter: jieba", hint="pip install jieba (a forgeml dependency), or set model.segmenter: none") from None
    jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict…" lines are not the user's business
    tokenizer = jieba.Tokenizer()
    return lambda run: tokenizer.lcut(run, HMM=True)


SEGMENTERS: dict[str, Callable[[], Callable[[str], list[str]]]] = {
    "jieba": _jieba,
}


def resolve(choice: str, texts: list[str] | object) -> str:
    """The segmenter a word analyzer uses: ``auto`` is ``jieba`` if any train text has CJK."""
    if choice != "auto":
        return choice
    return "jieba" if any(HAS_CJK.search(text) for text in texts) else "none"  # type: ignore[union-attr]


def word_tokens(text: str, segmenter: str) -> list[str]:
    """The words of a normalised text: other scripts' letter/digit runs as they are, CJK runs cut by ``segmenter``."""
    return list(_tokens(text, segmenter))


@lru_cache(maxsize=CACHE_TEXTS)
def _tokens(text: str, segmenter: str) -> tuple[str, ...]:
    return tuple(word for word, _, _ in word_spans(text, segmenter))


def word_spans(text: str, segmenter: str) -> list[tuple[str, int, int]]:
    """(word, start, end) of each word of a normalised text; a segmenter's words cover their CJK
    run exactly (jieba keeps every character), so the positions follow from their lengths. The
    report's token highlights use them to find the characters of a word n-gram (explain.text_spans)."""
    cut = SEGMENTERS[segmenter]() if segmenter != "none" else None
    spans: list[tuple[str, int, int]] = []
    for match in RUNS.finditer(text):
        run, start = match.group(), match.start()
        if cut is None or not HAS_CJK.match(run):
            spans.append((run, start, match.end()))
            continue
        for word in cut(run):
            spans.append((word, start, start + len(word)))
            start += len(word)
    return spans


class WordNgrams:
    """A scikit-learn analyzer: normalised text → word n-grams (joined by a space, as scikit-learn's own)."""

    def __init__(self, ngram: tuple[int, int], segmenter: str, normalise: Callable[[str], str]):
        self.low, self.high = ngram
        self.segmenter, self.normalise = segmenter, normalise

    def __call__(self, text: str) -> list[str]:
        words = _tokens(self.normalise(text), self.segmenter)
        grams = list(words) if self.low == 1 else []
        for n in range(max(2, self.low), self.high + 1):
            grams.extend(" ".join(words[i: i + n]) for i in range(len(words) - n + 1))
        return grams
