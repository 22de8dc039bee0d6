"""The app in-process (TestClient): timeouts, a bad row inside a shared batch, regression output, settings."""
from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from forgeml.errors import BundleError, ConfigError, SchemaError
from forgeml.serve.app import create_app, field_path
from forgeml.serve.settings import ServeSettings


def test_slow_model_answers_504(saved_bundle, rows):
    app = create_app(saved_bundle, ServeSettings(timeout_ms=200, max_wait_ms=0))
    service = app.state.service
    with TestClient(app) as client:
        real = service.predictor.scores
        service.predictor.scores = lambda frame, source: time.sleep(1.0) or real(frame, source=source)
        response = client.post("/v1/predict", json={"rows": rows[:1]})
        assert response.status_code == 504 and "timeout" in response.json()["error"]
        assert 'forgeml_errors_total{kind="timeout"} 1.0' in client.get("/metrics").text


def test_a_bad_row_fails_only_its_own_request(saved_bundle, rows):
    """A row the model cannot score (here: a feature raising for one value) sharing a batch with good ones."""
    app = create_app(saved_bundle, ServeSettings(max_wait_ms=200, max_batch_size=64))
    service = app.state.service
    review = next(f for f in service.featureset.features if f.name == "review")
    real = review.transform

    def transform(column, *, strict=False):
        if (column == "poison").any():
            raise SchemaError("cannot read 'poison'", where="column 'review'", hint="fix that cell")
        return real(column, strict=strict)

    review.transform = transform
    batches = lambda: app.state.metrics.registry.get_sample_value("forgeml_batch_requests_count") or 0  # noqa: E731

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                bodies = [{"rows": [rows[i]]} for i in range(6)]
                bodies[2] = {"rows": [{**rows[2], "review": "poison"}]}
                before = batches()
                responses = await asyncio.gather(*(client.post("/v1/predict", json=body) for body in bodies))
                return responses, batches() - before

    responses, batch_count = asyncio.run(main())
    assert [r.status_code for r in responses] == [200, 200, 422, 200, 200, 200]
    assert "poison" in responses[2].json()["error"] and "review" in responses[2].json()["error"]
    assert batch_count < 6  # they did share forward passes, yet only the poisoned request failed


def test_regression_bundle_outputs_numbers_per_target(fitted_pipeline, tmp_path, make_regression):
    from forgeml import Pipeline

    frame = make_regression()
    bundle = Pipeline(target=["price", "size"], overrides={"model.type": "mlp", "train.epochs": 2, "train.progress": False}).fit(frame).save(tmp_path / "b")
    with TestClient(create_app(bundle)) as client:
        body = {"rows": frame.drop(columns=["price", "size"]).head(3).to_dict(orient="records")}
        response = client.post("/v1/predict", json=body)
        assert response.status_code == 200, response.text
        first = response.json()["predictions"][0]
        assert set(first["prediction"]) == {"price", "size"} and first["probabilities"] is None
        assert all(math.isfinite(v) for v in first["prediction"].values())
        info = client.get("/v1/model").json()
        assert info["task"] == "regression" and info["target"] == ["price", "size"]


def test_not_ready_before_start_and_unknown_kind(saved_bundle, bundle_copy):
    app = create_app(saved_bundle)
    client = TestClient(app)  # no lifespan: the model is not warmed up
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
    import json

    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["kind"] = "hologram"
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="cannot serve 'hologram'"):
        create_app(bundle_copy)


def test_settings_and_key_file_are_checked(saved_bundle, tmp_path):
    with pytest.raises(ConfigError, match="unknown backend"):
        ServeSettings(backend="tensorflow")
    with pytest.raises(ConfigError, match="max_rows"):
        ServeSettings(max_rows=0)
    empty = tmp_path / "keys.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(ConfigError, match="no keys"):
        create_app(saved_bundle, ServeSettings(api_key_file=empty))


