"""``forgeml ui`` in headless Chromium: the run list, a run page with its curves, the report, compare."""
from __future__ import annotations

import json

from forgeml.runs.registry import RunRegistry


def _runs(ui_runs):
    records = RunRegistry(ui_runs).list()
    return {r.name: r for r in records}


def test_run_list_shows_every_run_and_sorts_by_metric(page, ui_server, ui_runs):
    runs = _runs(ui_runs)
    page.goto(ui_server + "/")
    assert page.locator("#runs tbody tr").count() == len(runs) == 4
    assert set(page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)")) == {r.id for r in runs.values()}
    value = {r.id: r.headline_value for r in runs.values()}
    page.click("a[data-sort='headline']")  # first click: best (highest) first
    shown = page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)")
    assert [value[i] for i in shown] == sorted(value.values(), reverse=True)
    page.click("a[data-sort='headline']")  # second click flips the order
    flipped = page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)")
    assert [value[i] for i in flipped] == sorted(value.values())


def test_open_a_run_and_see_its_curves_metrics_config_and_report(page, ui_server, ui_runs):
    run = _runs(ui_runs)["fast-lr"]
    history = RunRegistry(ui_runs).history(run.id)
    page.goto(ui_server + "/")
    page.click(f"tr[data-run='{run.id}'] a.run-link")
    page.wait_for_url(f"**/runs/{run.id}")
    assert page.inner_text("#run-id") == run.id
    loss = page.locator("svg.chart[data-metric='loss']")
    assert loss.is_visible()
    series = {s.get_attribute("data-series"): int(s.get_attribute("data-points")) for s in loss.locator("polyline.series").all()}
    assert series == {"train_loss": len(history), "val_loss": len(history)}
    box = loss.locator("polyline.series").first.bounding_box()
    assert box and box["width"] > 100  # drawn across the plot, not collapsed to a point
    assert page.locator("svg.chart[data-metric='val_accuracy']").count() == 1
    assert f"{run.metrics['accuracy']:.4f}" in page.inner_text("#metrics")
    assert "learning_rate: 0.01" in page.inner_text("#config")
    page.click("#report-link")
    page.wait_for_load_state()
    assert "forgeml" in page.title().lower() and page.locator("table").count() > 0


def test_compare_two_runs(page, ui_server, ui_runs):
    runs = _runs(ui_runs)
    a, b = runs["slow-lr"], runs["fast-lr"]
    page.goto(ui_server + "/")
    page.check(f"input[value='{a.id}']")
    page.check(f"input[value='{b.id}']")
    page.click("#compare-button")
    page.wait_for_url("**/compare?**")
    chart = page.locator("svg.chart[data-metric='val_loss']")
    names = sorted(s.get_attribute("data-series") for s in chart.locator("polyline.series").all())
    assert names == ["a: val_loss", "b: val_loss"]
    # Different learning rates: the two curves are drawn differently.
    points = [s.get_attribute("points") for s in chart.locator("polyline.series").all()]
    assert points[0] != points[1]
    metrics = page.inner_text("#metrics")
    assert "accuracy" in metrics and f"{b.metrics['accuracy'] - a.metrics['accuracy']:+.4f}" in metrics
    assert "train.learning_rate" in page.inner_text("#config-diff")


def test_compare_needs_two_runs(page, ui_server, ui_runs):
    page.goto(ui_server + "/")
    page.check(f"input[value='{_runs(ui_runs)['boosted'].id}']")
    page.click("#compare-button")
    assert "select exactly two runs" in page.inner_text("#error")


def test_unknown_run_is_a_404_page(ui_server):
    import httpx

    response = httpx.get(ui_server + "/runs/does-not-exist")
    assert response.status_code == 404 and "no run matches" in response.text
    assert json.loads(httpx.get(ui_server + "/healthz").text) == {"status": "ok"}
