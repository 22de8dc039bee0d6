"""Token highlights: attributions of n-grams or tokens spread over the characters of the raw text,
then summed into the tokens a reader sees.

Characters are the common ground of every text model: the n-gram model scores words, word pairs
and character n-grams, a network scores its tokenizer's tokens, and the ensemble averages both;
each becomes per-character scores of the raw text (an n-gram occurrence's share split evenly over
the characters it covers, an n-gram occurring k times split k ways). ``display_tokens`` then cuts
the text as a reader would — each Chinese or Japanese character alone, runs of letters and
digits, each other symbol alone — and sums the characters of each.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterator

import numpy as np

from forgeml.models.text_vectors import CJK, WORD_PATTERN, normalise

_DISPLAY = re.compile(rf"[{CJK}]|[^\W{CJK}]+|\s+|\S")
_WORD = re.compile(WORD_PATTERN)


def _normalised(text: str) -> tuple[str, list[int]]:
    """The text as the n-gram analyzers read it (NFKC, lower case), with each character's index
    in the raw text (normalised one character at a time, so positions map back)."""
    chars, origin = [], []
    for i, ch in enumerate(text):
        for out in normalise(ch):
            chars.append(out)
            origin.append(i)
    return "".join(chars), origin


def _word_occurrences(text: str, ngram: tuple[int, int], segmenter: str = "none") -> Iterator[tuple[str, list[int]]]:
    """The word analyzer's n-grams of ``text`` (scikit-learn's, or a segmenter's words for
    Chinese), each with the positions of its characters."""
    if segmenter == "none":
        words = [(m.group(), list(range(m.start(), m.end()))) for m in _WORD.finditer(text)]
    else:
        from forgeml.models.segmenters import word_spans

        words = [(word, list(range(start, end))) for word, start, end in word_spans(text, segmenter)]
    for n in range(ngram[0], ngram[1] + 1):
        for i in range(len(words) - n + 1):
            yield " ".join(w for w, _ in words[i: i + n]), [p for _, span in words[i: i + n] for p in span]


def _char_wb_occurrences(text: str, ngram: tuple[int, int], segmenter: str = "none") -> Iterator[tuple[str, list[int]]]:
    """scikit-learn's ``char_wb`` n-grams (inside each space-padded word), with positions."""
    for match in re.finditer(r"\S+", text):
        padded, start = f" {match.group()} ", match.start()
        for n in range(ngram[0], ngram[1] + 1):
            offset = 0
            while True:
                # the padding spaces count as the word's first or last character (a lone " " n-gram has a weight too)
                yield padded[offset: offset + n], sorted({start + min(max(k, 1), len(padded) - 2) - 1 for k in range(offset, min(offset + n, len(padded)))})
                if offset + n >= len(padded):
                    break
                offset += 1
            if offset == 0:  # a word shorter than n counts once, as scikit-learn does
                break


OCCURRENCES = {"word": _word_occurrences, "char_wb": _char_wb_occurrences}


def character_scores(text: str, analyzer: Any, contributions: dict[str, float]) -> np.ndarray:
    """Per character of ``text``: its share of the n-gram contributions (term → value) of one analyzer."""
    scores = np.zeros(len(text))
    if not contributions or not text:
        return scores
    normal, origin = _normalised(text)
    found = [(term, positions) for term, positions in OCCURRENCES[analyzer.kind](normal, tuple(analyzer.ngram), getattr(analyzer, "segmenter", "none")) if term in contributions]
    counts = Counter(term for term, _ in found)
    for term, positions in found:
        if positions:
            share = contributions[term] / counts[term] / len(positions)
            for p in positions:
                scores[origin[p]] += share
    return scores


def spread_tokens(text: str, offsets: list[tuple[int, int]], values: np.ndarray) -> np.ndarray:
    """Per character of ``text``: each token's value spread evenly over its characters (a
    tokenizer's offsets into the same text; tokens without characters, such as [CLS], are left out)."""
    scores = np.zeros(len(text))
    for (start, end), value in zip(offsets, values):
        start, end = max(0, start), min(len(text), end)
        if end > start:
            scores[start:end] += value / (end - start)
    return scores


def display_tokens(text: str, scores: np.ndarray) -> list[tuple[str, float]]:
    """The text cut into the tokens a reader sees, each with the sum of its characters' scores;
    the spaces between them are tokens too (scored 0), so the tokens join back into the text."""
    return [(m.group(), float(scores[m.start(): m.end()].sum())) for m in _DISPLAY.finditer(text)]
