"""The report's Compression section: the before/after table of a compressed bundle (from its
compression.json), so the page says what the model gave up to become smaller or faster."""
from __future__ import annotations

from typing import Any


METHOD_WORDS = {"quantize": "the int8-quantised copy of", "prune": "a pruned, fine-tuned copy of", "distill": "a student distilled from"}


def compression_section(inputs: Any) -> str:
    """The section's HTML for ``inputs`` (a ``ReportInputs``), or "" for a bundle not compressed."""
    from forgeml.compress.tradeoff import table_rows
    from forgeml.evaluate.report_html import escape as _e, section as _section, table as _table

    table = getattr(inputs, "compression", None)
    if not table:
        return ""
    options = ", ".join(f"{k}={v}" for k, v in (table.get("options") or {}).items())
    made = METHOD_WORDS.get(table["method"], f"made by {table['method']} from")
    lead = (f"<p>This bundle is {_e(made)} <b>{_e(table.get('source_bundle', 'another bundle'))}</b>{_e(' (' + options + ')' if options else '')}. "
            f"Latency: {_e(table.get('latency', ''))}.</p>")
    if table.get("note"):
        lead += f"<p>Note: {_e(table['note'])}</p>"
    rows = [list(row) for row in table_rows(table)]
    return _section("compression", "Compression", lead + _table(["", "before", "after", "change"], rows, numeric_from=1))
