"""The report's Tuning section for a run refitted from ``forgeml tune``: the study's counts, the
best trials, the trial history, each option's importance and, for two objectives, the Pareto front.
Drawn from the summary dict (``tune.results.summarise``), so the bundle's report needs no Optuna.
It lives with the report, not in ``tune/``, because the report (evaluate) sits below tune in the
layers: tune writes the summary, the report only reads it."""
from __future__ import annotations

from typing import Any

from forgeml.evaluate.report_html import escape, figure, section, table
from forgeml.evaluate.plots import _png

TABLE_ROWS = 10  # the terminal and the report show the best trials; trials.csv has them all


def format_params(params: dict[str, Any]) -> str:
    """``num_leaves=63 learning_rate=0.0412``: short names, 3 significant digits."""
    def value(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return " ".join(f"{key.rpartition('.')[2] if key.count('.') == 1 else key.partition('.')[2]}={value(v)}" for key, v in params.items())


def tuning_section(inputs: Any) -> str:
    """The section's HTML for ``inputs`` (a ``ReportInputs``), or "" for a run that was not tuned."""
    tuning = getattr(inputs, "tuning", None)
    if not tuning:
        return ""
    objectives, counts, best = tuning["objectives"], tuning["counts"], tuning["best"]
    lines = [f"study {tuning['study']} ({tuning['storage']}): {counts['complete']} trials complete, {counts['pruned']} pruned, "
             f"{counts['fail']} failed; this model is trial {best['trial']}'s options ({format_params(best['params'])}), refitted on the same split. "
             f"Each trial was scored by its {tuning.get('scoring') or 'loss on the validation split'} (each fit early-stopped on the rows it was scored on); "
             "the refit bags k models when the config does (train.bagging_folds)."]
    if len(objectives) > 1:
        lines.append(f"Two objectives ({', '.join(objectives)}): the refitted trial is the Pareto front's lowest {objectives[0]}.")
    done = sorted((r for r in tuning["trials"] if r["state"] == "complete"), key=lambda r: r[objectives[0]])[:TABLE_ROWS]
    rows = [[r["trial"], *(f"{r[o]:.4g}" for o in objectives), r["seconds"], format_params({k: v for k, v in r.items() if "." in k})] for r in done]
    figures = [figure("Trial history", lambda: history_plot(tuning))]
    if tuning.get("importance"):
        figures.append(figure("Option importance (fANOVA)", lambda: importance_plot(tuning["importance"])))
    if len(objectives) > 1:
        figures.append(figure("Pareto front", lambda: pareto_plot(tuning)))
    body = "".join(f"<p>{escape(line)}</p>" for line in lines) + table(["trial", *objectives, "seconds", "options"], rows, numeric_from=1)
    return section("tuning", "Tuning", body + '<div class="plots">' + "".join(figures) + "</div>")


def history_plot(tuning: dict[str, Any]) -> bytes:
    """Each finished trial's loss by trial number, and the best so far as a step line."""
    from matplotlib.figure import Figure


    name = tuning["objectives"][0]
    done = [(r["trial"], r[name]) for r in tuning["trials"] if r["state"] == "complete"]
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    if done:
        numbers, values = zip(*done)
        ax.scatter(numbers, values, s=18, label="complete")
        best, running = [], float("inf")
        for value in values:
            running = min(running, value)
            best.append(running)
        ax.step(numbers, best, where="post", color="C3", label="best so far")
    pruned = [r["trial"] for r in tuning["trials"] if r["state"] == "pruned"]
    if pruned and done:
        ax.scatter(pruned, [max(v for _, v in done)] * len(pruned), marker="x", color="grey", label="pruned")
    ax.set_yscale(_scale([v for _, v in done]))  # one diverged trial must not flatten the others
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {name}")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return _png(fig)


def importance_plot(importance: dict[str, float]) -> bytes:
    from matplotlib.figure import Figure


    names = list(importance)[::-1]
    fig = Figure(figsize=(6, 0.4 * len(names) + 1.2))
    ax = fig.add_subplot()
    ax.barh(names, [importance[n] for n in names])
    ax.set_xlabel("share of the loss's variance explained")
    fig.tight_layout()
    return _png(fig)


def pareto_plot(tuning: dict[str, Any]) -> bytes:
    """Every complete trial in the plane of the two objectives; the front highlighted."""
    from matplotlib.figure import Figure


    first, second = tuning["objectives"]
    done = [r for r in tuning["trials"] if r["state"] == "complete"]
    front = [r for r in done if r["trial"] in set(tuning["pareto"])]
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    ax.scatter([r[second] for r in done], [r[first] for r in done], s=16, color="lightgrey", label="trials")
    front.sort(key=lambda r: r[second])
    ax.plot([r[second] for r in front], [r[first] for r in front], "o-", color="C3", label="Pareto front")
    ax.set_xscale(_scale([r[second] for r in done]))  # parameter counts span decades, latencies seldom
    ax.set_yscale(_scale([r[first] for r in done]))
    ax.set_xlabel({"latency": "predict ms per row (one row)", "params": "parameters"}.get(second, second))
    ax.set_ylabel(f"validation {first}")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return _png(fig)


def _scale(values: list[float]) -> str:
    """Log when positive values span more than a decade, else linear (log ticks on a narrow
    range print unreadable labels)."""
    positive = [v for v in values if v is not None and v > 0]
    return "log" if positive and len(positive) == len(values) and max(positive) / min(positive) > 10 else "linear"
