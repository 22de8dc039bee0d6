"""schemathesis against the served OpenAPI: whatever a client sends, the server never answers 5xx.

Cases are generated from ``/openapi.json`` of a real ``forgeml serve`` (uvicorn, API keys on):
valid requests and invalid ones (wrong types, missing and extra fields, values outside the
schema) for every route. Derandomized, so a failure replays. schemathesis' own pytest plugin is
not used: it does not run on this pytest; its strategies are driven with plain hypothesis.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings


def fuzz(url: str, headers: dict[str, str], mode: str, examples: int = 25) -> dict[tuple[str, int], int]:
    """Run ``examples`` generated requests per route; (path, status) → how many. Fails on a 5xx."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/predict", "/v1/predict/csv", "/v1/model", "/readyz"}
    if mode == "negative":  # a route without inputs has no invalid request to make
        operations = [op for op in operations if op.method.upper() == "POST"]
    answered: dict[tuple[str, int], int] = {}
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
        @settings(max_examples=examples, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            response = case.call(base_url=url, headers=headers, timeout=30)
            key = (operation.path, response.status_code)
            answered[key] = answered.get(key, 0) + 1
            assert response.status_code < 500, f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"

        run()
    assert sum(answered.values()) >= 2 * len(operations) and not any(code >= 500 for _, code in answered), answered
    return answered


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_generated_request_gets_a_5xx(torch_server, auth, mode):
    answered = fuzz(torch_server.url, auth, mode)
    if mode == "positive":  # valid rows were generated and scored, not only refused
        assert answered.get(("/v1/predict", 200)), answered


def test_no_generated_image_request_gets_a_5xx(image_bundle, start_server, tmp_path):
    """Image fields: random base64, {"path": ...} objects, nulls, under an --image-root."""
    bundle, root = image_bundle
    with start_server(bundle, "--image-root", str(root), workdir=tmp_path) as server:
        for mode in ("positive", "negative"):
            fuzz(server.url, {}, mode, examples=15)
