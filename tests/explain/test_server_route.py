"""POST /v1/explain in-process: /v1/predict's body and guards, one explanation per row that adds
up to the prediction's change from the baseline, and one-line 422s for rows that do not fit."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from forgeml.serve.app import create_app
from forgeml.serve.settings import ServeSettings

KEY = "explain-test-key-0123456789"


@pytest.fixture(scope="module")
def client(saved_bundle, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(KEY + "\n")
    with TestClient(create_app(saved_bundle, ServeSettings(api_key_file=keys, max_rows=5))) as client:
        yield client


AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def rows(mixed_frame) -> list[dict]:
    """Rows as a client sends them: JSON types, null for missing values, no target."""
    records = mixed_frame.drop(columns=["label"]).head(10).to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in records]


def test_explain_takes_the_predict_body_and_explains_each_row(client, rows):
    body = {"rows": rows[:3]}
    predicted = client.post("/v1/predict", json=body, headers=AUTH).json()["predictions"]
    response = client.post("/v1/explain", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "integrated gradients" in answer["method"] and answer["completeness_gap"] < 0.05
    assert [e["prediction"] for e in answer["explanations"]] == [p["prediction"] for p in predicted]
    for explanation in answer["explanations"]:
        assert set(explanation["contributions"]) == {"age", "income", "city", "signup", "review", "price", "size"}
        change = explanation["output"] - explanation["base"]
        assert sum(explanation["contributions"].values()) == pytest.approx(change, abs=0.05 * max(abs(change), 0.01))
        assert explanation["tokens"]["review"]  # token highlights of the text column


def test_explain_is_guarded_like_predict(client, rows):
    assert client.post("/v1/explain", json={"rows": rows[:1]}).status_code == 401  # no API key
    too_many = client.post("/v1/explain", json={"rows": rows[:6]}, headers=AUTH)
    assert too_many.status_code == 422 and "rows" in too_many.json()["error"]
    as_text = client.post("/v1/explain", content="rows", headers={**AUTH, "Content-Type": "text/plain"})
    assert as_text.status_code == 415


def test_rows_whose_columns_do_not_match_are_one_line_422s(client, rows):
    missing = [{k: v for k, v in row.items() if k != "income"} for row in rows[:2]]
    response = client.post("/v1/explain", json={"rows": missing}, headers=AUTH)
    assert response.status_code == 422
    error = response.json()["error"]
    assert "income" in error and "\n" not in error
    wrong_type = client.post("/v1/explain", json={"rows": [{**rows[0], "age": "old"}]}, headers=AUTH)
    assert wrong_type.status_code == 422 and "age" in wrong_type.json()["error"]


def test_a_row_the_features_cannot_read_is_a_422_not_a_500(client, rows):
    unreadable = client.post("/v1/explain", json={"rows": [{**rows[0], "signup": "not a date at all"}]}, headers=AUTH)
    assert unreadable.status_code in (200, 422), unreadable.text
    if unreadable.status_code == 422:
        assert "signup" in unreadable.json()["error"] and "\n" not in unreadable.json()["error"]
