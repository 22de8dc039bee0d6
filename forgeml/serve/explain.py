"""``POST /v1/explain``: the explanations of JSON rows, with ``/v1/predict``'s request body.

The same request model (one field per input column, a 422 naming the field for a wrong or
missing one), API keys, body limit and queue as ``/v1/predict``: each request is one job on the
service's micro-batcher, run alone (integrated gradients costs some 50 forward passes a row), so
the admission limits and the 503/504 answers hold for it too. Explaining needs the bundle's own
estimator: under ``--backend onnx`` it is loaded once, on the first request. No ``from __future__
import annotations``: FastAPI reads the endpoint's annotations at run time.
"""
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from forgeml.fileio import to_plain
from forgeml.serve.batcher import DeadlineExceeded, Overloaded

PATH = "/v1/explain"


class ExplainJob:
    """One request's rows, explained in the batch thread (``TabularService.run_batch`` calls it)."""

    def __init__(self, service: Any, explainer: Any, rows: list[dict[str, Any]]):
        self.service, self.explainer, self.rows = service, explainer, rows

    def __call__(self) -> Any:
        from forgeml.explain.run import explain_frame
        from forgeml.serve.tabular import _as_failure

        try:
            answer = explain_frame(self.explainer(), self.service.frame(self.rows), rows=list(range(len(self.rows))), source="request")
        except Exception as exc:  # one request's failure, as for predictions: a ForgeError is its 422, anything else a 500
            return _as_failure(exc)
        return to_plain({"model_version": self.service.model_version, **{k: answer[k] for k in ("method", "output", "baseline", "completeness_gap")},
                         "importance": answer["importance"], "explanations": answer["rows"]})


def explain_router(service: Any) -> APIRouter:
    """The route for a tabular service (other kinds get an empty router); adds its path to the
    JSON-only paths the request guard checks and to the paths it sheds under overload."""
    router = APIRouter(prefix="/v1", tags=["explain"])
    if getattr(service, "kind", None) != "tabular":
        return router
    from forgeml.serve.tabular import RequestFailed, overloaded

    service.json_paths.add(PATH)
    if hasattr(service, "shed"):  # an overloaded server's 503 before the body is read, as for /v1/predict
        service.shed[PATH] = service.refusal
    loaded: list[Any] = []

    def explainer() -> Any:
        if service.settings.backend == "torch":
            return service.predictor
        if not loaded:
            from forgeml.bundle import load_predictor

            loaded.append(load_predictor(service.bundle))
        return loaded[0]

    async def explain(body: Any) -> JSONResponse:
        rows = [row.model_dump(by_alias=True) for row in body.rows]
        if service.images is not None:
            rows = await run_in_threadpool(service.images.resolve_rows, rows)
        try:
            answer = await service.batcher.submit(ExplainJob(service, explainer, rows), len(rows), service.settings.timeout_ms / 1000)
        except DeadlineExceeded:
            raise HTTPException(504, f"no answer within the {service.settings.timeout_ms:g} ms request timeout") from None
        except Overloaded as exc:
            raise overloaded(exc) from None
        except RequestFailed as failure:  # the batcher raises a job's failure in its caller
            raise HTTPException(failure.status, failure.message) from None
        return JSONResponse(answer)

    explain.__annotations__["body"] = service.Request
    router.add_api_route("/explain", explain, methods=["POST"],
                         summary="Explain JSON rows: each input's attribution to the prediction (the /v1/predict body)")
    return router
