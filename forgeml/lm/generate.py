"""Text generation: KV cache, temperature / top-k / top-p / repetition-penalty sampling, stop
strings, seeds, batches of prompts, and streaming.

Two entry points share one step loop:

- ``generate(source, prompts, **options)`` → the completions of several prompts at once
  (left-padded into one batch, padding hidden from attention);
- ``stream(source, prompt, **options)`` → yields the completion's text piece by piece as tokens
  arrive; the CLI prints these, and ``forgeml serve`` sends each one as a server-sent event.
  After the loop the stream says how many tokens it generated and why it ended.

``complete(...)`` is ``generate`` with the same facts per prompt (``Completion``). Both take
``cancelled``, a function checked before every token: a server stops a generation whose client
left or whose deadline passed, instead of finishing it for nobody.

``source`` is a bundle folder, an ``LMBundle`` or a ``(model, tokenizer)`` pair. With the cache
each new token costs one position's work; without it (``use_cache=False``, the baseline the
bench compares against) the whole window is recomputed per token. Both give the same tokens.
Past the model's context the window slides (the oldest tokens drop out) and the cache cannot
follow, so those steps are computed without it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from forgeml.errors import ConfigError, DataError


@dataclass(frozen=True)
class SamplingOptions:
    max_new_tokens: int = 100
    temperature: float = 1.0  # 0 = greedy (always the most likely token)
    top_k: int | None = None  # keep only the k most likely tokens
    top_p: float | None = None  # keep the smallest set whose probability reaches p (nucleus sampling)
    repetition_penalty: float = 1.0  # > 1 discourages tokens already in the text (CTRL, Keskar et al. 2019)
    stop: Sequence[str] = field(default_factory=tuple)  # end a completion where one of these appears
    seed: int | None = None  # same seed, same prompt, same options → same text
    use_cache: bool = True
    stop_at_end_of_text: bool = True

    def validate(self) -> "SamplingOptions":
        checks = [
            (self.max_new_tokens >= 1, "max_new_tokens", f"{self.max_new_tokens}", "at least 1"),
            (self.temperature >= 0, "temperature", f"{self.temperature}", "0 (greedy) or more"),
            (self.top_k is None or self.top_k >= 1, "top_k", f"{self.top_k}", "at least 1"),
            (self.top_p is None or 0 < self.top_p <= 1, "top_p", f"{self.top_p}", "in (0, 1]"),
            (self.repetition_penalty > 0, "repetition_penalty", f"{self.repetition_penalty}", "above 0 (1 = off)"),
        ]
        for ok, name, value, allowed in checks:
            if not ok:
                raise ConfigError(f"{name} is {value}; it must be {allowed}", where=f"--{name.replace('_', '-')}")
        return self


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: int  # new tokens generated (a stop string's own tokens included)
    finish_reason: str  # "length" (max_new_tokens), "end_of_text", "stop" (a stop string) or "cancelled"


def _resolve(source: Any) -> tuple[Any, Any]:
    if isinstance(source, tuple):
        return source
    if isinstance(source, (str, Path)):
        from forgeml.lm.bundle import load_lm

        source = load_lm(source)
    return source.model, source.tokenizer


def encode_prompts(model: Any, tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids per prompt; an empty prompt starts from end-of-text (a fresh document)."""
    from forgeml.lm.tokenizer import eot_id

    context = model.config.block_size
    encoded = []
    for number, prompt in enumerate(prompts, start=1):
        ids = tokenizer.encode(prompt).ids or [eot_id(tokenizer)]
        if len(ids) >= context:
            where = "prompt" if len(prompts) == 1 else f"prompt {number}"
            raise DataError(f"the prompt is {len(ids)} tokens; the model's context is {context}", where=where,
                            hint=f"shorten it to fewer than {context} tokens (about {context * 3} characters) to leave room for new tokens")
        encoded.append(ids)
    return encoded


@torch.no_grad()
def generate_ids(model: Any, prompts: list[list[int]], options: SamplingOptions, eot: int | None = None,
                 cancelled: Callable[[], bool] | None = None) -> Iterator[list[int | None]]:
    """Yields, per step, each row's new token (None once the row has finished); stops early
    when ``cancelled()`` turns true. Works on the model's device (CPU or CUDA)."""
    from forgeml.lm.gpt import KVCache

    model.eval()
    device = model.wte.weight.device
    context = model.config.block_size
    generator = torch.Generator(device=device).manual_seed(options.seed if options.seed is not None else int(torch.seed() % (1 << 63)))
    rows = len(prompts)
    longest = max(len(p) for p in prompts)
    pads = torch.tensor([longest - len(p) for p in prompts], device=device)  # left padding per row
    tokens = torch.tensor([[0] * (longest - len(p)) + p for p in prompts], device=device)  # (B, W)
    seen = [set(p) for p in prompts]
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    cache = KVCache(model, rows) if options.use_cache else None
    fed = 0  # columns already in the cache
    for _ in range(options.max_new_tokens):
        if cancelled is not None and cancelled():
            return
        width = tokens.shape[1]
        if cache is not None and width <= context:
            new = tokens[:, fed:]  # (B, W - fed): the whole prompt first, then one token
            columns = torch.arange(fed, width, device=device)
            positions = (columns[None] - pads[:, None]).clamp(min=0)
            key_mask = torch.arange(cache.capacity, device=device)[None] >= pads[:, None]  # (B, capacity)
            logits, _ = model(new, cache=cache, positions=positions, key_mask=key_mask)
            fed = width
        else:  # no cache, or past the context: the last `context` columns, from scratch
            start = max(0, width - context)
            window = tokens[:, start:]
            pad_in_window = (pads - start).clamp(min=0)
            columns = torch.arange(window.shape[1], device=device)
            positions = (columns[None] - pad_in_window[:, None]).clamp(min=0)
            key_mask = columns[None] >= pad_in_window[:, None]
            logits, _ = model(window, positions=positions, key_mask=key_mask)
        next_tokens = sample(logits[:, -1, :].float(), options, seen, generator)  # (B,)
        next_tokens = torch.where(finished, torch.zeros_like(next_tokens), next_tokens)
        tokens = torch.cat([tokens, next_tokens[:, None]], dim=1)
        out: list[int | None] = []
        for row, token in enumerate(next_tokens.tolist()):
            if finished[row]:
                out.append(None)
                continue
            seen[row].add(token)
            if options.stop_at_end_of_text and token == eot:
                finished[row] = True
                out.append(None)
            else:
                out.append(token)
        yield out
        if bool(finished.all()):
            return


