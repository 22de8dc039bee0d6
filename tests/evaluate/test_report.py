"""The HTML report (and the plots and data summary it is built from)."""
from __future__ import annotations

import base64
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from forgeml.evaluate import plots
from forgeml.evaluate.metrics import compute_metrics
from forgeml.evaluate.report import ReportInputs, metrics_table_rows, render_report, write_report
from forgeml.evaluate.summary import summarize_data

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES = ["猫", "狗", "<script>alert(1)</script>"]
HISTORY = [
    {"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val_f1_macro": 0.5 + e / 20, "lr": 0.01}
    for e in range(1, 5)
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "年龄": [31, None, 45, 22],
        "城市": ["北京", "上海", "北京", None],
        "<b>id</b>": [1, 2, 3, 4],
        "动物": ["猫", "狗", "猫", "<script>alert(1)</script>"],
    })


def _classification_inputs(**overrides) -> ReportInputs:
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 3, size=60)
    y_proba = rng.dirichlet(np.ones(3), size=60)
    df = _frame()
    inputs = ReportInputs(
        title="Animals <v1>",
        task="multiclass",
        targets=["动物"],
        model_description="MLP 2x64",
        metrics=compute_metrics("multiclass", y_true, y_proba=y_proba, class_names=CLASSES),
        validation_metrics=compute_metrics("multiclass", y_true[:30], y_proba=y_proba[:30], class_names=CLASSES),
        history=HISTORY,
        y_true=y_true,
        y_proba=y_proba,
        class_names=CLASSES,
        data_summary=summarize_data(df, {"年龄": "number", "城市": "category"}, {"<b>id</b>": "unique per row (an id)"}, ["动物"]),
        cleaning={"rows_dropped": {"duplicate": 2, "missing_target": 1}, "columns_dropped": ["<b>id</b>"],
                  "fixes": [{"column": "年龄", "action": "cast to number", "cells": 3}]},
        feature_importance={"年龄": 0.4, "城市": 0.1},
        config_yaml="task: multiclass\ntarget: 动物  # <script>\n",
        created_at="2024-05-01T12:00:00+00:00",
        extra_notes=["class <script> is rare"],
    )
    for key, value in overrides.items():
        setattr(inputs, key, value)
    return inputs


@pytest.fixture(scope="module")
def classification_page() -> str:
    """Rendered once: drawing five plots is the slow part and the page is read-only."""
    return render_report(_classification_inputs())


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


# ----------------------------------------------------------------------------- report
def test_classification_report_has_every_section_and_embedded_plots(classification_page):
    page = classification_page
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    for anchor in ("summary", "metrics", "per-class", "plots", "data", "cleaning", "config", "notes"):
        assert f'id="{anchor}"' in page, anchor
    images = _images(page)
    # learning curves, ROC, PR, confusion matrix, feature importance
    assert len(images) == 5 and all(img.startswith(PNG_MAGIC) for img in images)
    for caption in ("Learning curves", "ROC curve", "Precision-recall curve", "Confusion matrix", "Feature importance"):
        assert f"<figcaption>{caption}</figcaption>" in page
    assert "MLP 2x64" in page and "2024-05-01T12:00:00+00:00" in page
    assert "Validation" in page  # validation column next to the test column
    assert "cast to number" in page and "missing_target" in page  # cleaning rendered generically
    assert "unique per row (an id)" in page  # drop reason in the data table


def test_report_is_offline_and_escapes_user_strings(classification_page):
    page = classification_page
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', page, flags=re.IGNORECASE)
    assert "url(" not in page and "@import" not in page
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # class name, shown as text
    assert "&lt;b&gt;id&lt;/b&gt;" in page and "<b>id</b>" not in page  # column name
    assert "Animals &lt;v1&gt;" in page


def test_report_renders_chinese_names(classification_page):
    page = classification_page
    for text in ("猫", "狗", "年龄", "城市", "北京"):
        assert text in page, text


def test_report_without_history_or_probabilities_still_renders():
    inputs = _classification_inputs(history=[], y_proba=None, feature_importance=None, data_summary=None,
                                    cleaning=None, config_yaml=None, validation_metrics=None, extra_notes=[])
    page = render_report(inputs)
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert captions == ["Confusion matrix"]  # no curves without history or probabilities
    assert len(_images(page)) == 1
    for anchor in ("metrics", "data", "cleaning", "config"):
        assert f'id="{anchor}"' in page
    assert "No data summary recorded." in page
    assert 'id="notes"' not in page


def test_regression_report_renders_regression_plots():
    rng = np.random.default_rng(5)
    y_true = rng.normal(size=80)
    y_pred = y_true + rng.normal(scale=0.3, size=80)
    inputs = ReportInputs(
        title="House prices", task="regression", targets=["价格"], model_description="MLP",
        metrics=compute_metrics("regression", y_true, y_pred=y_pred), y_true=y_true, y_pred=y_pred,
        history=[{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "val_r2": 0.2}],
    )
    page = render_report(inputs)
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert captions == ["Learning curves", "Predicted vs actual", "Residuals"]
    assert all(img.startswith(PNG_MAGIC) for img in _images(page))
    assert ">r2<" in page and ">mae<" in page and 'id="per-class"' not in page


