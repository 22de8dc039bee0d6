"""A finished study as forgeml shows it: the trials table (terminal, trials.csv, trials.json),
the best trial, parameter importance (fANOVA) and, for two objectives, the Pareto front."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from forgeml.evaluate.report_tuning import TABLE_ROWS, format_params
from forgeml.tune.storage import shown

def trial_rows(study: Any, objectives: tuple[str, ...]) -> list[dict[str, Any]]:
    """One flat row per trial: number, state, objective values, seconds, options, step reached."""
    rows = []
    for trial in study.trials:
        row: dict[str, Any] = {"trial": trial.number, "state": trial.state.name.lower()}
        for index, name in enumerate(objectives):
            row[name] = trial.values[index] if trial.values else None
        row["seconds"] = round(trial.duration.total_seconds(), 2) if trial.duration else None
        row["step"] = trial.user_attrs.get("best_step", trial.user_attrs.get("pruned_at"))
        row["worker"] = trial.user_attrs.get("worker")
        row.update({key: value for key, value in trial.params.items()})
        rows.append(row)
    return rows


def summarise(study: Any, request: Any, url: str, space: dict[str, Any]) -> dict[str, Any]:
    """Everything the table, the files and the report section need, JSON-ready."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    objectives = tuple(request.objectives)
    best = min(complete, key=lambda t: t.values[0], default=None)  # two objectives: the front's lowest loss
    pareto = sorted(t.number for t in study.best_trials) if len(objectives) > 1 and complete else []
    counts = {state: sum(1 for t in study.trials if t.state.name.lower() == state) for state in ("complete", "pruned", "fail", "running")}
    return {
        "study": study.study_name,
        "storage": shown(url),
        "family": request.family,
        "objectives": list(objectives),
        "space": sorted(space),
        "counts": counts,
        "scoring": (study.user_attrs.get("forgeml") or {}).get("scoring"),  # "5-fold out-of-fold loss over 300 rows"
        "trials": trial_rows(study, objectives),
        "best": None if best is None else {"trial": best.number, "values": list(best.values), "params": dict(best.params)},
        "importance": _importance(study, complete, len(objectives)),
        "pareto": pareto,
    }


def _importance(study: Any, complete: list[Any], n_objectives: int) -> dict[str, float] | None:
    """fANOVA importance of each option for the loss (Hutter et al. 2014), or None with too few
    trials to say (fewer than 4 finished, or no option that varied)."""
    if len(complete) < 4:
        return None
    import optuna

    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        found = optuna.importance.get_param_importances(study, evaluator=evaluator, target=(lambda t: t.values[0]) if n_objectives > 1 else None)
    except (RuntimeError, ValueError):
        return None
    return {key: round(float(value), 4) for key, value in found.items()}


def print_table(summary: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    objectives = summary["objectives"]
    counts = summary["counts"]
    done = sorted((r for r in summary["trials"] if r["state"] == "complete"), key=lambda r: r[objectives[0]])
    table = Table(title=f"study {summary['study']}: {counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed "
                        f"(best {TABLE_ROWS} by {objectives[0]})")
    for column in ("trial", *objectives, "seconds", "options"):
        table.add_column(column, justify="left" if column == "options" else "right")
    for row in done[:TABLE_ROWS]:
        options = format_params({k: v for k, v in row.items() if "." in k})
        table.add_row(str(row["trial"]), *(f"{row[o]:.4g}" for o in objectives), str(row["seconds"]), options)
    console.print(table)


def write_trials(summary: dict[str, Any], folder: Path) -> list[Path]:
    """trials.csv (one row per trial, a column per option) and tuning.json (the whole summary),
    written atomically beside the run's bundle."""
    import pandas as pd

    from forgeml.fileio import atomic_write_json, atomic_write_text

    frame = pd.DataFrame(summary["trials"])
    csv_path, json_path = folder / "trials.csv", folder / "trials.json"
    atomic_write_text(csv_path, frame.to_csv(index=False))
    atomic_write_json(json_path, _finite(summary))
    return [csv_path, json_path]


def member_entry(options: dict[str, Any], family: str) -> dict[str, Any]:
    """A trial's dotted options as a portfolio member (``model:``/``train:`` sections), the form
    ``model.members_from`` reads: the tuned model then joins the ensemble beside the preset's."""
    entry: dict[str, Any] = {"model": {"type": family}, "train": {}}
    for dotted, value in sorted(options.items()):
        section, *path = dotted.split(".")
        if section not in entry or not path:
            continue  # only model and train options describe a member
        node = entry[section]
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    if not entry["train"]:
        del entry["train"]
    return entry


def write_member(summary: dict[str, Any], family: str, fixed: dict[str, Any], folder: Path) -> Path:
    """member.yaml: the best trial (and the options every trial kept) as an ensemble member named
    ``tuned_<family>``, for ``--set model.members_from=[member.yaml]``."""
    import yaml

    from forgeml.fileio import atomic_write_text

    path = folder / "member.yaml"
    member = member_entry({**fixed, **summary["best"]["params"]}, family)
    header = (f"# trial {summary['best']['trial']} of study {summary['study']}: add it to an ensemble with\n"
              f"#   forgeml train DATA --target Y --model ensemble --set 'model.members_from=[{path}]'\n")
    atomic_write_text(path, header + yaml.safe_dump({f"tuned_{family}": member}, sort_keys=False, allow_unicode=True))
    return path


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: a failed trial's missing score is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def dashboard_view(path: Path) -> dict[str, Any] | None:
    """What the dashboard's run page shows of a tuned run (``trials.json`` beside its bundle):
    the counts, the best trials as rows, the importance as (option, share) pairs; None when the
    run was not tuned or the file does not read."""
    import json

    try:
        summary = json.loads(Path(path).read_text(encoding="utf-8"))
        objectives = summary["objectives"]
        done = sorted((r for r in summary["trials"] if r["state"] == "complete"), key=lambda r: r[objectives[0]])[:TABLE_ROWS]
        rows = [[r["trial"], *(round(r[o], 5) for o in objectives), r["seconds"], format_params({k: v for k, v in r.items() if "." in k})] for r in done]
        return {"study": summary["study"], "storage": summary["storage"], "counts": summary["counts"], "best": summary["best"]["trial"],
                "columns": ["trial", *objectives, "seconds", "options"], "rows": rows, "importance": list((summary.get("importance") or {}).items())}
    except (OSError, ValueError, KeyError, TypeError):
        return None