def test_field_paths():
    assert field_path(("body", "rows", 0, "carat weight")) == "rows[0].carat weight"
    assert field_path(("body",)) == "body"


def test_lightgbm_bundle_serves_with_its_own_model_and_refuses_onnx(cli_trains, mixed_frame):
    run = cli_trains["gbm"].result()
    assert run.train.returncode == 0, run.train
    with TestClient(create_app(run.bundle)) as client:
        rows = mixed_frame.drop(columns=["label"]).head(3).astype(object).where(mixed_frame.head(3).notna(), None)
        response = client.post("/v1/predict", json={"rows": rows.to_dict(orient="records")})
        assert response.status_code == 200, response.text
        assert client.get("/v1/model").json()["model"] == "gbm"
    from forgeml.export.exporter import ExportError

    with pytest.raises(ExportError, match="LightGBM"):
        create_app(run.bundle, ServeSettings(backend="onnx"))


def test_csv_upload_over_its_limit_is_413(saved_bundle, mixed_frame):
    app = create_app(saved_bundle, ServeSettings(max_csv_bytes=5_000))
    with TestClient(app) as client:
        csv = mixed_frame.drop(columns=["label"]).to_csv(index=False)
        assert len(csv) > 5_000
        response = client.post("/v1/predict/csv", files={"file": ("rows.csv", csv, "text/csv")})
        assert response.status_code == 413 and "5000-byte limit" in response.json()["error"]
        small = mixed_frame.drop(columns=["label"]).head(5).to_csv(index=False)
        assert client.post("/v1/predict/csv", files={"file": ("rows.csv", small, "text/csv")}).status_code == 200


def test_csv_upload_in_several_chunks_keeps_every_row_in_order(saved_bundle, mixed_frame):
    import io

    import numpy as np
    import pandas as pd

    app = create_app(saved_bundle, ServeSettings(csv_chunk_rows=16))
    frame = mixed_frame.drop(columns=["label"]).head(50)
    with TestClient(app) as client:
        response = client.post("/v1/predict/csv", files={"file": ("rows.csv", frame.to_csv(index=False), "text/csv")})
    assert response.status_code == 200, response.text
    got = pd.read_csv(io.StringIO(response.text))
    want = app.state.service.predictor.predict(frame)
    assert len(got) == 50 and list(got.columns) == list(want.columns)
    np.testing.assert_allclose(got["label_proba_yes"], want["label_proba_yes"], atol=1e-6)


def test_request_schema_describes_each_field_from_the_bundles_features(saved_bundle):
    """/docs and /v1/model tell a client what to send: the type, the training categories, the clip range."""
    app = create_app(saved_bundle)
    with TestClient(app) as client:
        properties = client.get("/v1/model").json()["input_schema"]["properties"]
        openapi = client.get("/openapi.json").json()["components"]["schemas"]["Row"]["properties"]
    city = properties["city"]["description"]
    assert city.startswith("category:") and all(repr(name) in city for name in ("lille", "lyon", "nice", "paris"))
    age = properties["age"]["description"]
    assert age.startswith("number:") and "missing →" in age and "clipped" in age
    assert "format %Y-%m-%d" in properties["signup"]["description"]
    assert properties["review"]["description"].startswith("text:")
    assert properties["city"]["examples"] and openapi["city"]["description"] == city


def test_a_bundle_in_a_chinese_named_folder_serves_csv(saved_bundle, mixed_frame, tmp_path):
    """The model version (the folder's name) goes into a header, which carries Latin-1 only."""
    import shutil
    from urllib.parse import unquote

    bundle = Path(shutil.copytree(saved_bundle, tmp_path / "订单模型"))
    app = create_app(bundle, ServeSettings())
    with TestClient(app) as client:
        csv = mixed_frame.drop(columns=["label"]).head(3).to_csv(index=False)
        response = client.post("/v1/predict/csv", files={"file": ("rows.csv", csv, "text/csv")})
        assert response.status_code == 200, response.text
        version = client.get("/v1/model").json()["model_version"]
    assert version.startswith("订单模型@") and unquote(response.headers["x-model-version"]) == version


