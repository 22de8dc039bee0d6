"""The tabular service: /v1/predict (micro-batched JSON rows) and /v1/predict/csv (streamed CSV).

Every prediction goes through the bundle's ``Predictor``, so the server, ``forgeml predict`` and
``Pipeline.predict`` cannot disagree. No ``from __future__ import annotations`` here: FastAPI
reads the endpoint's annotations at run time, and the request model is built per bundle.
"""
import io
import logging
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import numpy as np
import pandas as pd
from fastapi import APIRouter, File, HTTPException, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from forgeml.errors import ForgeError
from forgeml.fileio import to_plain
from forgeml.serve.batcher import DeadlineExceeded, MicroBatcher
from forgeml.serve.schema import ModelInfo, PredictResponse, example_row, request_model, row_model
from forgeml.serve.headers import header_value
from forgeml.serve.settings import ServeSettings

log = logging.getLogger("forgeml.serve")


class RequestFailed(Exception):
    """One request's own failure inside a shared batch: becomes its status, not the batch's."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class TabularService:
    kind = "tabular"

    def __init__(self, bundle: Path, manifest: dict[str, Any], settings: ServeSettings, metrics: Any, model_version: str):
        from forgeml.bundle import load_predictor, read_json
        from forgeml.serve.backends import BACKENDS

        self.bundle, self.manifest, self.settings, self.model_version = bundle, manifest, settings, model_version
        _set_threads(settings.threads)
        self.predictor = BACKENDS[settings.backend](load_predictor(bundle), bundle, manifest, settings.threads)
        self.featureset = self.predictor.featureset
        self.input_names = self.featureset.input_names
        self.number_names = {f.name for f in self.featureset.features if f.type_name == "number"}
        self.targets = list(self.predictor.config.target)
        self.classes = self.predictor.class_names
        self.metrics_json = to_plain(read_json(bundle, "metrics.json") or {})
        self.Request = request_model(self.featureset, settings.max_rows)
        self.batcher = MicroBatcher(self.run_batch, max_batch_rows=settings.max_batch_size,
                                    max_wait_s=settings.max_wait_ms / 1000, on_batch=metrics.on_batch)
        self.json_paths = {"/v1/predict"}
        self.body_limits = {"/v1/predict/csv": settings.max_csv_bytes}

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.batcher.start()
        # One real prediction before /readyz says yes: a model that cannot score fails at start-up.
        await self.batcher.submit([example_row(self.featureset)], 1, timeout_s=60)

    async def stop(self) -> None:
        await self.batcher.stop()

    # ------------------------------------------------------------------ scoring (worker thread)
    def frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """Rows → DataFrame with float64 number columns (the schema guarantees numbers or null).

        Left to pandas, a number column of nulls would be ``object`` and take the slow text-parsing
        path (about 10× the cost of a float column for one row).
        """
        columns: dict[str, Any] = {}
        for name in self.input_names:
            values = [row[name] for row in rows]
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64) if name in self.number_names else values
        return pd.DataFrame(columns, columns=self.input_names)

    def score_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The Predictor's records path: no DataFrame for a batch of numbers, categories and ISO
        dates (≤ 64 rows); ``frame`` for the rest."""
        return self.decode(self.predictor.score_records(rows, source="request", to_frame=self.frame))

    def decode(self, scores: np.ndarray) -> list[dict[str, Any]]:
        if self.classes is not None:
            names = self.classes
            best = scores.argmax(axis=1)
            return [{"prediction": names[i], "probabilities": dict(zip(names, to_plain(row.tolist())))}
                    for i, row in zip(best, scores)]
        if len(self.targets) == 1:
            return [{"prediction": value, "probabilities": None} for value in to_plain(scores[:, 0].tolist())]
        return [{"prediction": dict(zip(self.targets, to_plain(row.tolist()))), "probabilities": None} for row in scores]

    def run_batch(self, payloads: Sequence[list[dict[str, Any]]]) -> list[Any]:
        """One forward pass for every request; if it fails, each request alone, so only the bad one fails."""
        try:
            flat = self.score_rows([row for rows in payloads for row in rows])
        except Exception as exc:
            if len(payloads) == 1:
                return [_as_failure(exc)]
            return [self._alone(rows) for rows in payloads]
        out, start = [], 0
        for rows in payloads:
            out.append(flat[start : start + len(rows)])
            start += len(rows)
        return out

    def _alone(self, rows: list[dict[str, Any]]) -> Any:
        try:
            return self.score_rows(rows)
        except Exception as exc:
            return _as_failure(exc)

    # ------------------------------------------------------------------ HTTP
    def describe(self) -> ModelInfo:
        return ModelInfo(
            kind=self.kind, model_version=self.model_version, task=self.predictor.task.name,
            model=self.predictor.config.model.type, backend=self.settings.backend, target=self.targets,
            classes=self.classes, input_schema=row_model(self.featureset).model_json_schema(by_alias=True),
            output_schema=PredictResponse.model_json_schema(), metrics=self.metrics_json,
            limits={"max_rows": self.settings.max_rows, "max_body_bytes": self.settings.max_body_bytes,
                    "max_csv_bytes": self.settings.max_csv_bytes, "timeout_ms": self.settings.timeout_ms,
                    "max_batch_size": self.settings.max_batch_size, "max_wait_ms": self.settings.max_wait_ms},
        )

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/v1", tags=["predict"])
        from forgeml.serve.schema import echo_kept  # the JSON route is its only user

        Request = self.Request
        service = self

        async def predict(body: Request) -> JSONResponse:  # type: ignore[valid-type]
            rows = [row.model_dump(by_alias=True) for row in body.rows]
            try:
                predictions = await service.batcher.submit(rows, len(rows), service.settings.timeout_ms / 1000)
            except DeadlineExceeded:
                raise HTTPException(504, f"no answer within the {service.settings.timeout_ms:g} ms request timeout") from None
            except RequestFailed as failure:
                raise HTTPException(failure.status, failure.message) from None
            return JSONResponse({"model_version": service.model_version, "predictions": echo_kept(body.keep, rows, predictions)})

        predict.__annotations__["body"] = Request
        router.add_api_route("/predict", predict, methods=["POST"], response_model=PredictResponse,
                             summary="Predict JSON rows (micro-batched with concurrent requests)")

        async def predict_csv(file: UploadFile = File(..., description="CSV with the model's input columns")) -> StreamingResponse:
            return await service.stream_csv(file)

        router.add_api_route("/predict/csv", predict_csv, methods=["POST"], response_class=StreamingResponse,
                             summary="Upload a CSV; predictions stream back as CSV, one line per input row")
        return router

    async def stream_csv(self, file: UploadFile) -> StreamingResponse:
        """The upload is read by the training loader's rules (``load_upload``: sniffed encoding and
        delimiter, only empty cells missing), then scored and streamed back in chunks."""
        try:
            frame = await run_in_threadpool(self._read_upload, file)
            first = await run_in_threadpool(self._csv_chunk, frame, 0)
        except ForgeError as exc:
            raise HTTPException(422, str(exc)) from None
        finally:
            await file.close()

        async def body() -> AsyncIterator[str]:
            yield first
            for start in range(self.settings.csv_chunk_rows, len(frame), self.settings.csv_chunk_rows):
                try:
                    chunk = await run_in_threadpool(self._csv_chunk, frame, start)
                except (ForgeError, ValueError) as exc:  # headers are sent: say so in-band and stop
                    yield f"# error: {str(exc).splitlines()[0][:300]}\n"
                    break
                yield chunk

        return StreamingResponse(body(), media_type="text/csv", headers={"x-model-version": header_value(self.model_version)})

    def _read_upload(self, file: UploadFile) -> pd.DataFrame:
        from forgeml.data.load import load_upload

        data = self.predictor.config.data
        return load_upload(file.file, file.filename or "upload.csv", fallback_encoding=data.encoding,
                           fallback_delimiter=data.delimiter)

    def _csv_chunk(self, frame: pd.DataFrame, start: int) -> str:
        out = io.StringIO()
        part = frame.iloc[start : start + self.settings.csv_chunk_rows]
        self.predictor.predict(part).to_csv(out, index=False, header=start == 0)
        return out.getvalue()


def _as_failure(exc: Exception) -> RequestFailed:
    if isinstance(exc, ForgeError):
        return RequestFailed(422, str(exc))
    log.exception("model error")
    return RequestFailed(500, f"the model failed on this request ({exc.__class__.__name__})")


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)