def sample(logits: torch.Tensor, options: SamplingOptions, seen: list[set[int]], generator: torch.Generator) -> torch.Tensor:
    """One token per row from (B, vocab) logits."""
    if options.repetition_penalty != 1.0:
        for row, tokens in enumerate(seen):
            index = torch.tensor(sorted(tokens), dtype=torch.long, device=logits.device)
            scores = logits[row, index]
            logits[row, index] = torch.where(scores > 0, scores / options.repetition_penalty, scores * options.repetition_penalty)
    if options.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / options.temperature
    if options.top_k is not None and options.top_k < logits.shape[-1]:
        kth = torch.topk(logits, options.top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if options.top_p is not None and options.top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs > options.top_p  # the mass before this token already reaches p
        logits = logits.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)[:, 0]


def _cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    hits = [text.find(s) for s in stops if s and s in text]
    return (text[: min(hits)], True) if hits else (text, False)


def generate(source: Any, prompts: str | Sequence[str], **options: Any) -> str | list[str]:
    """The completion (new text only) of one prompt, or a list of them for several, run as a batch."""
    single = isinstance(prompts, str)
    texts = [c.text for c in complete(source, [prompts] if single else list(prompts), **options)]
    return texts[0] if single else texts


def complete(source: Any, prompts: Sequence[str], *, cancelled: Callable[[], bool] | None = None, **options: Any) -> list[Completion]:
    """Several prompts as one batch: each one's text, token count and why it ended."""
    from forgeml.lm.tokenizer import eot_id

    model, tokenizer = _resolve(source)
    opts = SamplingOptions(**options).validate()
    prompts = list(prompts)
    ids = encode_prompts(model, tokenizer, prompts)
    generated: list[list[int]] = [[] for _ in prompts]
    reasons: list[str | None] = [None] * len(prompts)
    steps = 0
    for step in generate_ids(model, ids, opts, eot_id(tokenizer), cancelled):
        steps += 1
        for row, token in enumerate(step):
            if reasons[row] is not None:
                continue
            if token is None:
                reasons[row] = "end_of_text"
                continue
            generated[row].append(token)
            if opts.stop and _cut_at_stop(tokenizer.decode(generated[row]), opts.stop)[1]:
                reasons[row] = "stop"
        if all(reasons):
            break
    ended = "length" if steps >= opts.max_new_tokens else "cancelled"
    return [Completion(_cut_at_stop(tokenizer.decode(g), opts.stop)[0], len(g), reason or ended) for g, reason in zip(generated, reasons)]


class Stream:
    """The completion of one prompt as text pieces (iterate it once); afterwards ``tokens`` and
    ``finish_reason`` say what happened, as in ``Completion``."""

    def __init__(self, source: Any, prompt: str, cancelled: Callable[[], bool] | None, options: dict[str, Any]):
        self.model, self.tokenizer = _resolve(source)
        self.options = SamplingOptions(**options).validate()
        self.ids = encode_prompts(self.model, self.tokenizer, [prompt])
        self.cancelled = cancelled
        self.tokens = 0
        self.finish_reason: str | None = None

    def __iter__(self) -> Iterator[str]:
        from forgeml.lm.tokenizer import eot_id

        opts, tokenizer = self.options, self.tokenizer
        generated: list[int] = []
        sent = steps = 0
        for (token,) in generate_ids(self.model, self.ids, opts, eot_id(tokenizer), self.cancelled):
            steps += 1
            if token is None:
                self.finish_reason = "end_of_text"
                break
            generated.append(token)
            self.tokens = len(generated)
            text, stopped = _cut_at_stop(tokenizer.decode(generated), opts.stop)
            if stopped:
                self.finish_reason = "stop"
                if len(text) > sent:
                    yield text[sent:]
                return
            safe = len(text) - _held_back(text, opts.stop)
            if safe > sent and not text[:safe].endswith("\ufffd"):
                yield text[sent:safe]
                sent = safe
        if self.finish_reason is None:
            self.finish_reason = "length" if steps >= opts.max_new_tokens else "cancelled"
        text = _cut_at_stop(tokenizer.decode(generated), opts.stop)[0]
        if len(text) > sent:
            yield text[sent:]


def stream(source: Any, prompt: str, *, cancelled: Callable[[], bool] | None = None, **options: Any) -> Stream:
    """The completion of ``prompt`` as text pieces, yielded as soon as they are certain: a piece
    that ends inside a multi-byte character, or could be the start of a stop string, waits for
    the next token. Options are checked and the prompt encoded here, before the first piece."""
    return Stream(source, prompt, cancelled, options)


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters could still grow into a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                longest = max(longest, size)
                break
    return longest