def test_docs_work_offline_from_local_assets(saved_bundle):
    """Swagger UI's script and stylesheet come from this server, not a CDN: /docs renders without network."""
    with TestClient(create_app(saved_bundle)) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "cdn.jsdelivr" not in page.text and "unpkg" not in page.text
        script = client.get("/docs/assets/swagger-ui-bundle.js")
        assert script.status_code == 200 and "SwaggerUIBundle" in script.text[:2000]
        assert script.headers["content-type"].startswith("text/javascript")
        assert client.get("/docs/assets/swagger-ui.css").status_code == 200
        redoc = client.get("/redoc")
        assert redoc.status_code == 200 and "/docs/assets/redoc.standalone.js" in redoc.text and "googleapis" not in redoc.text
        assert client.get("/docs/assets/..%2Fcore.py").status_code == 404  # only the listed files
        assert client.get("/openapi.json").status_code == 200  # no keys set: public, as before


# ----------------------------------------------------------------------------- /v1/predict/csv: what it accepts
def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, compresslevel=9)


def test_a_gzipped_csv_is_read_like_the_plain_one(saved_bundle, mixed_frame):
    csv = mixed_frame.drop(columns=["label"]).head(30).to_csv(index=False).encode()
    with TestClient(create_app(saved_bundle)) as client:
        plain = client.post("/v1/predict/csv", files={"file": ("rows.csv", csv, "text/csv")})
        packed = client.post("/v1/predict/csv", files={"file": ("rows.csv.gz", _gzip(csv), "application/gzip")})
    assert plain.status_code == packed.status_code == 200, packed.text
    assert packed.text == plain.text and len(packed.text.splitlines()) == 31


@pytest.mark.parametrize("payload, status, words", [
    (b"\0" * (64 << 20), 422, "binary data"),  # zeros: refused on the first block
    (b"1,2,3\n" * (2 << 20), 413, "after decompression"),  # text: refused at the cap, not after inflating it all
    (_gzip(b"a,b\n1,2\n"), 415, "gzip inside a gzip"),  # the table loader would inflate the inner one without a cap
])
def test_decompression_is_capped(saved_bundle, payload, status, words):
    app = create_app(saved_bundle, ServeSettings(max_csv_bytes=1 << 20))
    bomb = _gzip(payload)
    assert len(bomb) < 200_000
    with TestClient(app) as client:
        started = time.perf_counter()
        response = client.post("/v1/predict/csv", files={"file": ("rows.csv.gz", bomb, "application/gzip")})
        assert time.perf_counter() - started < 2
    assert response.status_code == status and words in response.json()["error"], response.text


def test_only_csv_is_accepted_and_the_refusal_names_the_right_route(saved_bundle, mixed_frame, tmp_path):
    frame = mixed_frame.drop(columns=["label"]).head(5)
    frame.to_parquet(tmp_path / "rows.parquet")
    parquet = (tmp_path / "rows.parquet").read_bytes()
    records = frame.to_json(orient="records").encode()
    with TestClient(create_app(saved_bundle)) as client:
        def upload(name: str, content: bytes, kind: str = "application/octet-stream"):
            return client.post("/v1/predict/csv", files={"file": (name, content, kind)})

        for response in (upload("rows.parquet", parquet), upload("rows.csv", parquet), upload("rows.csv.gz", _gzip(parquet))):
            assert response.status_code == 415 and "not Parquet" in response.json()["error"]
        for response in (upload("rows.json", records), upload("rows.csv", records), upload("x", records, "application/json")):
            assert response.status_code == 415 and "POST /v1/predict" in response.json()["error"]
        raw = client.post("/v1/predict/csv", content=frame.to_csv(index=False), headers={"content-type": "text/csv"})
        assert raw.status_code == 415 and "multipart/form-data" in raw.json()["error"]
        assert upload("rows.txt", frame.to_csv(index=False).encode()).status_code == 200  # any name, CSV inside


