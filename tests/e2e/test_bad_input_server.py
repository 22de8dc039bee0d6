"""Bad-input table: hostile and mistaken HTTP requests to a real ``forgeml serve``. Each is a 4xx
whose ``error`` is one line naming the field or limit (or, for an unseen value, a correct
answer), the server's log holds no traceback, and the server answers the next request.

Two servers: the session's tabular bundle with API keys and small limits, and an image bundle
with ``--image-root`` holding a FIFO and a symlink out of the root (issue 18 items 7-9).
"""
from __future__ import annotations

import base64
import gzip
import json
import os
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import API_KEY, Server, serve

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ROW = {"age": 41.0, "income": 52000.0, "city": "paris", "signup": "2021-03-04", "review": "good service fast delivery note 3",
       "price": 60.0, "size": 80.0}


@dataclass
class Servers:
    tabular: Server
    images: Server
    root: Path  # --image-root of the image server
    picture: bytes  # a PNG the image bundle can read


Request = Callable[[Servers], httpx.Response]


def _predict(servers: Servers, body, headers=AUTH) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{servers.tabular.url}/v1/predict", content=content, timeout=30,
                      headers={**headers, "Content-Type": "application/json"})


def _upload(servers: Servers, name: str, data: bytes, kind: str) -> httpx.Response:
    return httpx.post(f"{servers.tabular.url}/v1/predict/csv", headers=AUTH, files={"file": (name, data, kind)}, timeout=30)


