"""The report's Leaderboard section: an ensemble's members, how each scored on its out-of-fold
predictions, its cost and weight, which ensemble level won, and where the portfolio came from."""
from __future__ import annotations

from typing import Any

from forgeml.evaluate.report_html import format_value, muted, section, table

COLUMNS = ("member", "family", "status", "score", "val_loss", "weight", "fit_seconds", "predict_ms_per_row", "refit", "note")
TEXT_COLUMNS = ("member", "family", "status", "refit", "note")


def leaderboard_section(inputs: Any) -> str:
    """The section's HTML for ``inputs`` (a ``ReportInputs``), or "" for a single model."""
    board = inputs.leaderboard
    if not board:
        return ""
    score_name = next((row.get("score_name") for row in board if row.get("score_name")), "score")
    header = [score_name if c == "score" else c.replace("_", " ") for c in COLUMNS]
    rows = [[str(row.get(c, "")) if c in TEXT_COLUMNS else format_value(row.get(c)) for c in COLUMNS] for row in board]
    level = next((row["level"] for row in board if row.get("member") == "ensemble" and row.get("level")), None)
    note = ("Scores and losses are on out-of-fold predictions of the training rows (each row predicted by the fold model that "
            "did not see it); weights come from greedy ensemble selection on them. The test split was not used. "
            "The members and their order are forgeml/models/portfolio.yaml's: AutoGluon's default order (cheap, strong "
            "trees first, networks last), checked side by side with AutoGluon and LightGBM by bench/automl_vs_autogluon.py.")
    if any(str(row.get("refit") or "").startswith("all ") for row in board):
        note += (" Members with a refit entry predict with one model fitted afterwards on all training rows (their folds' mean "
                 "rounds): their scores and weights are their fold models', the test metrics the refit models'.")
    if level:
        note += f" Ensemble: {level}."
    return section("leaderboard", "Leaderboard", muted(note) + table(header, rows, numeric_from=3))
