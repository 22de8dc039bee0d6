"""The report's Warnings section: what may make the metrics above it untrustworthy, shown right
under them rather than in the notes at the end (today: one input dominating the permutation
importance, a leak smell; see ``evaluate.importance.dominance_warning``)."""
from __future__ import annotations

from typing import Any

from forgeml.evaluate.report_html import escape, section


def warnings_section(inputs: Any) -> str:
    """The section's HTML for ``inputs`` (a ``ReportInputs``), or "" when there is nothing to warn about."""
    from forgeml.evaluate.importance import dominance_warning

    found = [text for text in (dominance_warning(inputs.feature_importance),) if text]
    if not found:
        return ""
    return section("warnings", "Warnings", "<ul>" + "".join(f'<li class="warn">{escape(text)}</li>' for text in found) + "</ul>")
