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


def test_a_gbm_run_page_draws_its_boosting_rounds(ui_runs):
    """The LightGBM run of the shared registry: its rounds reached metrics.jsonl, so the page has a loss chart."""
    registry = RunRegistry(ui_runs)
    boosted = next(r for r in registry.list() if r.name == "boosted")
    page = TestClient(create_ui_app(ui_runs)).get(f"/runs/{boosted.id}")
    assert page.status_code == 200
    assert 'data-metric="loss"' in page.text and "No epochs recorded" not in page.text
    assert "boosting rounds run" in page.text and "boosting round</text>" in page.text


def test_compare_page_colours_by_the_metrics_direction(registry):
    a, b = (registry.create(name, "target: y\n", "data.csv") for name in ("a", "b"))
    registry.finish(a.id, "completed", "regression", "mlp", "r2", 0.5, {"rmse": 2.0, "r2": 0.5})
    registry.finish(b.id, "completed", "regression", "mlp", "r2", 0.6, {"rmse": 1.0, "r2": 0.6})
    html = TestClient(create_ui_app(registry.root)).get("/compare", params={"run": [a.id, b.id]}).text
    rows = re.findall(r"<tr><td>(\w+)</td>(.*?)</tr>", html, flags=re.S)
    cells = {name: re.findall(r'<td class="num ?(\w*)">', row)[-1] for name, row in rows}
    assert cells["rmse"] == "pos" and cells["r2"] == "pos"  # both better in b, though rmse went down


def test_an_ensemble_run_page_lists_its_leaderboard(ui_runs):
    """The AutoML run of the shared registry: every member with its score and weight, and the ensemble's row."""
    registry = RunRegistry(ui_runs)
    automl = next(r for r in registry.list() if r.name == "automl")
    page = TestClient(create_ui_app(ui_runs)).get(f"/runs/{automl.id}").text
    table = page[page.index('<table id="leaderboard">'):]
    table = table[: table.index("</table>")]
    assert "<th>predict ms per row</th>" in table and "<td>lightgbm</td>" in table and "<td>linear</td>" in table
    assert "<td>ensemble</td>" in table
    mlp = next(r for r in registry.list() if r.name == "fast-lr")
    assert 'id="leaderboard"' not in TestClient(create_ui_app(ui_runs)).get(f"/runs/{mlp.id}").text  # one model, no table


def test_a_tuned_run_page_shows_its_study(registry):
    """A run refitted by `forgeml tune` lists its best trials and option importance from trials.json."""
    import json

    record = registry.create("tuned", "target: y\n", "data.csv")
    trials = [{"trial": 0, "state": "complete", "loss": 0.31, "seconds": 1.2, "model.num_leaves": 31},
              {"trial": 1, "state": "pruned", "loss": None, "seconds": 0.4, "model.num_leaves": 200},
              {"trial": 2, "state": "complete", "loss": 0.25, "seconds": 1.0, "model.num_leaves": 15}]
    summary = {"study": "data-gbm", "storage": "journal:///runs/tuning/data-gbm.journal", "objectives": ["loss"], "trials": trials,
               "counts": {"complete": 2, "pruned": 1, "fail": 0, "running": 0}, "best": {"trial": 2}, "importance": {"model.num_leaves": 1.0}}
    (record.dir / "trials.json").write_text(json.dumps(summary))
    page = TestClient(create_ui_app(registry.root)).get(f"/runs/{record.id}").text
    table = page[page.index('<table id="tuning">'):]
    table = table[: table.index("</table>")]
    assert re.findall(r"<tr><td[^>]*>(\d+)</td>", table) == ["2", "0"]  # best first; the pruned trial is not listed
    assert "num_leaves=15" in table and "num_leaves=200" not in table
    assert "refits trial 2" in page and "num_leaves 100 %" in page
    other = registry.create("plain", "target: y\n", "data.csv")
    assert 'id="tuning"' not in TestClient(create_ui_app(registry.root)).get(f"/runs/{other.id}").text
