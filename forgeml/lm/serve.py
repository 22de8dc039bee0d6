"""The language-model service: ``POST /v1/generate`` for ``forgeml serve <lm-bundle>``.

Registered in the server's service registry under the bundle kind ``lm`` (``serve.app``), so
``forgeml serve runs/<id>/bundle`` serves a GPT bundle the way it serves a tabular one: same
API keys, body limit, 415/422/504 answers, /healthz, /readyz, /metrics and /v1/model.

A request is one prompt (``prompt``) or a batch (``prompts``) plus the sampling options of
``forgeml lm generate``, checked by the same rules (``SamplingOptions``): a bad value, or a prompt
as long as the context, is a 422 naming the field. ``"stream": true`` (the default, one prompt)
answers with server-sent events: one ``data: {"text": …}`` event per piece as it is generated,
then ``event: done`` with the token count and why generation ended; ``"stream": false`` answers
once with JSON. Same seed, same text, either way.

Generation runs in worker threads, never on the event loop. Each one checks before every token
whether its client has gone (a closed stream, or a closed connection while a JSON answer is
awaited) or its deadline (``--timeout-ms``) has passed, and stops there rather than finishing
text nobody will read.
"""
import asyncio
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Optional

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

from forgeml.errors import ConfigError, DataError
from forgeml.serve.headers import header_value
from forgeml.serve.settings import ServeSettings

log = logging.getLogger("forgeml.serve")

# Generations running at once. Each one is a sequence of small forward passes; two keep both
# cores of a small machine busy without making every request wait for all the others.
GENERATION_WORKERS = 2
MAX_STOP_STRINGS = 16
DISCONNECT_POLL_S = 0.1  # how often a JSON request's connection is checked while it generates


def request_model(token_limit: int, prompt_limit: int) -> type[BaseModel]:
    """The request schema, with this server's limits in it (they show in /docs)."""

    class GenerateRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
            "prompt": "def parse_args(", "max_new_tokens": 64, "temperature": 0.8, "top_p": 0.95, "seed": 0, "stream": True}})

        prompt: Optional[StrictStr] = Field(None, description="The text to continue ('' starts a fresh document). Give this or `prompts`.")
        prompts: Optional[list[StrictStr]] = Field(None, min_length=1, max_length=prompt_limit,
                                                   description=f"Several prompts, generated as one batch (1 to {prompt_limit}; not streamed).")
        max_new_tokens: StrictInt = Field(200, ge=1, le=token_limit, description=f"Tokens to generate per prompt (1 to {token_limit}).")
        temperature: float = Field(0.8, ge=0, strict=True, allow_inf_nan=False, description="0 = greedy; higher = more varied.")
        top_k: Optional[StrictInt] = Field(None, ge=1, description="Sample only from the k most likely tokens.")
        top_p: Optional[float] = Field(None, gt=0, le=1, strict=True, description="Nucleus sampling: the smallest set of tokens with this much probability.")
        repetition_penalty: float = Field(1.0, gt=0, strict=True, allow_inf_nan=False, description="> 1 discourages tokens already in the text.")
        stop: list[StrictStr] = Field(default_factory=list, max_length=MAX_STOP_STRINGS, description="End a completion where one of these appears.")
        seed: Optional[StrictInt] = Field(None, description="Same seed, same prompt, same options → same text.")
        stream: StrictBool = Field(True, description="Server-sent events as the text is generated (one prompt); false: one JSON answer.")

        @model_validator(mode="after")
        def _one_kind_of_prompt(self) -> "GenerateRequest":
            if self.prompt is not None and self.prompts is not None:
                raise ValueError("give `prompt` or `prompts`, not both")
            if self.prompts is not None and self.stream:
                raise ValueError("several `prompts` are answered at once: set \"stream\": false, or stream one `prompt`")
            return self

        def prompt_list(self) -> list[tuple[str, str]]:
            """(field name, text) per prompt; no prompt at all is the empty prompt, as in the CLI."""
            if self.prompts is not None:
                return [(f"prompts[{i}]", text) for i, text in enumerate(self.prompts)]
            return [("prompt", self.prompt or "")]

        def sampling(self) -> dict[str, Any]:
            return dict(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
                        repetition_penalty=self.repetition_penalty, stop=tuple(self.stop), seed=self.seed)

    return GenerateRequest


class CompletionOut(BaseModel):
    text: str
    tokens: int = Field(description="New tokens generated.")
    finish_reason: str = Field(description="length (max_new_tokens), end_of_text, stop (a stop string)")


class GenerateResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_version: str
    completions: list[CompletionOut]


