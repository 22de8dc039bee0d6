"""Generation: seeds, the KV cache, batching, sampling options, stop strings, streaming, bad input."""
from __future__ import annotations

import pytest
import torch

from forgeml.errors import ConfigError, DataError
from forgeml.lm.config import CorpusConfig, GPTConfig
from forgeml.lm.corpus import prepare_corpus
from forgeml.lm.generate import SamplingOptions, generate, generate_ids, sample, stream
from forgeml.lm.gpt import GPT
from forgeml.lm.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def lm(corpus_dir, tmp_path_factory):
    corpus = prepare_corpus(corpus_dir, CorpusConfig(vocab_size=300), cache_dir=tmp_path_factory.mktemp("cache"))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=300, block_size=24, n_layer=2, n_head=2, n_embd=32)).eval()
    return model, load_tokenizer(corpus.tokenizer_json)


PROMPTS = [[5, 6, 7, 8, 9, 10], [11, 12], [13]]


def _run(model, prompts, **options) -> list[list]:
    return list(generate_ids(model, prompts, SamplingOptions(**options)))


@pytest.mark.parametrize("options", [dict(temperature=0), dict(temperature=1.0, top_k=20, top_p=0.9, repetition_penalty=1.3, seed=3)])
def test_kv_cache_generation_equals_recomputing_the_window(lm, options) -> None:
    model, _ = lm
    # 30 new tokens after a 6-token prompt run past the 24-token context: the window slides too
    cached = _run(model, PROMPTS, max_new_tokens=30, use_cache=True, stop_at_end_of_text=False, **options)
    plain = _run(model, PROMPTS, max_new_tokens=30, use_cache=False, stop_at_end_of_text=False, **options)
    assert cached == plain and len(cached) == 30


def test_a_prompt_in_a_batch_gets_what_it_gets_alone(lm) -> None:
    model, _ = lm
    alone = _run(model, [PROMPTS[1]], max_new_tokens=12, temperature=0, stop_at_end_of_text=False)
    batched = _run(model, PROMPTS, max_new_tokens=12, temperature=0, stop_at_end_of_text=False)
    assert [step[0] for step in alone] == [step[1] for step in batched]


def test_same_seed_same_text_other_seed_other_text(lm) -> None:
    a = generate(lm, "def parse(", max_new_tokens=20, seed=7)
    assert a == generate(lm, "def parse(", max_new_tokens=20, seed=7)
    assert a != generate(lm, "def parse(", max_new_tokens=20, seed=8)


def test_top_k_one_is_greedy_and_zero_temperature_is_greedy(lm) -> None:
    model, _ = lm
    greedy = _run(model, PROMPTS, max_new_tokens=8, temperature=0, stop_at_end_of_text=False)
    assert _run(model, PROMPTS, max_new_tokens=8, temperature=1.5, top_k=1, seed=1, stop_at_end_of_text=False) == greedy


def test_sampling_filters() -> None:
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, -1.0]])
    draws = lambda **o: {int(sample(logits.clone(), SamplingOptions(**o), [set()], torch.Generator().manual_seed(s))) for s in range(200)}
    assert draws(top_k=2) == {0, 1}
    assert draws(top_p=0.5) == {0}  # token 0 alone holds 64 % of the mass
    assert draws(top_p=0.9) == {0, 1, 2}
    penalised = logits.clone()
    sample(penalised, SamplingOptions(temperature=0, repetition_penalty=2.0), [{0, 4}], torch.Generator())
    assert penalised.tolist() == [[2.0, 3.0, 2.0, 1.0, -2.0]]  # positive scores halved, negative doubled


def test_stop_strings_end_the_completion_and_stream_pieces_add_up(lm) -> None:
    options = dict(max_new_tokens=40, seed=5, temperature=1.0)
    full = generate(lm, "import ", **options)
    assert "".join(stream(lm, "import ", **options)) == full
    stop = full[3:5]
    cut = generate(lm, "import ", stop=(stop,), **options)
    assert stop not in cut and full.startswith(cut) and len(cut) <= full.index(stop)
    assert "".join(stream(lm, "import ", stop=(stop,), **options)) == cut


def test_batch_generation_returns_one_completion_per_prompt(lm) -> None:
    out = generate(lm, ["a", "def ", "class X"], max_new_tokens=5, seed=0)
    assert len(out) == 3 and all(isinstance(text, str) for text in out)


def test_prompt_longer_than_the_context_is_a_clear_error(lm) -> None:
    with pytest.raises(DataError, match=r"the prompt is \d+ tokens; the model's context is 24"):
        generate(lm, "word " * 100, max_new_tokens=5)


@pytest.mark.parametrize("option, value", [("max_new_tokens", 0), ("temperature", -1.0), ("top_p", 1.5), ("top_k", 0)])
def test_impossible_sampling_options_are_rejected_by_name(lm, option, value) -> None:
    with pytest.raises(ConfigError, match=f"--{option.replace('_', '-')}"):
        generate(lm, "x", **{"max_new_tokens": 5, option: value})
