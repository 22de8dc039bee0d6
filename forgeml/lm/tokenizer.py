"""Byte-level BPE (GPT-2 style) trained with Hugging Face ``tokenizers``.

Byte-level means every string round-trips: the 256 byte values are the base alphabet, so no
text is ever "unknown". One special token, ``<|endoftext|>``, marks document boundaries, so the
model learns where a file ends instead of running one file into the next.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOT = "<|endoftext|>"


def train_tokenizer(documents: Iterable[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen in the corpus or not
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer=trainer)
    return tokenizer


def load_tokenizer(text: str) -> Tokenizer:
    return Tokenizer.from_str(text)


def eot_id(tokenizer: Tokenizer) -> int:
    return int(tokenizer.token_to_id(EOT))


def encode_documents(tokenizer: Tokenizer, documents: Iterable[str], chunk: int = 256) -> Iterator[list[int]]:
    """Token ids per document, each followed by the end-of-text id; batched for the Rust threads."""
    eot = eot_id(tokenizer)
    batch: list[str] = []
    for document in documents:
        batch.append(document)
        if len(batch) == chunk:
            yield from ([*e.ids, eot] for e in tokenizer.encode_batch(batch))
            batch = []
    if batch:
        yield from ([*e.ids, eot] for e in tokenizer.encode_batch(batch))
