"""The report's Warnings section: what may make the metrics above it untrustworthy, shown right
under them rather than in the notes at the end (today: one input dominating the permutation
importance, a leak smell; see ``evaluate.importance.dominance_warning``)."""
from __future__ import annotations

from typing import Any


def warnings_section(inputs: Any) -> str:
    """The section's HTML for ``inputs`` (a ``ReportInputs``), or "" when there is nothing to warn about."""
    from forgeml.evaluate.importance import dominance_warning
    from forgeml.evaluate.report import _e, _section

    found = [text for text in (dominance_warning(inputs.feature_importance),) if text]
    if not found:
        return ""
    return _section("warnings", "Warnings", "<ul>" + "".join(f'<li class="warn">{_e(text)}</li>' for text in found) + "</ul>")
