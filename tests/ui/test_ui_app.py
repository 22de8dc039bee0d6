"""The dashboard in-process: empty registry, unfinished runs, sorting with missing values, bad URLs."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from forgeml.runs.registry import RunRegistry
from forgeml.ui.app import create_ui_app


@pytest.fixture
def registry(tmp_path):
    return RunRegistry(tmp_path / "runs")


def ids_in_order(html: str) -> list[str]:
    return re.findall(r'<tr data-run="([^"]+)"', html)


def test_empty_registry(registry):
    page = TestClient(create_ui_app(registry.root)).get("/")
    assert page.status_code == 200 and "No runs yet" in page.text


def test_sorting_puts_runs_without_the_metric_last(registry):
    done = []
    for name, accuracy in (("low", 0.7), ("high", 0.9), ("mid", 0.8)):
        record = registry.create(name, "target: y\n", "data.csv")
        registry.append_metrics(record.id, {"epoch": 1, "train_loss": 1.0, "val_loss": 1.1})
        registry.finish(record.id, "completed", "binary", "mlp", "accuracy", accuracy, {"accuracy": accuracy})
        done.append(record.id)
    unfinished = registry.create("crashed", "target: y\n", "data.csv").id
    client = TestClient(create_ui_app(registry.root))
    by_name = {name: rid for name, rid in zip(("low", "high", "mid"), done)}
    desc = ids_in_order(client.get("/", params={"sort": "metric:accuracy", "order": "desc"}).text)
    assert desc == [by_name["high"], by_name["mid"], by_name["low"], unfinished]
    asc = ids_in_order(client.get("/", params={"sort": "metric:accuracy", "order": "asc"}).text)
    assert asc == [by_name["low"], by_name["mid"], by_name["high"], unfinished]
    assert client.get("/", params={"sort": "nonsense", "order": "sideways"}).status_code == 200
    page = client.get(f"/runs/{unfinished}")
    assert page.status_code == 200 and "No epochs recorded" in page.text and "did not finish" in page.text
    assert client.get(f"/runs/{unfinished}/report").status_code == 404


def test_bad_urls_are_pages_not_errors(registry):
    registry.create("only", "target: y\n", "data.csv")
    client = TestClient(create_ui_app(registry.root))
    assert client.get("/runs/zzz").status_code == 404
    assert client.get("/compare", params={"run": ["zzz", "yyy"]}).status_code == 404
    response = client.get("/compare")
    assert response.status_code == 400 and "select exactly two runs" in response.text
    assert "<script" not in client.get("/runs/%3Cscript%3E").text.lower()  # names are escaped
