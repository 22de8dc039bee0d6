"""How a Pipeline describes itself: its ``repr`` and notebook HTML (task, model, held-out
metrics), the one-line model description the report uses, and the bundle's model card.

Kept apart from ``forgeml.api`` so the estimator there stays about fitting and predicting.
"""
from __future__ import annotations

import html
from typing import Any

# Metrics a repr line shows, at most; the HTML table shows every one the report would.
REPR_METRICS = 4


def pipeline_repr(pipeline: Any) -> str:
    """``Pipeline(target='species')`` with the arguments that differ from the defaults (as
    scikit-learn prints estimators), and once fitted a line each for task, model and metrics."""
    lines = [_call(pipeline)]
    predictor = getattr(pipeline, "predictor_", None)
    if predictor is not None:
        lines.append(f"  task: {_task_words(predictor)}")
        lines.append(f"  model: {describe_model(predictor)}")
        metrics = pipeline.metrics_
        rows = _metric_rows(metrics, predictor.task.name)[:REPR_METRICS]
        if rows:
            lines.append(f"  held-out ({_where(pipeline, metrics)}): " + ", ".join(f"{name} {value}" for name, value in rows))
    return "\n".join(lines)


def pipeline_html(pipeline: Any) -> str:
    """A small table for Jupyter: the call, then task, model and every held-out metric."""
    e = html.escape
    predictor = getattr(pipeline, "predictor_", None)
    rows = [("pipeline", f"<code>{e(_call(pipeline))}</code>")]
    if predictor is None:
        rows.append(("state", "not fitted: call <code>fit(data)</code> or <code>Pipeline.load(bundle)</code>"))
    else:
        metrics = pipeline.metrics_
        rows += [("task", e(_task_words(predictor))), ("model", e(describe_model(predictor)))]
        table = _metric_rows(metrics, predictor.task.name)
        if table:
            cells = "".join(f"<tr><td>{e(name)}</td><td style='text-align:right'>{e(value)}</td></tr>" for name, value in table)
            rows.append((f"held-out metrics<br><small>{e(_where(pipeline, metrics))}</small>", f"<table>{cells}</table>"))
    body = "".join(f"<tr><th style='text-align:left;vertical-align:top'>{name}</th><td style='text-align:left'>{value}</td></tr>" for name, value in rows)
    return f"<div class='forgeml-pipeline'><table>{body}</table></div>"


def _call(pipeline: Any) -> str:
    import inspect

    defaults = {name: p.default for name, p in inspect.signature(type(pipeline).__init__).parameters.items() if name != "self"}
    parts = []
    for name, value in pipeline.get_params(deep=False).items():
        if value is defaults.get(name) or (not hasattr(value, "model_dump") and value == defaults.get(name)):
            continue
        parts.append(f"{name}={_short_config(value) if hasattr(value, 'model_dump') else repr(value)}")
    return f"{type(pipeline).__name__}({', '.join(parts)})"


def _short_config(config: Any) -> str:
    """A Config in one line: its target, task and model (the whole YAML is ``config.to_yaml()``)."""
    return f"Config(target={list(config.target)!r}, task={config.task!r}, model={config.model.type!r})"


def _task_words(predictor: Any) -> str:
    task, targets = predictor.task, ", ".join(repr(t) for t in predictor.config.target)
    if task.is_classification:
        classes = predictor.class_names or []
        shown = ", ".join(classes[:6]) + (f", … ({len(classes)} in all)" if len(classes) > 6 else "")
        return f"{task.name} classification of {targets} ({shown})"
    return f"{task.name} of {targets}"


def _where(pipeline: Any, metrics: dict[str, Any]) -> str:
    split = getattr(pipeline, "test_split_", "test")
    rows = metrics.get("n")
    return f"{split} split" + (f", {rows} rows" if isinstance(rows, int) else "")


def _metric_rows(metrics: dict[str, Any], task: str) -> list[tuple[str, str]]:
    from forgeml.evaluate.report import metrics_table_rows

    return [(name, value) for name, value in metrics_table_rows(metrics, task) if name != "n"]