def test_write_report_writes_utf8_atomically(tmp_path):
    target = tmp_path / "out" / "report.html"
    path = write_report(target, _classification_inputs(history=[], y_proba=None, feature_importance=None))
    assert path == target
    assert "猫" in target.read_text(encoding="utf-8")
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]  # no temp file left


def test_metrics_table_rows_headline_first_and_four_significant_digits():
    metrics = {"r2": 0.912345, "mae": 1234.5678, "rmse": 2.0, "mape": None, "n": 1500, "per_target": {}}
    rows = metrics_table_rows(metrics, "regression")
    assert rows == [("r2", "0.9123"), ("mae", "1235"), ("rmse", "2"), ("mape", "—"), ("n", "1,500")]
    classification = metrics_table_rows({"accuracy": 0.5, "f1_macro": 2 / 3, "confusion_matrix": [[1]]}, "binary")
    assert classification == [("f1_macro", "0.6667"), ("accuracy", "0.5")]


# ----------------------------------------------------------------------------- summary
def test_summarize_data_per_column():
    summary = summarize_data(_frame(), {"年龄": "number", "城市": "category"}, {"<b>id</b>": "an id", "gone": "constant"}, ["动物"])
    assert summary["rows"] == 4 and summary["columns"] == 4
    by_name = {c["name"]: c for c in summary["per_column"]}
    assert by_name["年龄"] == {"name": "年龄", "type": "number", "missing": 1, "missing_pct": 25.0,
                              "distinct": 3, "example": "31.0", "note": ""}
    assert by_name["动物"]["type"] == "target" and by_name["动物"]["distinct"] == 3
    assert by_name["<b>id</b>"]["type"] == "dropped" and by_name["<b>id</b>"]["note"] == "an id"
    assert by_name["gone"]["type"] == "dropped" and by_name["gone"]["missing"] is None  # dropped before profiling
    json.dumps(summary, allow_nan=False)


# ----------------------------------------------------------------------------- plots
def test_plots_are_png_deterministic_and_silent_on_cjk():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, size=40)
    proba = rng.dirichlet(np.ones(3), size=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing-glyph warning would fail here
        first = plots.roc_curves(y, proba, CLASSES)
        outputs = [
            first,
            plots.pr_curves(y, proba, CLASSES),
            plots.confusion_matrix_plot([[3, 1], [0, 2]], ["猫", "狗"]),
            plots.learning_curves([]),
            plots.residuals(rng.normal(size=(20, 2)), rng.normal(size=(20, 2)), ["价格", "面积"]),
            plots.feature_importance({"年龄": 0.3, "城市": -0.5}),
        ]
    assert all(png.startswith(PNG_MAGIC) for png in outputs)
    assert plots.roc_curves(y, proba, CLASSES) == first


@pytest.mark.skipif(not plots.cjk_fonts(), reason="no CJK-capable font on this machine (e.g. apt-get install fonts-wqy-microhei)")
def test_chinese_labels_have_glyphs_when_a_cjk_font_is_installed(monkeypatch, caplog):
    monkeypatch.setattr(plots, "_warned_missing_glyphs", False)
    with caplog.at_level("WARNING", logger="forgeml.evaluate.plots"), warnings.catch_warnings():
        warnings.simplefilter("error")
        png = plots.confusion_matrix_plot([[3, 1], [0, 2]], ["猫咪 cat", "小狗 dog"])
        plots.feature_importance({"年龄": 0.3, "城市": -0.5})
    assert png.startswith(PNG_MAGIC)
    assert not [r for r in caplog.records if r.name == "forgeml.evaluate.plots"], caplog.text  # no missing glyph


def test_without_a_cjk_font_chinese_labels_warn_once_and_still_draw(monkeypatch, caplog):
    monkeypatch.setattr(plots, "cjk_fonts", lambda: ())
    monkeypatch.setattr(plots, "_warned_missing_glyphs", False)
    with caplog.at_level("WARNING", logger="forgeml.evaluate.plots"):
        outputs = [plots.confusion_matrix_plot([[3, 1], [0, 2]], ["猫", "狗"]), plots.feature_importance({"年龄": 0.3})]
    assert all(png.startswith(PNG_MAGIC) for png in outputs)
    (record,) = [r for r in caplog.records if r.name == "forgeml.evaluate.plots"]  # once, not once per plot
    assert "no CJK-capable font" in record.getMessage() and "猫" in record.getMessage()


@pytest.mark.parametrize("y_true", [np.zeros(5, dtype=int), np.array([0, 1, 0, 1, 0])])
def test_curves_handle_single_class_and_binary(y_true):
    proba = np.tile([[0.4, 0.6]], (5, 1))
    assert plots.roc_curves(y_true, proba, ["no", "yes"]).startswith(PNG_MAGIC)


def plugin_section(inputs: ReportInputs) -> str:
    return f"<section id='plugin'>{len(inputs.targets)} target</section>"


def test_a_section_named_by_module_and_function_is_rendered_in_its_place(monkeypatch):
    """Packages above evaluate (explain, compress) add a section as "module:function" in
    SECTIONS: imported when the page is rendered, in the order of the tuple."""
    from forgeml.evaluate import report

    monkeypatch.setattr(report, "SECTIONS", (*report.SECTIONS[:2], f"{__name__}:plugin_section", *report.SECTIONS[2:]))
    page = render_report(_classification_inputs())
    assert "<section id='plugin'>1 target</section>" in page
    assert page.index('id="metrics"') < page.index("id='plugin'") < page.index('id="config"')
