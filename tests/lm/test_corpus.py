"""Corpus → tokens: discovery, decoding, document split, the memory-mapped cache and its reuse."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from forgeml.errors import DataError
from forgeml.lm.config import CorpusConfig
from forgeml.lm.corpus import discover, prepare_corpus, read_documents
from forgeml.lm.tokenizer import EOT, load_tokenizer

from .conftest import STDLIB_FILES, make_corpus

SMALL = CorpusConfig(vocab_size=400, val_fraction=0.2)


def test_discovery_takes_matching_text_files_and_counts_what_it_skips(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("print('hi')\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.md").write_text("# notes\nsome text\n", encoding="utf-8")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")  # binary despite its name
    (tmp_path / "huge.txt").write_bytes(b"x" * 3000)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")  # not in the globs
    (tmp_path / "empty.txt").write_bytes(b"")
    found = discover(tmp_path, CorpusConfig(max_file_mb=2000 / (1 << 20)))
    names = [f.name for f in found.files]
    assert "notes.md" in names and "data.csv" not in names and "image.txt" not in names and "huge.txt" not in names
    assert found.skipped == {"binary": 1, "larger than 0.00190735 MB": 1, "empty": 1}
    assert names == ["a.py", "notes.md"]  # a stable order: the same corpus gives the same tokens


def test_a_non_utf8_file_is_decoded_with_its_own_encoding(tmp_path: Path) -> None:
    (tmp_path / "latin1.txt").write_bytes("Café crème, naïve façade — déjà vu. " .replace("—", "-").encode("latin-1") * 20)
    (tmp_path / "utf8.txt").write_text("plain text\n", encoding="utf-8")
    documents, _ = read_documents(tmp_path, SMALL)
    assert any("Café crème" in text for text in documents.texts)
    assert documents.meta["encodings"]["utf-8"] == 1 and sum(documents.meta["encodings"].values()) == 2


def test_jsonl_records_are_documents(tmp_path: Path) -> None:
    lines = [json.dumps({"text": f"record {i}"}) for i in range(3)] + ["not json", json.dumps({"other": 1})]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    documents, _ = read_documents(tmp_path, SMALL)
    assert documents.texts == ["record 0", "record 1", "record 2", "not json"]


@pytest.mark.parametrize("content", ["nothing", "binary"])
def test_empty_or_binary_only_corpus_is_a_clear_error(tmp_path: Path, content: str) -> None:
    if content == "binary":
        for i in range(3):
            (tmp_path / f"blob{i}.txt").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError) as error:
        prepare_corpus(tmp_path, SMALL, cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert str(tmp_path) in message and "*.txt" in message
    assert ("3 binary" in message) == (content == "binary")
    with pytest.raises(DataError, match="corpus not found"):
        prepare_corpus(tmp_path / "missing", SMALL, cache_dir=tmp_path / "cache")


def test_tokens_are_cached_once_split_by_document_and_reused(corpus_dir: Path, tmp_path: Path) -> None:
    first = prepare_corpus(corpus_dir, SMALL, cache_dir=tmp_path)
    assert not first.reused and first.meta["dtype"] == "uint16" and first.meta["vocab_size"] == 400
    assert first.meta["documents"] == len(STDLIB_FILES) and first.meta["split"] == "document"
    tokenizer = load_tokenizer(first.tokenizer_json)
    eot = tokenizer.token_to_id(EOT)
    train, val = np.asarray(first.tokens("train")), np.asarray(first.tokens("val"))
    assert len(train) == first.meta["train_tokens"] and len(val) == first.meta["val_tokens"] > 0
    # whole documents: every document ends with end-of-text, so each split ends with one and holds
    # exactly as many as its documents
    assert train[-1] == eot and val[-1] == eot
    assert int((val == eot).sum()) == first.meta["val_documents"] and int((train == eot).sum()) == len(STDLIB_FILES) - first.meta["val_documents"]
    assert tokenizer.decode(val.tolist()).encode("utf-8").__len__() == first.meta["val_bytes"]

    again = prepare_corpus(corpus_dir, SMALL, cache_dir=tmp_path)
    assert again.reused and again.directory == first.directory
    (tmp_path / "copy").mkdir()
    copy = make_corpus(tmp_path / "copy")
    assert prepare_corpus(copy, SMALL, cache_dir=tmp_path).directory == first.directory  # same content, elsewhere
    (copy / "string.py").write_text((copy / "string.py").read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert prepare_corpus(copy, SMALL, cache_dir=tmp_path).directory != first.directory  # an edit rebuilds
    other_vocab = prepare_corpus(corpus_dir, SMALL.model_copy(update={"vocab_size": 300}), cache_dir=tmp_path)
    assert other_vocab.directory != first.directory


def test_byte_level_tokenizer_round_trips_any_text(corpus_dir: Path, tmp_path: Path) -> None:
    tokenizer = load_tokenizer(prepare_corpus(corpus_dir, SMALL, cache_dir=tmp_path).tokenizer_json)
    for text in ["def f(x):\n\treturn x  # ok", "naïve 漢字 🙂 \x07", "   trailing spaces   "]:
        assert tokenizer.decode(tokenizer.encode(text).ids) == text


def test_one_file_corpus_holds_out_its_tail(tmp_path: Path) -> None:
    source = STDLIB_FILES[0]
    corpus = prepare_corpus(source, SMALL, cache_dir=tmp_path)
    assert corpus.meta["split"] == "tail of the only document" and corpus.meta["val_tokens"] > 0
    assert corpus.meta["train_tokens"] > 4 * corpus.meta["val_tokens"]