def describe_model(predictor: Any) -> str:
    """One line for the report, the model card and ``repr``: the network's shape (or LightGBM's
    settings), its encoders, the bag, and which inputs feed it."""
    cfg = predictor.config.model
    kinds: dict[str, int] = {}
    for feature in predictor.featureset.features:
        kinds[feature.type_name] = kinds.get(feature.type_name, 0) + 1
    from forgeml.models.families import family_module

    shape = family_module(cfg.type).describe(cfg, kinds)
    inputs = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    members = getattr(predictor.estimator, "members", None)
    if hasattr(predictor.estimator, "model") or members:
        from forgeml.models.linear_skip import LinearSkip

        first = members[0] if members else predictor.estimator
        if isinstance(getattr(first, "model", None), LinearSkip):
            shape += " beside a ridge-started linear path"
    if members:
        shape = f"bag of {len(members)} × {shape}"
    if getattr(predictor.estimator, "quantized", False):  # forgeml compress --quantize int8
        shape += ", int8 weights (ONNX Runtime dynamic quantisation)"
    return f"{shape}; inputs: {inputs}; loss: {predictor.task.loss}"


def privacy_spent(pipeline: Any) -> dict[str, Any] | None:
    """The (ε, δ) a private run spent (``forgeml.train.privacy``): from its fit, or from the
    loaded bundle's metrics.json; None for a run without ``train.privacy``."""
    summary = getattr(pipeline, "fit_summary_", None)
    return getattr(summary, "privacy", None) if summary is not None else getattr(pipeline, "loaded_privacy_", None)


def model_card(pipeline: Any) -> str:
    """The bundle's model_card.md: task, model, inputs, held-out metrics and the limits of use."""
    from forgeml.evaluate.report import metrics_table_rows
    from forgeml.train.privacy import describe_spent

    predictor = pipeline.predictor_
    config = predictor.config
    rows = metrics_table_rows(pipeline.metrics_, predictor.task.name)
    lines = [
        f"# Model card — {' '.join(', '.join(config.target).split())}",
        "",
        f"- **Task**: {predictor.task.name} ({predictor.task.loss} loss)",
        f"- **Model**: {describe_model(predictor)}",
        f"- **Created**: {getattr(pipeline, 'created_at_', '')}",
        f"- **Training data**: {getattr(getattr(pipeline, 'prepared_', None), 'source', 'unknown')}",
        *distilled_lines(pipeline),
        *([f"- **Privacy**: {privacy}"] if (privacy := describe_spent(privacy_spent(pipeline))) else []),
        "",
        "## Inputs",
        "",
        "| column | type | note |",
        "| --- | --- | --- |",
        *[f"| {_cell(f.name)} | {_cell(f.type)} | {_cell(f.note or '')} |" for f in config.features],
        "",
        "## Held-out metrics",
        "",
        "| metric | value |",
        "| --- | --- |",
        *[f"| {_cell(name)} | {_cell(value)} |" for name, value in rows],
        "",
        "## Intended use and limits",
        "",
        "Predicts from rows shaped like the training data. Categories not seen in training are",
        "treated as '<other>'; numbers far outside the training range are clipped to the limits",
        "learned on the train split. Check the report's data section for what was dropped or filled.",
        "",
    ]
    return "\n".join(lines)


def distilled_lines(pipeline: Any) -> list[str]:
    """The model card's word on a distilled model's teacher (``forgeml compress --distill``): a
    student answers like its teacher, so who taught it is part of what it is."""
    how = getattr(pipeline, "distillation_", None)
    if not how:
        return []
    teacher = how.get("teacher") or {}
    bundle = teacher.get("bundle") or (getattr(pipeline, "compression_", None) or {}).get("source_bundle") or "a bundle"
    return [f"- **Distilled from**: {bundle} ({teacher.get('description', teacher.get('model', '?'))}), on its soft predictions "
            f"at temperature {how.get('temperature')} over {how.get('transfer_rows', {}).get('training', '?')} training rows and "
            f"{how.get('transfer_rows', {}).get('augmented', '?')} augmented rows"]


def _cell(value: object) -> str:
    """Text for one markdown table cell: a ``|`` in a column name or category value ("A|B")
    would end the cell and shift the row, a newline would end the table."""
    return " ".join(str(value).split()).replace("\\", "\\\\").replace("|", "\\|")