def _image(servers: Servers, value) -> httpx.Response:
    return httpx.post(f"{servers.images.url}/v1/predict", json={"rows": [{"image": value}]}, timeout=30)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width × height grey pixels in a few dozen bytes (a pixel bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _nested(depth: int) -> bytes:
    return b'{"rows": ' + b"[" * depth + b"]" * depth + b"}"


def _gzip_bomb(mebibytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"1,2,3,4,5,6,7,8\n" * 65536
    return b"".join(packer.compress(block) for _ in range(mebibytes)) + packer.flush()


CASES: dict[str, Request] = {
    # ------------------------------------------------------------------ keys and routes
    "no_api_key": lambda s: _predict(s, {"rows": [ROW]}, headers={}),
    "a_wrong_api_key": lambda s: _predict(s, {"rows": [ROW]}, headers={"Authorization": "Bearer guess"}),
    "docs_without_the_key": lambda s: httpx.get(f"{s.tabular.url}/docs", timeout=30),
    "openapi_without_the_key": lambda s: httpx.get(f"{s.tabular.url}/openapi.json", timeout=30),
    "get_on_the_predict_route": lambda s: httpx.get(f"{s.tabular.url}/v1/predict", headers=AUTH, timeout=30),
    # ------------------------------------------------------------------ JSON bodies
    "not_json": lambda s: _predict(s, b"rows=1&age=41"),
    "rows_not_a_list": lambda s: _predict(s, {"rows": {"age": 41}}),
    "no_rows": lambda s: _predict(s, {"rows": []}),
    "more_rows_than_allowed": lambda s: _predict(s, {"rows": [ROW] * 51}),
    "a_body_over_the_limit": lambda s: _predict(s, {"rows": [{**ROW, "review": "x" * 30_000}]}),
    "nesting_bomb": lambda s: _predict(s, _nested(5000)),
    "text_in_a_number_field": lambda s: _predict(s, {"rows": [{**ROW, "income": "lots"}]}),
    "a_missing_field": lambda s: _predict(s, {"rows": [{k: v for k, v in ROW.items() if k != "city"}]}),
    "keep_a_field_no_row_has": lambda s: _predict(s, {"rows": [ROW], "keep": ["order_id"]}),
    "unseen_city_and_extra_fields": lambda s: _predict(s, {"rows": [{**ROW, "city": "atlantis", "order_id": 7, "label": "yes"}]}),
    # ------------------------------------------------------------------ CSV uploads
    "a_gzip_bomb": lambda s: _upload(s, "rows.csv.gz", _gzip_bomb(64), "application/gzip"),
    "parquet_on_the_csv_route": lambda s: _upload(s, "rows.parquet", b"PAR1" + b"\0" * 64 + b"PAR1", "application/octet-stream"),
    "json_on_the_csv_route": lambda s: _upload(s, "rows.json", json.dumps([ROW]).encode(), "application/json"),
    "a_csv_without_a_column": lambda s: _upload(s, "rows.csv", b"age,income\n41,52000\n", "text/csv"),
    "a_cut_gzip_csv": lambda s: _upload(s, "rows.csv.gz", gzip.compress(b"age,income,city\n" * 200)[:60], "application/gzip"),
    # ------------------------------------------------------------------ images (item 7)
    "image_fifo_under_the_root": lambda s: _image(s, {"path": "pipe.png"}),
    "image_path_out_of_the_root": lambda s: _image(s, {"path": "../secret.png"}),
    "image_symlink_out_of_the_root": lambda s: _image(s, {"path": "escape.png"}),
    "image_absolute_path": lambda s: _image(s, {"path": "/etc/passwd"}),
    "image_not_base64": lambda s: _image(s, "not base64!"),
    "image_bytes_not_an_image": lambda s: _image(s, base64.b64encode(b"just some bytes").decode()),
    "image_pixel_bomb": lambda s: _image(s, base64.b64encode(_png_header_only(20_000, 20_000)).decode()),
    "image_as_a_data_url": lambda s: _image(s, "data:image/png;base64," + base64.b64encode(s.picture).decode()),
}
RESULTS = {"unseen_city_and_extra_fields", "image_as_a_data_url"}  # correct answers, not refusals


@pytest.fixture(scope="module")
def servers(trained, tmp_path_factory) -> Servers:
    from tests.multimodal_data import write_image_folder

    from forgeml import Pipeline

    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(API_KEY + "\n", encoding="utf-8")
    pictures = write_image_folder(tmp_path_factory.mktemp("shapes") / "images", per_class=6, size=16)
    overrides = {"train.epochs": 1, "train.progress": False, "train.threads": 1, "train.bagging_folds": 1}
    image_bundle = Pipeline(target="label", overrides=overrides).fit(pictures).save(tmp_path_factory.mktemp("image_bundle") / "bundle")
    work = tmp_path_factory.mktemp("hostile")
    root = work / "served"
    root.mkdir()
    os.mkfifo(root / "pipe.png")  # reading it would block the scoring thread forever
    (work / "secret.png").write_bytes((pictures / "left" / "left_001.png").read_bytes())
    (root / "escape.png").symlink_to(work / "secret.png")
    with serve(trained.bundle, "--api-key-file", str(keys), "--max-rows", "50", "--max-body-bytes", "20000",
               "--max-csv-bytes", "200000", workdir=work) as tabular, \
            serve(image_bundle, "--image-root", str(root), workdir=work) as images:
        yield Servers(tabular, images, root, (pictures / "left" / "left_002.png").read_bytes())


@pytest.fixture(scope="module")
def answers(servers) -> dict[str, tuple[httpx.Response, float]]:
    answered = {}
    for name, request in CASES.items():
        started = time.perf_counter()
        answered[name] = (request(servers), time.perf_counter() - started)
    return answered


@pytest.mark.parametrize("name", list(CASES))
def test_every_case_is_one_error_line_or_a_result(answers, name):
    response, seconds = answers[name]
    assert seconds < 5, f"{name} took {seconds:.1f} s"  # no request wedges the server (the FIFO)
    body = response.json()
    if name in RESULTS:
        assert response.status_code == 200, body
        return
    assert 400 <= response.status_code < 500, (response.status_code, body)
    error = body["error"]
    assert isinstance(error, str) and error.strip() and "\n" not in error, body
    assert "Traceback" not in error and "internal error" not in error, body


def test_the_servers_logged_no_traceback_and_still_answer(answers, servers):
    for server in (servers.tabular, servers.images):
        assert "Traceback" not in server.output(), server.output()[-3000:]
    assert _predict(servers, {"rows": [ROW]}).status_code == 200
    assert _image(servers, base64.b64encode(servers.picture).decode()).status_code == 200


def test_what_each_refusal_says(answers):
    def said(name: str) -> tuple[int, str]:
        response, _ = answers[name]
        return response.status_code, response.json()["error"]

    assert said("no_api_key")[0] == said("a_wrong_api_key")[0] == 401
    assert said("docs_without_the_key")[0] == said("openapi_without_the_key")[0] == 401
    assert said("more_rows_than_allowed")[0] in (413, 422) and "50" in said("more_rows_than_allowed")[1]
    assert said("a_body_over_the_limit")[0] == 413
    assert said("nesting_bomb")[0] == 422 and "nest" in said("nesting_bomb")[1]
    assert "rows[0].income" in said("text_in_a_number_field")[1] and "number" in said("text_in_a_number_field")[1]
    assert "city" in said("a_missing_field")[1]
    assert said("keep_a_field_no_row_has")[0] == 422 and "order_id" in said("keep_a_field_no_row_has")[1]
    assert said("a_gzip_bomb")[0] in (413, 422)
    assert said("parquet_on_the_csv_route")[0] == said("json_on_the_csv_route")[0] == 415
    paths = {said(name)[1].replace(repr(path), "<path>") for name, path in [
        ("image_fifo_under_the_root", "pipe.png"), ("image_path_out_of_the_root", "../secret.png"),
        ("image_symlink_out_of_the_root", "escape.png"), ("image_absolute_path", "/etc/passwd")]}
    assert len(paths) == 1 and "under the image root" in paths.pop()  # never tells what exists outside
    assert "too large to decode" in said("image_pixel_bomb")[1]
    probabilities = answers["unseen_city_and_extra_fields"][0].json()["predictions"][0]["probabilities"]
    assert abs(sum(probabilities.values()) - 1) < 1e-5


def test_the_table_is_counted_with_the_cli_tables():
    assert len(CASES) >= 25 and RESULTS <= set(CASES)
