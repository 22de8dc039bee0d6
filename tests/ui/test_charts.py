"""Inline SVG charts and the dashboard's curve grouping."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from forgeml.ui.app import chart_groups, curves
from forgeml.ui.charts import line_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"


def test_nice_ticks_cover_the_range_with_round_steps():
    ticks = nice_ticks(0.23, 0.91)
    assert ticks[0] <= 0.23 and ticks[-1] >= 0.91
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1 and steps.pop() in (0.1, 0.2, 0.25, 0.5)
    assert nice_ticks(3.0, 3.0)[0] < 3.0 < nice_ticks(3.0, 3.0)[-1]  # a flat line still gets an axis
    for low, high in [(0.0045, 0.66), (0.0, 0.7), (0.61, 1.0), (-3.2, 17.9), (1e-5, 2e-5)]:
        ticks = nice_ticks(low, high)
        assert ticks[0] <= low and ticks[-1] >= high, (low, high, ticks)  # every point inside the plot


def test_line_chart_is_valid_svg_with_one_polyline_per_series():
    svg = line_chart({"train_loss": [(1, 0.9), (2, 0.5), (3, 0.4)], "val_loss": [(1, 1.0), (2, float("nan")), (3, 0.6)]},
                     title="loss <&>", metric="loss")
    root = ET.fromstring(svg)  # escaping kept it well-formed
    lines = root.findall(f"{SVG}polyline")
    assert [l.get("data-series") for l in lines] == ["train_loss", "val_loss"]
    assert [l.get("data-points") for l in lines] == ["3", "2"]  # NaN dropped
    ys = [float(p.split(",")[1]) for p in lines[0].get("points").split()]
    assert ys[0] < ys[1] < ys[2]  # falling loss: SVG y grows downwards, so the line goes down the screen
    assert "no data" in line_chart({"x": []}, title="empty", metric="x")


def test_points_stay_inside_the_plot_and_the_legend_clear_of_it():
    series = {f"run{k}: val_loss" : [(e, 0.66 * 0.9 ** e + 0.004) for e in range(1, 40)] for k in range(5)}
    root = ET.fromstring(line_chart(series, title="loss", metric="loss"))
    grid = [float(line.get("y1")) for line in root.findall(f"{SVG}line") if line.get("class") == "grid"]
    plot_top, plot_bottom = min(grid), max(grid)
    dots = [float(c.get("cy")) for c in root.findall(f"{SVG}circle")]
    assert plot_top <= min(dots) and max(dots) <= plot_bottom  # 0.664 used to sit above a last tick of 0.6
    swatches = root.findall(f"{SVG}rect")
    assert len(swatches) == 5 and max(float(r.get("y")) + 10 for r in swatches) < plot_top  # 5 entries wrap onto 2 rows


def test_curves_group_losses_and_skip_bookkeeping():
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "val_accuracy": 0.5, "seconds": 0.3, "lr": 0.001},
               {"epoch": 2, "train_loss": 0.8, "val_loss": 1.0, "val_accuracy": 0.6, "seconds": 0.3, "lr": 0.0005, "best": True}]
    data = curves(history)
    assert set(data) == {"train_loss", "val_loss", "val_accuracy", "lr"}
    assert data["val_accuracy"] == [(1.0, 0.5), (2.0, 0.6)]
    assert chart_groups(list(data)) == [("loss", ["train_loss", "val_loss"]), ("val_accuracy", ["val_accuracy"]), ("lr", ["lr"])]