class Cancel:
    """Why a generation should stop now: its client left, its deadline passed, or the server is stopping."""

    def __init__(self, deadline: float, closing: threading.Event):
        self.deadline, self.closing = deadline, closing
        self.left = threading.Event()

    def timed_out(self) -> bool:
        return time.monotonic() > self.deadline

    def __call__(self) -> bool:
        return self.left.is_set() or self.closing.is_set() or self.timed_out()


class LMService:
    kind = "lm"

    def __init__(self, bundle: Path, manifest: dict[str, Any], settings: ServeSettings, metrics: Any, model_version: str):
        from prometheus_client import Counter, Histogram

        from forgeml.lm.bundle import load_lm
        from forgeml.serve.metrics import LATENCY_BUCKETS

        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)
        if settings.backend != "torch":
            raise ConfigError(f"--backend {settings.backend} serves tabular bundles; a language model runs on torch", where="--backend",
                              hint="leave --backend out (torch) for this bundle")
        self.bundle, self.settings, self.model_version = bundle, settings, model_version
        self.lm = load_lm(bundle, device=settings.device)
        self.Request = request_model(settings.max_new_tokens, settings.max_batch_size)
        self.executor = ThreadPoolExecutor(max_workers=GENERATION_WORKERS, thread_name_prefix="forgeml-generate")
        self.closing = threading.Event()
        self.json_paths = {"/v1/generate"}
        self.body_limits: dict[str, int] = {}
        registry = metrics.registry
        self.requests = Counter("forgeml_generate_requests", "Generation requests answered, by mode and finish reason",
                                ["mode", "finish_reason"], registry=registry)
        self.generated = Counter("forgeml_generated_tokens", "Tokens generated (cancelled generations included)", registry=registry)
        self.prompt_tokens = Counter("forgeml_prompt_tokens", "Prompt tokens read", registry=registry)
        self.first_piece = Histogram("forgeml_generate_first_piece_seconds", "Time from request to the first streamed text",
                                     buckets=LATENCY_BUCKETS, registry=registry)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        from forgeml.lm.generate import complete

        # One real token before /readyz says yes: a model that cannot generate fails at start-up.
        await asyncio.get_running_loop().run_in_executor(self.executor, lambda: complete(self.lm, [""], max_new_tokens=1, seed=0))

    async def stop(self) -> None:
        self.closing.set()  # generations still running (none, after uvicorn's graceful drain) end at their next token
        self.executor.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ HTTP
    def describe(self) -> dict[str, Any]:
        from forgeml.lm.config import PRESETS

        m, model = self.lm.config.model, self.lm.model
        shape = dict(n_layer=m.n_layer, n_head=m.n_head, n_embd=m.n_embd)
        preset = next((name for name, p in PRESETS.items() if all(p[k] == v for k, v in shape.items())), None)
        return {
            "kind": self.kind, "model_version": self.model_version, "model": "gpt", "preset": preset,
            "params": model.num_params(), "context": m.block_size, "vocab_size": m.vocab_size,
            "n_layer": m.n_layer, "n_head": m.n_head, "n_embd": m.n_embd, "device": str(model.wte.weight.device),
            "metrics": {k: v for k, v in self.lm.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            "input_schema": self.Request.model_json_schema(), "output_schema": GenerateResponse.model_json_schema(),
            "limits": {"max_new_tokens": self.settings.max_new_tokens, "max_prompts": self.settings.max_batch_size,
                       "max_body_bytes": self.settings.max_body_bytes, "timeout_ms": self.settings.timeout_ms},
        }

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/v1", tags=["generate"])
        service = self

        async def generate(body: service.Request, request: Request) -> Any:  # type: ignore[name-defined]
            return await service.answer(body, request)

        generate.__annotations__["body"] = self.Request
        router.add_api_route("/generate", generate, methods=["POST"], response_model=None,
                             summary="Continue a prompt: server-sent events as the text is generated, or one JSON answer",
                             responses={200: {"content": {"text/event-stream": {}, "application/json": {"schema": GenerateResponse.model_json_schema()}}}})
        return router

    def encode(self, prompts: list[tuple[str, str]]) -> int:
        """Checks every prompt fits the context (422 naming it), as ``forgeml lm generate`` does; returns the token count."""
        from forgeml.lm.generate import encode_prompts

        total = 0
        for name, text in prompts:
            try:
                total += len(encode_prompts(self.lm.model, self.lm.tokenizer, [text])[0])
            except DataError as exc:
                message = f"{exc.message}; {exc.hint}" if exc.hint else exc.message
                raise RequestValidationError([{"loc": ("body", *_loc(name)), "msg": message, "type": "value_error"}]) from None
        return total

    async def answer(self, body: Any, request: Request) -> Any:
        deadline = time.monotonic() + self.settings.timeout_ms / 1000
        prompts = body.prompt_list()
        self.prompt_tokens.inc(await run_in_threadpool(self.encode, prompts))  # a batch of long prompts is not free
        cancel = Cancel(deadline, self.closing)
        if body.stream:
            return StreamingResponse(self.events(prompts[0][1], body.sampling(), cancel), media_type="text/event-stream",
                                     headers={"cache-control": "no-cache", "x-accel-buffering": "no", "x-model-version": header_value(self.model_version)})
        completions = await self.run(lambda: self._complete([text for _, text in prompts], body.sampling(), cancel), cancel, request)
        return JSONResponse({"model_version": self.model_version,
                             "completions": [{"text": c.text, "tokens": c.tokens, "finish_reason": c.finish_reason} for c in completions]})

    async def run(self, work: Callable[[], Any], cancel: Cancel, request: Request) -> Any:
        """The JSON answer's generation in a worker; meanwhile the connection is watched, so a
        client that hangs up stops it as a closed stream does."""
        future = asyncio.get_running_loop().run_in_executor(self.executor, work)
        while not future.done():
            remaining = cancel.deadline - time.monotonic()
            if remaining <= 0:
                cancel.left.set()
                self.requests.labels("json", "timeout").inc()
                raise HTTPException(504, f"no answer within the {self.settings.timeout_ms:g} ms request timeout")
            await asyncio.wait({future}, timeout=min(DISCONNECT_POLL_S, remaining))
            if not future.done() and await request.is_disconnected():
                cancel.left.set()
                await asyncio.wait({future})  # ends at its next token (and counts its tokens)
                self.requests.labels("json", "client_left").inc()
                raise HTTPException(499, "the client closed the connection")  # nobody reads it; the logs and metrics do
        result = future.result()
        if cancel.timed_out() and any(c.finish_reason == "cancelled" for c in result):
            self.requests.labels("json", "timeout").inc()
            raise HTTPException(504, f"no answer within the {self.settings.timeout_ms:g} ms request timeout")
        return result

    def _complete(self, prompts: list[str], options: dict[str, Any], cancel: Cancel) -> list[Any]:
        from forgeml.lm.generate import complete

        completions = complete(self.lm, prompts, cancelled=cancel, **options)
        self.generated.inc(sum(c.tokens for c in completions))
        for c in completions:
            if c.finish_reason != "cancelled":
                self.requests.labels("json", c.finish_reason).inc()
        return completions

    async def events(self, prompt: str, options: dict[str, Any], cancel: Cancel) -> AsyncIterator[str]:
        """The SSE body: pieces from the worker thread, as they come; the thread stops when this
        generator is closed (the client left) or the deadline passes."""
        from forgeml.lm.generate import stream

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        started = time.monotonic()

        def put(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop has closed (server stopping): nobody to tell
                pass

        def produce() -> None:
            pieces = None
            try:
                pieces = stream(self.lm, prompt, cancelled=cancel, **options)
                for piece in pieces:
                    put(("piece", piece))
            except Exception as exc:  # noqa: BLE001 - reported in-band: the headers are already sent
                log.exception("generation failed")
                put(("error", exc))
                return
            finally:
                self.generated.inc(pieces.tokens if pieces is not None else 0)
            put(("done", pieces))

        loop.run_in_executor(self.executor, produce)
        first, ended = True, False
        try:
            while True:
                kind, value = await queue.get()
                if kind == "piece":
                    if first:
                        self.first_piece.observe(time.monotonic() - started)
                        first = False
                    yield _event(None, {"text": value})
                elif kind == "error":
                    self.requests.labels("stream", "error").inc()
                    ended = True
                    yield _event("error", {"error": f"generation failed ({value.__class__.__name__})", "status": 500})
                    return
                else:
                    ended = True
                    if value.finish_reason == "cancelled" and cancel.timed_out():
                        self.requests.labels("stream", "timeout").inc()
                        yield _event("error", {"error": f"stopped at the {self.settings.timeout_ms:g} ms request timeout",
                                               "status": 504, "tokens": value.tokens})
                        return
                    self.requests.labels("stream", value.finish_reason).inc()
                    yield _event("done", {"finish_reason": value.finish_reason, "tokens": value.tokens, "model_version": self.model_version})
                    return
        finally:
            if not ended:  # closed before the end: the client left
                self.requests.labels("stream", "client_left").inc()
            cancel.left.set()


def _event(name: Optional[str], data: dict[str, Any]) -> str:
    """One server-sent event; the data is JSON, so newlines in the text cannot break the framing."""
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _loc(name: str) -> tuple:
    """"prompts[2]" → ("prompts", 2), the location shape FastAPI's own errors have."""
    if name.endswith("]"):
        field, _, index = name[:-1].partition("[")
        return (field, int(index))
    return (name,)

