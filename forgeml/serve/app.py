"""The FastAPI app for one bundle: common routes plus the routes of the bundle's kind.

Common to every kind: ``/healthz`` (process alive), ``/readyz`` (model loaded and warmed up;
503 while starting or draining), ``/metrics`` (Prometheus text), ``/v1/model`` (what is served).
The rest comes from a *service* chosen by the bundle manifest's ``kind`` (``bundle_kind``) in
``SERVICES``: a class with the ``TabularService`` shape (``router()``, ``describe()``,
``start()``/``stop()``, ``json_paths``, ``body_limits``). The built-in kinds (``tabular``:
/v1/predict; ``lm``: /v1/generate, ``forgeml.lm.serve``) are imported only when served; another
kind adds itself with ``register_service(kind, factory)``.

Errors: a request that does not fit the schema is a 422 whose ``detail`` names each field
(``rows[0].carat``); guard failures are 401/408/413/415; a request's timeout is 504; a request refused because
the queue is full is 503 with ``Retry-After``. Anything else
is a bug, answered 500 without internals.
"""
from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from forgeml.errors import BundleError, ForgeError
from forgeml.serve.docs import add_docs
from forgeml.serve.explain import explain_router
from forgeml.serve.guard import GuardRules, RequestGuard
from forgeml.serve.metrics import MetricsMiddleware, ServeMetrics
from forgeml.serve.settings import ServeSettings

log = logging.getLogger("forgeml.serve")

ServiceFactory = Callable[[Path, dict, ServeSettings, ServeMetrics, str], Any]
SERVICES: dict[str, ServiceFactory] = {}


def register_service(kind: str, factory: ServiceFactory) -> None:
    SERVICES[kind] = factory


# kind → "module:class", imported only when a bundle of that kind is served
BUILTIN_SERVICES = {"tabular": "forgeml.serve.tabular:TabularService", "lm": "forgeml.lm.serve:LMService"}
KIND_BY_TASK = {"lm": "lm"}  # bundles written before manifests carried a kind


def bundle_kind(manifest: dict[str, Any]) -> str:
    return manifest.get("kind") or KIND_BY_TASK.get(manifest.get("task"), "tabular")


def _ensure_registered(kind: str) -> None:
    if kind not in SERVICES and kind in BUILTIN_SERVICES:
        import importlib

        module, _, name = BUILTIN_SERVICES[kind].partition(":")
        register_service(kind, getattr(importlib.import_module(module), name))


def model_version(bundle: Path, manifest: dict[str, Any]) -> str:
    """``<run or bundle name>@<12 hex of the manifest's checksums>``: changes whenever any file does."""
    from forgeml.bundle import model_files

    digest = hashlib.sha256(repr(sorted(model_files(manifest).items())).encode()).hexdigest()[:12]  # an export does not change it
    name = bundle.resolve().parent.name if bundle.name == "bundle" else bundle.name
    return f"{name}@{digest}"


def field_path(loc: tuple) -> str:
    """("body", "rows", 0, "carat") → "rows[0].carat"."""
    out = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = []
    for error in exc.errors():
        path = field_path(tuple(error.get("loc", ())))
        message = error.get("msg", "invalid value")
        if error.get("type") == "json_invalid":
            message = f"malformed JSON: {error.get('ctx', {}).get('error', message)}"
        detail.append({"field": path, "message": message, "type": error.get("type")})
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in detail[:5])
    if len(detail) > 5:
        summary += f" (and {len(detail) - 5} more in detail)"
    return JSONResponse({"detail": detail, "error": summary}, status_code=422)


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 400 and message == "There was an error parsing the body":  # FastAPI's words for non-UTF-8 or too deep
        words = "malformed JSON: not UTF-8 text, or nested too deeply"
        return JSONResponse({"detail": [{"field": "body", "message": words}], "error": f"body: {words}"}, status_code=422)
    return JSONResponse({"detail": [{"field": None, "message": message}], "error": message},
                        status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _forge_error(request: Request, exc: ForgeError) -> JSONResponse:
    return JSONResponse({"detail": [{"field": exc.where, "message": exc.message}], "error": str(exc)}, status_code=422)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s", request.url.path)
    return JSONResponse({"detail": [{"field": None, "message": "internal error"}], "error": "internal error"}, status_code=500)


def create_app(bundle: str | Path, settings: ServeSettings | None = None) -> FastAPI:
    """Load and check the bundle now (a corrupted, unsigned-while-a-key-is-set or wrong bundle
    fails here, before binding a port)."""
    from forgeml.bundle import read_manifest

    settings = settings or ServeSettings()
    bundle = Path(bundle)
    manifest = read_manifest(bundle, verify=False)  # the service's loader verifies each file as it reads it
    kind = bundle_kind(manifest)
    _ensure_registered(kind)
    if kind not in SERVICES:
        raise BundleError(f"this forgeml cannot serve {kind!r} bundles", where=str(bundle), hint=f"servable kinds: {sorted(set(SERVICES) | set(BUILTIN_SERVICES))}")
    key_digests = None
    if settings.api_key_file is not None:
        from forgeml.serve.auth import load_key_digests

        key_digests = load_key_digests(settings.api_key_file)
    metrics = ServeMetrics()
    version = model_version(bundle, manifest)
    service = SERVICES[kind](bundle, manifest, settings, metrics, version)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        # Everything loaded so far (torch, pandas, the model) lives for the whole process: move it
        # out of the garbage collector's view, so a full collection does not walk it and stall
        # every request in flight (seen as one ~300 ms stall per few thousand requests).
        gc.collect()
        gc.freeze()
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False  # uvicorn has stopped accepting; in-flight requests have finished
            await service.stop()

    app = FastAPI(title=f"forgeml: {version}", version=version, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description=f"Predictions from the forgeml bundle {bundle} ({kind}, backend {settings.backend}).")
    add_docs(app)
    app.state.ready = False
    app.state.service = service
    app.state.metrics = metrics

    @app.get("/healthz", tags=["ops"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="The model is loaded and warmed up")
    async def readyz() -> JSONResponse:
        ready = bool(app.state.ready)
        return JSONResponse({"status": "ready" if ready else "not ready", "model_version": version}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/v1/model", tags=["model"], summary="Input schema, output schema and metrics of the served model")
    async def model_info() -> Any:
        return service.describe()

    app.include_router(service.router())
    app.include_router(explain_router(service))  # POST /v1/explain
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ForgeError, _forge_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(RequestGuard, rules=GuardRules(key_digests=key_digests, max_body_bytes=settings.max_body_bytes,
                                                      body_limits=service.body_limits, json_paths=service.json_paths,
                                                      multipart_paths=getattr(service, "multipart_paths", set()),
                                                      body_timeout_s=settings.body_timeout_s, shed=getattr(service, "shed", {})))
    known = {path for route in app.routes if isinstance(path := getattr(route, "path", None), str)} | set(service.json_paths) | set(service.body_limits)
    app.add_middleware(MetricsMiddleware, metrics=metrics, known_paths=known)  # outermost: counts guard answers too
    return app