def test_overload_is_503_with_retry_after_not_a_wall_of_504s(saved_bundle, rows):
    """A queue that cannot be served within the deadline refuses new requests at once."""
    import concurrent.futures

    app = create_app(saved_bundle, ServeSettings(timeout_ms=2000, max_wait_ms=0, max_batch_size=4, max_rows=4, max_queue_rows=8))
    service = app.state.service
    with TestClient(app) as client:
        real = service.predictor.scores
        service.predictor.scores = lambda frame, source: time.sleep(0.15) or real(frame, source=source)
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(lambda _: client.post("/v1/predict", json={"rows": rows[:4]}), range(24)))
        codes = sorted(a.status_code for a in answers)
        refused = [a for a in answers if a.status_code == 503]
        assert 200 in codes and refused and 504 not in codes, codes
        assert all(int(a.headers["retry-after"]) >= 1 and "overloaded" in a.json()["error"] for a in refused)
        service.uploads = service.settings.max_csv_uploads  # as many uploads in flight as allowed
        busy = client.post("/v1/predict/csv", files={"file": ("rows.csv", "age\n1\n", "text/csv")})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"


def test_an_overloaded_server_refuses_before_reading_the_body(saved_bundle):
    """Refusing must be cheap: at 4× load, parsing each refused 200-row body before saying 503
    starved the batches. A body that is not even JSON gets the 503, so it was never parsed."""
    app = create_app(saved_bundle)
    service = app.state.service
    with TestClient(app) as client:
        service.batcher._pending_rows = service.settings.queue_rows  # as if the queue were full
        try:
            answer = client.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"})
            upload = client.post("/v1/predict/csv", files={"file": ("rows.csv", "age\n1\n", "text/csv")})
        finally:
            service.batcher._pending_rows = 0
        assert answer.status_code == 503 and int(answer.headers["retry-after"]) >= 1, answer.text
        assert "overloaded" in answer.json()["error"] and upload.status_code == 503
        assert client.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422


def test_a_stream_may_outlast_the_body_timeout(saved_bundle, mixed_frame):
    """The body timeout is for a client that stops sending; an answer streaming for longer is fine."""
    import io

    import pandas as pd

    app = create_app(saved_bundle, ServeSettings(body_timeout_s=0.3, csv_chunk_rows=10))
    service = app.state.service
    real = service.predictor.predict
    service.predictor.predict = lambda frame: time.sleep(0.15) or real(frame)
    frame = mixed_frame.drop(columns=["label"]).head(60)  # 6 chunks: ~0.9 s of streaming
    with TestClient(app) as client:
        response = client.post("/v1/predict/csv", files={"file": ("rows.csv", frame.to_csv(index=False), "text/csv")})
    assert response.status_code == 200 and len(pd.read_csv(io.StringIO(response.text))) == 60, response.text[-300:]


def test_an_upload_slot_is_freed_when_its_stream_is_never_read(saved_bundle, mixed_frame):
    import asyncio
    import gc
    import io

    from starlette.datastructures import Headers, UploadFile

    app = create_app(saved_bundle, ServeSettings(max_csv_uploads=1))
    service = app.state.service
    csv = mixed_frame.drop(columns=["label"]).head(5).to_csv(index=False).encode()

    async def upload_and_leave() -> None:
        await service.batcher.start()
        try:
            for _ in range(3):  # with one slot, a leaked slot would make the second a 503
                upload = UploadFile(io.BytesIO(csv), filename="rows.csv", headers=Headers({"content-type": "text/csv"}))
                response = await service.stream_csv(upload, [])
                assert service.uploads == 1
                del response  # the client left before the answer was sent
                gc.collect()
                assert service.uploads == 0
        finally:
            await service.batcher.stop()

    asyncio.run(upload_and_leave())
