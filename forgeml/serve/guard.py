"""The request guard: API keys, content type and body size, checked before FastAPI parses anything.

A pure ASGI middleware, so an unauthenticated or oversized request is answered (401, 413, 415)
without reading or parsing its body; a body that arrives chunked, without a Content-Length, is
counted as it streams and cut off at the limit. A client that stops sending its body (slowloris)
gets a 408 after ``body_timeout_s`` of silence instead of holding a parser forever. An overloaded
server's 503 (``GuardRules.shed``) is also sent before the body is read.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from forgeml.serve.auth import is_authorized, presented_key


@dataclass
class GuardRules:
    # /docs and /openapi.json show training categories and clip ranges: as private as /v1/
    protected_prefixes: tuple[str, ...] = ("/v1/", "/docs", "/redoc", "/openapi.json")
    browser_prefixes: tuple[str, ...] = ("/docs", "/redoc", "/openapi.json")  # 401 asks a browser for the key (HTTP Basic)
    key_digests: tuple[bytes, ...] | None = None  # None: no API keys required
    max_body_bytes: int = 1 << 20
    body_limits: dict[str, int] = field(default_factory=dict)  # path → limit (uploads)
    json_paths: set[str] = field(default_factory=set)  # POST bodies that must be JSON
    multipart_paths: set[str] = field(default_factory=set)  # POST bodies that must be multipart/form-data (uploads)
    body_timeout_s: float = 30.0  # longest silence while a body arrives; then 408
    # path → a callable answering "refuse now?" with the seconds for Retry-After, or None: asked
    # before the body is read, so an overloaded server sheds load without parsing it (503)
    shed: dict[str, Callable[[], int | None]] = field(default_factory=dict)


async def send_error(send: Any, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": [{"field": None, "message": message}], "error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    def __init__(self, app: Any, rules: GuardRules):
        self.app, self.rules = app, rules

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rules, path = self.rules, scope["path"]
        headers = dict(scope["headers"])
        if rules.key_digests is not None and path.startswith(rules.protected_prefixes):
            if not is_authorized(presented_key(headers), rules.key_digests):
                challenge = b'Basic realm="forgeml", charset="UTF-8"' if path.startswith(rules.browser_prefixes) else b"Bearer"
                return await send_error(send, 401, "missing or wrong API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
                                        " (a browser: any user name, the key as password)", [(b"www-authenticate", challenge)])
        if scope["method"] == "POST" and (path in rules.json_paths or path in rules.multipart_paths):
            content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            got = content_type.decode("latin-1") or "none"
            if path in rules.json_paths and content_type != b"application/json":
                return await send_error(send, 415, f"send JSON with 'content-type: application/json' (got {got})")
            if path in rules.multipart_paths and content_type != b"multipart/form-data":
                return await send_error(send, 415, f"upload the file as multipart/form-data, field 'file' (curl -F file=@rows.csv; got {got})")
        if scope["method"] == "POST" and path in rules.shed and (retry_after_s := rules.shed[path]()) is not None:
            return await send_error(send, 503, f"server overloaded: retry in {retry_after_s} s",
                                    [(b"retry-after", str(retry_after_s).encode())])
        limit = rules.body_limits.get(path, rules.max_body_bytes)
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                return await send_error(send, 400, "invalid Content-Length header")
            if too_big:
                return await send_error(send, 413, f"request body over the {limit}-byte limit")
        seen = 0
        started = rejected = body_done = False

        async def counted_receive() -> dict:
            # Over the limit mid-stream, or silent too long: answer 413/408 ourselves and tell the
            # app the client left (FastAPI would turn an exception raised here into a 400).
            nonlocal seen, started, rejected, body_done
            if rejected:
                return {"type": "http.disconnect"}
            if body_done:  # a streamed answer waits here for the client to leave: no deadline then
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), rules.body_timeout_s)
            except asyncio.TimeoutError:
                rejected = True
                if not started:
                    started = True
                    await send_error(send, 408, f"no body bytes for {rules.body_timeout_s:g} s: request timed out",
                                     [(b"connection", b"close")])
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                seen += len(message.get("body", b""))
                if seen > limit:
                    rejected = True
                    if not started:
                        started = True
                        await send_error(send, 413, f"request body over the {limit}-byte limit")
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if rejected:
                return  # the 413 has been sent; whatever the app says after is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, tracking_send)
