"""/v1/predict takes fields the model does not use (an id, the label) and can echo them back with
``keep``, as ``forgeml predict --keep`` and the CSV route do with extra columns."""
from __future__ import annotations

import httpx


def post(server, body, headers) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/predict", json=body, headers=headers, timeout=30)


def test_extra_fields_are_ignored(torch_server, auth, rows):
    plain = post(torch_server, {"rows": rows[:3]}, auth)
    extra = post(torch_server, {"rows": [{**row, "order_id": i, "label": "yes", "notes": {"any": [1]}} for i, row in enumerate(rows[:3])]}, auth)
    assert plain.status_code == extra.status_code == 200, extra.text
    assert extra.json()["predictions"] == plain.json()["predictions"]  # same answers, no "inputs" unless asked
    assert "inputs" not in extra.json()["predictions"][0]


def test_keep_echoes_fields_in_each_prediction(torch_server, auth, rows):
    sent = [{**row, "order_id": f"A-{i}"} for i, row in enumerate(rows[:4])]
    del sent[2]["order_id"]  # a row without it echoes null
    response = post(torch_server, {"rows": sent, "keep": ["order_id", "city"]}, auth)
    assert response.status_code == 200, response.text
    inputs = [p["inputs"] for p in response.json()["predictions"]]
    assert inputs == [{"order_id": "A-0", "city": rows[0]["city"]}, {"order_id": "A-1", "city": rows[1]["city"]},
                      {"order_id": None, "city": rows[2]["city"]}, {"order_id": "A-3", "city": rows[3]["city"]}]


def test_keep_of_a_field_no_row_has_is_422(torch_server, auth, rows):
    response = post(torch_server, {"rows": [{**rows[0], "order_id": 1}], "keep": ["oder_id"]}, auth)
    assert response.status_code == 422, response.text
    assert "'oder_id' is not a field of any row" in response.json()["error"]
    assert post(torch_server, {"rows": rows[:1], "kep": ["x"]}, auth).status_code == 422  # the request's own keys stay strict
