"""``Pipeline.explain`` (a DataFrame of contributions, or the JSON's dict) and report.html's
Explanations section (token highlights for a few test rows, time-bounded)."""
from __future__ import annotations

import pandas as pd
import pytest

from forgeml.api import Pipeline
from forgeml.explain import report_section

FAST = {"train.progress": False, "train.threads": 1}


@pytest.fixture(scope="module")
def ngram(make_mixed):
    frame = make_mixed(160).drop(columns=["price", "size"])
    return Pipeline("label", model="ngram", overrides=FAST).fit(frame), frame


def test_pipeline_explain_answers_a_frame_of_contributions(ngram):
    pipeline, frame = ngram
    before = frame.copy()
    table = pipeline.explain(frame, rows=[3, 1])
    assert list(table.index) == [3, 1] and table.index.name == "row"
    assert list(table.columns) == ["age", "income", "city", "signup", "review", "(base)", "(output)"]
    sums = table.drop(columns=["(base)", "(output)"]).sum(axis=1)
    pd.testing.assert_series_equal(sums, table["(output)"] - table["(base)"], check_names=False, atol=1e-5)
    assert "coefficient" in table.attrs["method"] and table.attrs["importance"][0]["feature"]
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is never modified
    records = frame.drop(columns=["label"]).head(2).astype(object).where(frame.head(2).notna(), None).to_dict("records")
    answer = pipeline.explain(records, 0, as_dict=True)
    assert answer["data"] == "records" and [row["row"] for row in answer["rows"]] == [0]
    from_frame = pipeline.explain(frame, 0).iloc[0]
    assert answer["rows"][0]["contributions"] == pytest.approx(from_frame.drop(["(base)", "(output)"]).to_dict(), abs=1e-6)


def test_the_report_explains_a_few_test_rows_with_token_highlights(ngram):
    pipeline, _ = ngram
    page = pipeline.report()
    assert 'id="explanations"' in page and '<div class="tokens">' in page
    assert len(pipeline.explanations_["rows"]) == report_section.ROWS


def test_the_report_section_keeps_to_its_time(ngram, monkeypatch):
    pipeline, frame = ngram
    monkeypatch.setattr(report_section, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(report_section, "MAX_SECONDS", 0.0)
    answer = report_section.sample_explanations(pipeline.predictor_, frame, fit_seconds=10.0)
    assert len(answer["rows"]) == 1  # the first row always; no time left for a second


def test_top_explains_the_rows_it_has_time_for(ngram, monkeypatch):
    from forgeml.explain import run

    pipeline, frame = ngram
    monkeypatch.setattr(run, "TOP_SECONDS", 0.0)
    answer = run.explain_frame(pipeline.predictor_, frame, top=3)
    assert answer["rows_explained"] == run.CHUNK and len(answer["rows"]) == 3
    assert all(row["row"] < run.CHUNK for row in answer["rows"])
    monkeypatch.setattr(run, "TOP_SECONDS", 1e9)
    assert run.explain_frame(pipeline.predictor_, frame, top=3)["rows_explained"] == len(frame)
