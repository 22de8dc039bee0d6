"""``forgeml serve`` as a real uvicorn process on loopback: answers, batching, auth, limits, bad input."""
from __future__ import annotations

import asyncio
import io
import json
import math
import signal
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from forgeml.bundle import load_predictor


@pytest.fixture(scope="module")
def predictor(saved_bundle):
    return load_predictor(saved_bundle)


def expected(predictor, rows: list[dict]) -> pd.DataFrame:
    return predictor.predict(pd.DataFrame.from_records(rows, columns=predictor.featureset.input_names))


def post(server, body, headers=None, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/predict", json=body, headers=headers, timeout=30, **kwargs)


# ----------------------------------------------------------------------------- answers
def test_predict_matches_the_predictor(torch_server, auth, rows, predictor):
    response = post(torch_server, {"rows": rows[:7]}, auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"].endswith(body["model_version"].split("@")[1]) and "@" in body["model_version"]
    want = expected(predictor, rows[:7])
    assert [p["prediction"] for p in body["predictions"]] == want["label_prediction"].astype(str).tolist()
    got_yes = [p["probabilities"]["yes"] for p in body["predictions"]]
    np.testing.assert_allclose(got_yes, want["label_proba_yes"], atol=1e-6)


def test_concurrent_requests_are_batched_and_each_caller_gets_its_own_rows(torch_server, auth, rows, predictor):
    want = expected(predictor, rows)["label_proba_yes"].to_numpy()

    async def one(client, i):
        # Requests of 1 to 3 rows, each starting at a different row: a mix-up shows as wrong numbers.
        size = 1 + i % 3
        chosen = [(i + k) % len(rows) for k in range(size)]
        response = await client.post("/v1/predict", json={"rows": [rows[j] for j in chosen]})
        return chosen, response

    async def main():
        async with httpx.AsyncClient(base_url=torch_server.url, headers=auth, timeout=60,
                                     limits=httpx.Limits(max_connections=64)) as client:
            return await asyncio.gather(*(one(client, i) for i in range(96)))

    def batches() -> float:
        text = httpx.get(f"{torch_server.url}/metrics").text
        return float(next(line.split()[-1] for line in text.splitlines() if line.startswith("forgeml_batch_requests_count")))

    before = batches()
    results = asyncio.run(main())
    for chosen, response in results:
        assert response.status_code == 200, response.text
        got = [p["probabilities"]["yes"] for p in response.json()["predictions"]]
        np.testing.assert_allclose(got, want[chosen], atol=1e-6)
    assert batches() - before < 96  # several requests shared a forward pass


def test_unknown_category_is_other_not_an_error(torch_server, auth, rows, predictor):
    row = {**rows[0], "city": "atlantis"}
    response = post(torch_server, {"rows": [row]}, auth)
    assert response.status_code == 200, response.text
    assert math.isclose(response.json()["predictions"][0]["probabilities"]["yes"], expected(predictor, [row])["label_proba_yes"][0], abs_tol=1e-6)


def test_model_info_docs_and_metrics(torch_server, auth):
    info = httpx.get(f"{torch_server.url}/v1/model", headers=auth).json()
    assert info["kind"] == "tabular" and info["task"] == "binary" and info["classes"] == ["no", "yes"]
    properties = info["input_schema"]["properties"]
    assert set(properties) == {"age", "income", "city", "signup", "review", "price", "size"}
    assert {"type": "number"} in properties["age"]["anyOf"]
    assert "predictions" in info["output_schema"]["properties"] and info["metrics"]
    openapi = httpx.get(f"{torch_server.url}/openapi.json", headers=auth).json()
    assert "age" in json.dumps(openapi["components"]["schemas"]["Row"])
    assert httpx.get(f"{torch_server.url}/docs", headers=auth).status_code == 200
    assert httpx.get(f"{torch_server.url}/healthz").json() == {"status": "ok"}
    metrics = httpx.get(f"{torch_server.url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in ("forgeml_requests_total", "forgeml_request_latency_seconds_bucket", "forgeml_batch_rows_bucket", "forgeml_errors_total"):
        assert name in metrics.text


def test_csv_upload_streams_the_predictors_answers(torch_server, auth, mixed_frame, predictor):
    frame = mixed_frame.drop(columns=["label"]).head(60)
    response = httpx.post(f"{torch_server.url}/v1/predict/csv", headers=auth, timeout=30,
                          files={"file": ("rows.csv", frame.to_csv(index=False), "text/csv")})
    assert response.status_code == 200, response.text
    got = pd.read_csv(io.StringIO(response.text))
    want = predictor.predict(frame)
    assert list(got.columns) == list(want.columns) and len(got) == 60
    np.testing.assert_allclose(got["label_proba_yes"], want["label_proba_yes"], atol=1e-6)


def _upload_variant(frame: pd.DataFrame, variant: str) -> tuple[str, bytes]:
    """The same rows as a spreadsheet would save them: GBK with semicolons, a BOM with tabs, ..."""
    frame = frame.copy()
    if variant == "gbk-semicolon":
        frame["review"] = [f"服务很好 发货快 {i}" if i % 2 else f"质量差; 坏了 {i}" for i in range(len(frame))]
        return "订单.csv", frame.to_csv(index=False, sep=";").encode("gbk")
    if variant == "bom-tab":
        frame["review"] = [f"très bien, livré {i}" for i in range(len(frame))]
        return "rows.tsv", frame.to_csv(index=False, sep="\t").encode("utf-8-sig")
    if variant == "cp1252-semicolon":
        frame["review"] = [f"café crème à {i} €" for i in range(len(frame))]
        return "rows.csv", frame.to_csv(index=False, sep=";").encode("cp1252")
    frame["city"] = ["NA", "None", "null", "paris"] * (len(frame) // 4)  # categories, not missing values
    return "rows.csv", frame.to_csv(index=False).encode("utf-8")


@pytest.mark.parametrize("variant", ["gbk-semicolon", "bom-tab", "cp1252-semicolon", "na-spellings"])
def test_csv_upload_is_read_like_the_training_loader(torch_server, auth, mixed_frame, predictor, variant, tmp_path):
    name, content = _upload_variant(mixed_frame.drop(columns=["label"]).head(24), variant)
    response = httpx.post(f"{torch_server.url}/v1/predict/csv", headers=auth, timeout=30,
                          files={"file": (name, content, "text/csv")})
    assert response.status_code == 200, response.text
    got = pd.read_csv(io.StringIO(response.text))
    on_disk = tmp_path / name
    on_disk.write_bytes(content)
    want = predictor.predict(on_disk)  # what `forgeml predict` says for the same file
    assert len(got) == 24
    np.testing.assert_allclose(got["label_proba_yes"], want["label_proba_yes"], atol=1e-6)


@pytest.mark.parametrize("content, fragment", [
    ("", "the file is empty"),
    ("age,income,city,signup,review,price,size\n", "no rows"),
    ("a,b\n1,2\n", "missing input column"),
    ("\x00\x01\x02garbage", ""),
])
def test_bad_csv_is_422(torch_server, auth, content, fragment):
    response = httpx.post(f"{torch_server.url}/v1/predict/csv", headers=auth, files={"file": ("x.csv", content, "text/csv")})
    assert response.status_code == 422, response.text
    assert fragment in response.json()["error"]


# ----------------------------------------------------------------------------- auth
def test_api_keys(torch_server, rows):
    body = {"rows": rows[:1]}
    assert post(torch_server, body).status_code == 401
    wrong = post(torch_server, body, {"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert post(torch_server, body, {"X-API-Key": "another-plain-key"}).status_code == 200
    assert httpx.get(f"{torch_server.url}/v1/model").status_code == 401
    assert httpx.get(f"{torch_server.url}/readyz").status_code == 200  # probes need no key


def test_docs_and_openapi_need_the_key_and_a_browser_is_asked_for_it(torch_server, auth):
    """The schema lists training categories and clip ranges: with keys set it is as private as /v1/."""
    for path in ("/openapi.json", "/docs", "/docs/assets/swagger-ui-bundle.js", "/redoc"):
        refused = httpx.get(f"{torch_server.url}{path}")
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"].startswith("Basic")  # the browser's own key prompt
    basic = httpx.BasicAuth("anyone", auth["Authorization"].removeprefix("Bearer "))
    assert httpx.get(f"{torch_server.url}/openapi.json", auth=httpx.BasicAuth("anyone", "wrong")).status_code == 401
    page = httpx.get(f"{torch_server.url}/docs", auth=basic)
    assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "Row" in httpx.get(f"{torch_server.url}/openapi.json", auth=basic).json()["components"]["schemas"]


# ----------------------------------------------------------------------------- limits and bad input
def test_oversized_body_is_413(torch_server, auth, rows):
    big = {"rows": rows[:1] * 200}  # ~40 kB > 20 kB
    assert post(torch_server, big, auth).status_code == 413

    def chunks():  # no Content-Length: counted as it streams
        data = json.dumps(big).encode()
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    response = httpx.post(f"{torch_server.url}/v1/predict", content=chunks(), headers={**auth, "content-type": "application/json"})
    assert response.status_code == 413


def test_ten_thousand_rows_is_rejected(torch_server, auth):
    response = post(torch_server, {"rows": [{}] * 10_000}, auth)
    assert response.status_code == 413  # 10k rows do not fit the body limit
    response = post(torch_server, {"rows": [{}] * 51}, auth)  # small body, over --max-rows 50
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "rows" and "50" in response.json()["error"]


def raw(server, data: bytes, headers) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/predict", content=data, headers={"content-type": "application/json", **headers})


@pytest.mark.parametrize("mutate, field, words", [
    (lambda r: {**r, "age": "thirty"}, "rows[0].age", "valid number"),
    (lambda r: {**r, "income": True}, "rows[0].income", "valid number"),
    (lambda r: {k: v for k, v in r.items() if k != "city"}, "rows[0].city", "required"),
    (lambda r: {**r, "city": ["paris"]}, "rows[0].city", ""),
])
def test_wrong_types_and_missing_fields_name_the_field(torch_server, auth, rows, mutate, field, words):
    response = post(torch_server, {"rows": [mutate(rows[0])]}, auth)
    assert response.status_code == 422, response.text
    fields = [d["field"] for d in response.json()["detail"]]
    assert field in fields and words in response.json()["error"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_422(torch_server, auth, rows, literal):
    text = json.dumps({"rows": [{**rows[0], "age": "__X__"}]}).replace('"__X__"', literal)
    response = raw(torch_server, text.encode(), auth)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "rows[0].age" and "finite" in response.json()["error"]


def test_null_is_a_missing_value(torch_server, auth, rows):
    row = {k: None for k in rows[0]}
    response = post(torch_server, {"rows": [row]}, auth)
    assert response.status_code == 200 and response.json()["predictions"][0]["prediction"] in ("yes", "no")


@pytest.mark.parametrize("data, status, words", [
    (b'{"rows": [', 422, "malformed JSON"),
    (b"", 422, ""),
    (b'{"rows": []}', 422, "rows"),
    (b'{"rows": {}}', 422, "rows"),
    (b'[1, 2]', 422, ""),
    (b'{"rows": [1]}', 422, "rows[0]"),
    (b'{"rows": [{}], "extra": 1}', 422, "extra"),
    (b"\xff\xfe\x00", 422, ""),
    (b'{"rows": ' + b"[" * 5000 + b"]" * 5000 + b"}", 422, "nested too deeply"),  # a recursion bomb, under the body limit
])
def test_malformed_bodies(torch_server, auth, data, status, words):
    response = raw(torch_server, data, auth)
    assert response.status_code == status, response.text
    assert words in json.dumps(response.json()["detail"])


def test_wrong_content_type_is_415(torch_server, auth, rows):
    response = httpx.post(f"{torch_server.url}/v1/predict", content=json.dumps({"rows": rows[:1]}),
                          headers={**auth, "content-type": "text/plain"})
    assert response.status_code == 415 and "application/json" in response.json()["error"]
    response = httpx.post(f"{torch_server.url}/v1/predict", data={"rows": "x"}, headers=auth)
    assert response.status_code == 415


def test_no_input_produces_a_500(torch_server, auth, rows):
    row = rows[0]
    bodies = [
        {"rows": [{**row, "age": 1e308, "income": -1e308}]},  # finite but absurd: scaled values overflow
        {"rows": [{**row, "review": "x" * 15_000}]},
        {"rows": [{**row, "signup": "not a date"}]},
        {"rows": [{**row, "city": 12345}]},
        {"rows": [{**row, "review": "🙂 ünïcödé \u0000"}]},
        {"rows": [{**row, "age": 10**40}]},
        {"rows": [{**row, "signup": None, "review": None}]},
    ]
    for body in bodies:
        response = post(torch_server, body, auth)
        assert response.status_code < 500, (body, response.text)
        if response.status_code == 200:
            for value in response.json()["predictions"][0]["probabilities"].values():
                assert value is None or 0 <= value <= 1
    assert httpx.get(f"{torch_server.url}/v1/nothing-here", headers=auth).status_code == 404
    assert httpx.put(f"{torch_server.url}/v1/predict", headers=auth).status_code == 405
    errors = httpx.get(f"{torch_server.url}/metrics").text
    assert 'forgeml_errors_total{kind="server"}' not in errors


# ----------------------------------------------------------------------------- backends, shutdown, tampering
def test_onnx_and_torch_backends_agree(torch_server, onnx_server, auth, rows):
    body = {"rows": rows}
    torch_answer = post(torch_server, body, auth).json()["predictions"]
    onnx_answer = post(onnx_server, body).json()["predictions"]
    assert [p["prediction"] for p in torch_answer] == [p["prediction"] for p in onnx_answer]
    for a, b in zip(torch_answer, onnx_answer):
        for name in a["probabilities"]:
            assert abs(a["probabilities"][name] - b["probabilities"][name]) < 1e-4
    assert httpx.get(f"{onnx_server.url}/v1/model").json()["backend"] == "onnx"


def test_graceful_shutdown_finishes_in_flight_requests(saved_bundle, rows, tmp_path, start_server):
    with start_server(saved_bundle, "--max-wait-ms", "1500", "--max-batch-size", "1000", workdir=tmp_path) as server:
        result = {}

        def call():
            result["response"] = post(server, {"rows": rows[:2]})

        thread = threading.Thread(target=call)
        thread.start()
        time.sleep(0.5)  # the request is now waiting in the batcher
        server.process.send_signal(signal.SIGTERM)
        thread.join(30)
        assert result["response"].status_code == 200, result["response"].text
        # uvicorn re-raises SIGTERM once it has drained, so the exit status says "terminated".
        assert server.process.wait(30) in (0, -signal.SIGTERM)
        assert "Traceback" not in server.output()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/healthz", timeout=2)


def test_tampered_bundle_is_refused_at_start(bundle_copy, cli, tmp_path):
    weights = next(bundle_copy.rglob("weights.safetensors"))  # fold0/ when bagged
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    done = cli("serve", bundle_copy, "--port", str(_free_port()), cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and "corrupted (checksum mismatch" in done.stderr and "Traceback" not in done.stderr, done


def test_port_in_use_is_one_line(saved_bundle, cli, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = cli("serve", saved_bundle, "--port", str(taken.getsockname()[1]), cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and "cannot listen on 127.0.0.1" in done.stderr and "Traceback" not in done.stderr, done


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ----------------------------------------------------------------------------- hostile clients
def _rss_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def _gzip_bomb(block: bytes, mebibytes: int) -> bytes:
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    unit = block * ((1 << 20) // len(block))
    return b"".join(packer.compress(unit) for _ in range(mebibytes)) + packer.flush()


@pytest.mark.parametrize("block, mebibytes, status", [(b"\0", 128, 422), (b"1,2,3,4,5,6,7,8\n", 64, 413)])
def test_decompression_bomb_is_refused_fast_without_memory_growth(torch_server, auth, block, mebibytes, status):
    """A gzip upload of 64-128 MiB (zeros, or CSV text) is refused in under a second and the server's
    peak memory grows by less than 50 MB: it is inflated block by block, up to the cap, never whole."""
    bomb = _gzip_bomb(block, mebibytes)
    assert len(bomb) < 200_000  # under the body limit: the cap after decompression must catch it
    pid = torch_server.process.pid
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak (VmHWM) to the current resident size
    before = _rss_kib(pid, "VmRSS")
    started = time.perf_counter()
    response = httpx.post(f"{torch_server.url}/v1/predict/csv", headers=auth, timeout=30,
                          files={"file": ("rows.csv.gz", bomb, "application/gzip")})
    seconds = time.perf_counter() - started
    grown_mb = (_rss_kib(pid, "VmHWM") - before) / 1024
    assert response.status_code == status, response.text
    assert seconds < 1.0 and grown_mb < 50, (seconds, grown_mb)


def test_a_slow_client_is_cut_off_and_does_not_hold_up_others(torch_server, auth, rows):
    """A client that sends headers and a little of its body, then nothing: others are answered
    meanwhile, and it gets a 408 once the body timeout (2 s here) has passed."""
    import socket

    port = int(torch_server.url.rsplit(":", 1)[1])
    key = auth["Authorization"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall((f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"rows\": [").encode())
        started = time.perf_counter()
        for _ in range(3):
            fast = post(torch_server, {"rows": rows[:2]}, auth)
            assert fast.status_code == 200
        assert time.perf_counter() - started < 1.5
        answer = slow.recv(4096).decode("latin-1")
        waited = time.perf_counter() - started
        while "timed out" not in answer and (more := slow.recv(4096)):  # the body may come in a second segment
            answer += more.decode("latin-1")
    assert answer.startswith("HTTP/1.1 408") and "timed out" in answer, answer
    assert 1.5 < waited < 6, waited
