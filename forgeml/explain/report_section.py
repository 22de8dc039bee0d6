"""report.html's Explanations section: a few held-out rows explained at training time (per-row
bars, token highlights for text), cheap and time-bounded as the permutation importance is.

``sample_explanations`` explains the first test row, and the next ``ROWS`` − 1 in one more call
when the first row's time says they fit in the allowance (5 % of the fit's time, between
``MIN_SECONDS`` and ``MAX_SECONDS``): a tree or linear model takes milliseconds, a network with
text a few tenths of a second a row. A family without a method, or a missing extra, leaves the section out.
"""
from __future__ import annotations

import time
from typing import Any

ROWS = 3
SHARE, MIN_SECONDS, MAX_SECONDS = 0.05, 1.0, 5.0


def sample_explanations(predictor: Any, frame: Any, fit_seconds: float) -> dict[str, Any] | None:
    from forgeml.errors import ForgeError
    from forgeml.explain.methods import METHODS
    from forgeml.explain.run import explain_frame

    if frame is None or not len(frame) or predictor.config.model.type not in METHODS:
        return None
    allowance = min(MAX_SECONDS, max(MIN_SECONDS, SHARE * fit_seconds))
    started = time.perf_counter()
    try:
        answer = explain_frame(predictor, frame, rows=[0], source="test split")  # one row first: its time prices the others
        per_row = time.perf_counter() - started
        more = min(ROWS, len(frame)) - 1
        if more > 0 and per_row * (1 + more) <= allowance:
            answer["rows"] += explain_frame(predictor, frame, rows=list(range(1, more + 1)), source="test split")["rows"]
    except ForgeError:  # an extra not installed, a row a feature cannot read: no section rather than no report
        return None
    answer["seconds"] = round(time.perf_counter() - started, 3)
    return answer


def explanations_section(inputs: Any) -> str:
    """The section's HTML for ``inputs`` (a ``ReportInputs``), or "" without explanations."""
    from forgeml.evaluate.report_html import escape as _e, muted as _muted, section as _section
    from forgeml.explain.page import _img, _row_bars, tokens_html

    answer = getattr(inputs, "explanations", None)
    if not answer or not answer.get("rows"):
        return ""
    parts = [_muted(f"The first {len(answer['rows'])} row(s) of the test split, explained in {answer.get('seconds', 0):.1f} s. "
                    f"Method: {answer['method']}. Unit: {answer['output']}. Baseline: {answer['baseline']}. "
                    "Any rows: forgeml explain BUNDLE DATA.")]
    for row in answer["rows"]:
        parts.append(_img(_row_bars(row, answer["output"]), f"test row {row['row']}"))
        for name, tokens in (row.get("tokens") or {}).items():
            parts.append(f"<p><b>{_e(name)}</b></p>{tokens_html(tokens)}")
    return _section("explanations", "Explanations", "\n".join(parts))
