"""The tabular service: /v1/predict (micro-batched JSON rows) and /v1/predict/csv (streamed CSV).

Every prediction goes through the bundle's ``Predictor``, so the server, ``forgeml predict`` and
``Pipeline.predict`` cannot disagree. No ``from __future__ import annotations`` here: FastAPI
reads the endpoint's annotations at run time, and the request model is built per bundle.
"""
import io
import logging
import weakref
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import numpy as np
import pandas as pd
from fastapi import APIRouter, File, HTTPException, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from forgeml.errors import ForgeError
from forgeml.fileio import to_plain
from forgeml.serve.batcher import DeadlineExceeded, MicroBatcher, Overloaded
from forgeml.serve.schema import ModelInfo, PredictResponse, example_row, request_model, row_model
from forgeml.serve.headers import header_value
from forgeml.serve.images import ImageInputs
from forgeml.serve.settings import ServeSettings
from forgeml.serve.upload import UploadRefused, check_declared, copy_csv

log = logging.getLogger("forgeml.serve")


class RequestFailed(Exception):
    """One request's own failure inside a shared batch: becomes its status, not the batch's."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class CsvChunk:
    """Rows of an upload scored in the batch thread, so uploads and JSON requests share one model
    thread (and its queue's limits) instead of competing for the cores. ``originals``: the image
    cells as uploaded (paths or base64), written back in place of the bytes they were read into."""

    def __init__(self, frame: pd.DataFrame, header: bool, originals: dict[str, pd.Series]):
        self.frame, self.header, self.originals = frame, header, originals


def overloaded(exc: Overloaded) -> HTTPException:
    return HTTPException(503, f"server overloaded: retry in {exc.retry_after_s} s",
                         headers={"retry-after": str(exc.retry_after_s)})


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
        image_names = [f.name for f in self.featureset.features if f.type_name == "image"]
        self.images = ImageInputs(image_names, settings.image_root) if image_names else None
        self.targets = list(self.predictor.config.target)
        self.classes = self.predictor.class_names
        self.metrics_json = to_plain(read_json(bundle, "metrics.json") or {})
        self.Request = request_model(self.featureset, settings.max_rows)
        self.batcher = MicroBatcher(self.run_batch, max_batch_rows=settings.max_batch_size, max_wait_s=settings.max_wait_ms / 1000,
                                    on_batch=metrics.on_batch, max_pending_rows=settings.queue_rows)
        self.json_paths = {"/v1/predict"}
        self.multipart_paths = {"/v1/predict/csv"}
        self.body_limits = {"/v1/predict/csv": settings.max_csv_bytes}
        self.shed = {"/v1/predict": self.refusal, "/v1/predict/csv": self.upload_refusal}  # asked by the guard before a body is read
        self.uploads = 0  # being read or streamed back; each holds up to max_csv_bytes of table

    def refusal(self) -> int | None:
        """Retry-After seconds when no request can be admitted now (the guard's early 503)."""
        return self.batcher.refusal(0, self.settings.timeout_ms / 1000)

    def upload_refusal(self) -> int | None:
        return 1 if self.uploads >= self.settings.max_csv_uploads else self.refusal()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.batcher.start()
        # One real prediction before /readyz says yes: a model that cannot score fails at start-up.
        # The example row goes through the request model, as a client's would (base64 images → bytes).
        example = self.Request.model_validate({"rows": [example_row(self.featureset)]})
        await self.batcher.submit([row.model_dump(by_alias=True) for row in example.rows], 1, timeout_s=60)

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

    def run_batch(self, payloads: Sequence[Any]) -> list[Any]:
        """One forward pass for every request; if it fails, each request alone, so only the bad one
        fails. An upload's chunk is scored on its own (the batcher lets it run alone)."""
        if any(isinstance(payload, CsvChunk) or callable(payload) for payload in payloads):  # callable: a job run alone (/v1/explain)
            return [self._csv_text(p) if isinstance(p, CsvChunk) else p() if callable(p) else self._alone(p) for p in payloads]
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

    def _csv_text(self, chunk: CsvChunk) -> Any:
        try:
            out = io.StringIO()
            answer = self.predictor.predict(chunk.frame)
            for name, cells in chunk.originals.items():
                answer[name] = cells.to_numpy()
            answer.to_csv(out, index=False, header=chunk.header)
            return out.getvalue()
        except Exception as exc:
            return _as_failure(exc)

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
                    "max_batch_size": self.settings.max_batch_size, "max_wait_ms": self.settings.max_wait_ms,
                    "max_queue_rows": self.settings.queue_rows, "max_csv_uploads": self.settings.max_csv_uploads},
        )

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/v1", tags=["predict"])
        from forgeml.serve.schema import echo_kept  # the JSON route is its only user

        Request = self.Request
        service = self

        async def predict(body: Request) -> JSONResponse:  # type: ignore[valid-type]
            rows = [row.model_dump(by_alias=True) for row in body.rows]
            if service.images is not None:  # paths under --image-root are read off the event loop
                rows = await run_in_threadpool(service.images.resolve_rows, rows)
            try:
                predictions = await service.batcher.submit(rows, len(rows), service.settings.timeout_ms / 1000)
            except DeadlineExceeded:
                raise HTTPException(504, f"no answer within the {service.settings.timeout_ms:g} ms request timeout") from None
            except Overloaded as exc:
                raise overloaded(exc) from None
            except RequestFailed as failure:
                raise HTTPException(failure.status, failure.message) from None
            return JSONResponse({"model_version": service.model_version, "predictions": echo_kept(body.keep, rows, predictions)})

        predict.__annotations__["body"] = Request
        router.add_api_route("/predict", predict, methods=["POST"], response_model=PredictResponse,
                             summary="Predict JSON rows (micro-batched with concurrent requests)")

        csv_description = (f"CSV (or gzip'd CSV) with the model's input columns; at most {service.settings.max_csv_bytes} bytes, "
                           "after decompression")

        async def predict_csv(file: UploadFile = File(..., description=csv_description)) -> StreamingResponse:
            return await service.stream_csv(file, [])

        async def predict_csv_images(file: UploadFile = File(..., description=csv_description),
                                     images: list[UploadFile] = File([], description="image files that image cells name by file name "
                                                                                     "(curl -F file=@rows.csv -F images=@cat.png)")) -> StreamingResponse:
            return await service.stream_csv(file, images)

        router.add_api_route("/predict/csv", predict_csv_images if self.images is not None else predict_csv, methods=["POST"],
                             response_class=StreamingResponse,
                             summary="Upload a CSV (optionally gzip'd); predictions stream back as CSV, one line per input row",
                             responses={413: {"description": "over --max-csv-bytes (after decompression)"},
                                        415: {"description": "not CSV (Parquet, JSON: the message names the route)"},
                                        503: {"description": "overloaded: retry after the Retry-After header's seconds"}})
        return router

    async def stream_csv(self, file: UploadFile, images: list[UploadFile]) -> StreamingResponse:
        """Read the upload (``serve.upload``: CSV only, decompressed size capped) by the training
        loader's rules, then score it chunk by chunk through the batcher, one chunk in flight:
        the first chunk is admitted like any request (503 when overloaded), later ones wait.
        ``images``: files uploaded beside the CSV, which image cells name by file name."""
        if self.uploads >= self.settings.max_csv_uploads:
            await file.close()
            raise overloaded(Overloaded(1))
        self.uploads += 1
        streaming = False
        try:
            try:
                frame, originals = await run_in_threadpool(self._read_upload, file, images)
            finally:
                for upload in (file, *images):
                    await upload.close()
            first = await self._score_chunk(frame, originals, 0, admit=True)
            streaming = True
        except UploadRefused as refused:
            raise HTTPException(refused.status, refused.message) from None
        except ForgeError as exc:
            raise HTTPException(422, str(exc)) from None
        except Overloaded as exc:
            raise overloaded(exc) from None
        except DeadlineExceeded:
            raise HTTPException(504, f"no answer within the {self.settings.timeout_ms:g} ms request timeout") from None
        except RequestFailed as failure:
            raise HTTPException(failure.status, failure.message) from None
        finally:
            if not streaming:
                self.uploads -= 1

        async def body() -> AsyncIterator[str]:
            try:
                yield first
                for start in range(self.settings.csv_chunk_rows, len(frame), self.settings.csv_chunk_rows):
                    try:
                        chunk = await self._score_chunk(frame, originals, start, admit=False)
                    except (RequestFailed, DeadlineExceeded) as exc:  # headers are sent: say so in-band and stop
                        message = exc.message if isinstance(exc, RequestFailed) else "request timeout"
                        yield f"# error: {message.splitlines()[0][:300]}\n"
                        break
                    yield chunk
            finally:
                finished()

        stream = body()
        # Also when the stream is dropped unstarted (the client left first): its `finally` never runs then.
        finished = weakref.finalize(stream, self._upload_finished)
        return StreamingResponse(stream, media_type="text/csv", headers={"x-model-version": header_value(self.model_version)})

    def _upload_finished(self) -> None:
        self.uploads -= 1

    async def _score_chunk(self, frame: pd.DataFrame, originals: dict[str, pd.Series], start: int, *, admit: bool) -> str:
        end = start + self.settings.csv_chunk_rows
        part = frame.iloc[start:end]
        chunk = CsvChunk(part, start == 0, {name: cells.iloc[start:end] for name, cells in originals.items()})
        rows = max(len(part), self.settings.max_batch_size)  # a full batch's worth: the chunk runs alone
        return await self.batcher.submit(chunk, rows, self.settings.timeout_ms / 1000, admit=admit)

    def _read_upload(self, file: UploadFile, images: list[UploadFile]) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
        """The upload as a frame (image cells read into bytes: a file uploaded with it, base64, or
        a path under --image-root) and the image cells as sent, to write back into the answer."""
        import tempfile

        from forgeml.data.load import load_table

        name = check_declared(file.filename, file.content_type)
        shown = Path(file.filename or "upload.csv").name or "upload.csv"
        data = self.predictor.config.data
        with tempfile.TemporaryDirectory(prefix="forgeml-upload-") as folder:
            path = Path(folder) / name
            copy_csv(file.file, path, self.settings.max_csv_bytes)
            frame = load_table(path, name=shown, fallback_encoding=data.encoding, fallback_delimiter=data.delimiter)
        frame.attrs.pop("base_dir", None)  # the temporary folder is gone
        originals: dict[str, pd.Series] = {}
        uploaded = {Path(image.filename).name: image.file.read() for image in images if image.filename}  # within the body limit
        for name in self.images.names if self.images is not None else []:
            if name in frame.columns:
                originals[name] = frame[name]
                cells = [self.images.resolve_cell(value, uploaded) for value in frame[name].tolist()]
                frame[name] = pd.Series(cells, index=frame.index, dtype=object)
        return frame, originals


def _as_failure(exc: Exception) -> RequestFailed:
    if isinstance(exc, ForgeError):
        return RequestFailed(422, str(exc))
    log.exception("model error")
    return RequestFailed(500, f"the model failed on this request ({exc.__class__.__name__})")


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)
