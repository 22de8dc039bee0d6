"""Explaining rows of a table with a bundle's predictor: the one path behind ``forgeml explain``,
``Pipeline.explain`` and ``POST /v1/explain``, so the three never disagree.

Rows are chosen by position (``rows``: 0-based, as in the file) or, with ``top``, every row (a
seeded sample of ``MAX_ROWS`` beyond that) is explained for the global importance and the ``top``
rows with the most attribution in total are detailed. Each row explains its predicted class (its
first target, for regression). The answer is plain JSON (``explanations.json``'s shape).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from forgeml.errors import ConfigError, DataError
from forgeml.explain.base import Attribution, Context

FORMAT = "forgeml-explanations"
DEFAULT_TOP = 10
MAX_ROWS = 200  # rows explained for the global importance (a seeded sample of a larger file)
TOP_SECONDS = 60.0  # --top stops explaining more rows after this long (once the detailed rows are done)
CHUNK = 16  # rows per explain call under that allowance
SALIENCY_GRID = 16  # a saliency map in the JSON: this many cells a side (the page draws the full map)
BASELINE = ("numbers at their training mean (0 once scaled), categories at <other>, yes/no flags halfway, text empty "
            "(padding tokens), images of the training mean colour; tree models: the trees' expected value")


def parse_rows(text: str | None) -> list[int] | None:
    """``--rows 0,5,9`` (ranges ``10-12`` too) → positions; a one-line error for anything else."""
    if text is None:
        return None
    rows: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        low, dash, high = item.partition("-")
        if not (low.isdigit() and (not dash or high.isdigit())):
            raise ConfigError(f"--rows takes row numbers like 0,5,9 or 10-12, not {item!r}", where="--rows",
                              hint="rows are counted from 0, in file order")
        if dash and int(high) < int(low):
            raise ConfigError(f"the range {item} runs backwards", where="--rows", hint=f"write it {high}-{low}")
        rows.extend(range(int(low), int(high) + 1) if dash else [int(low)])
    if not rows:
        raise ConfigError("--rows names no row", where="--rows", hint="give row numbers like 0,5,9")
    return list(dict.fromkeys(rows))


def choose_rows(count: int, rows: Sequence[int] | None, top: int | None, *, where: str) -> tuple[np.ndarray, int]:
    """(positions to explain, how many to detail)."""
    if count == 0:
        raise DataError("no rows to explain", where=where, hint="give at least one row")
    if rows is not None:
        outside = [r for r in rows if not 0 <= r < count]
        if outside:
            raise DataError(f"row {outside[0]} is out of range: the data has {count} row(s), numbered 0 to {count - 1}", where=where,
                            hint="--rows counts data rows from 0, in file order, without the header")
        return np.asarray(rows, dtype=np.int64), len(rows)
    top = DEFAULT_TOP if top is None else top
    if top < 1:
        raise ConfigError(f"--top must be at least 1, not {top}", where="--top", hint="e.g. --top 10")
    positions = np.arange(count)
    if count > MAX_ROWS:
        positions = np.sort(np.random.default_rng(0).choice(count, MAX_ROWS, replace=False))
    return positions, min(top, len(positions))


def explain_frame(predictor: Any, frame: Any, *, rows: Sequence[int] | None = None, top: int | None = None,
                  source: str = "data", n_steps: int = 50, keep_arrays: bool = False) -> dict[str, Any]:
    """The explanations of ``frame``'s rows as JSON-ready data (see the module docstring)."""
    from forgeml.explain.methods import method_for

    family = predictor.config.model.type
    method_for(family)  # no method for this family: say so before any work
    predictor.featureset.check_columns(frame, source=source)
    positions, detailed = choose_rows(len(frame), rows, top, where=source)
    chosen = frame.iloc[positions].reset_index(drop=True)
    arrays = predictor.featureset.transform(chosen, strict=True, source=source)
    scores = predictor._decode_scores(predictor.estimator.scores(arrays))
    task = predictor.task
    classes = scores.argmax(axis=1) if task.is_classification else np.zeros(len(chosen), dtype=np.int64)
    from forgeml.features.text import TEXT_KEY

    texts = {key[len(TEXT_KEY):]: value for key, value in arrays.items() if key.startswith(TEXT_KEY)}
    ctx = Context(predictor.featureset, task, predictor.config, classes, n_steps=n_steps, texts=texts)
    attribution = explain_in_time(predictor.estimator, family, ctx, arrays, None if rows is not None else TOP_SECONDS, detailed)
    done = len(attribution.values)
    if done < len(chosen):  # --top's allowance ended: the rows explained so far
        positions, scores, arrays, ctx = positions[:done], scores[:done], _head(arrays, done), _head_context(ctx, done)
    order = np.arange(done) if rows is not None else np.argsort(-np.abs(attribution.values).sum(axis=1), kind="stable")[:detailed]
    answer = {
        "format": FORMAT, "version": 1, "model": family, "task": task.name, "method": attribution.method,
        "output": ctx.unit(), "baseline": BASELINE, "data": source, "rows_explained": int(done),
        "importance": importance(ctx.names, attribution.values),
        "completeness_gap": round(float(attribution.gap(ctx.negligible()).max()), 6) if len(chosen) else 0.0,
        "rows": [row_answer(predictor, ctx, attribution, scores, int(positions[i]), int(i)) for i in order],
    }
    if keep_arrays:  # the page draws images from them; ``page_extras`` takes them out before the JSON is written
        answer["_images"] = {key: value[order] for key, value in arrays.items() if key.startswith("images.")}
        answer["_saliency"] = {name: [maps[i] for i in order] for name, maps in attribution.images.items()}
    return answer


def explain_in_time(estimator: Any, family: str, ctx: Context, arrays: dict[str, np.ndarray], seconds: float | None,
                    least: int) -> Attribution:
    """The rows' attributions, ``CHUNK`` rows at a time, stopping once ``seconds`` have passed and
    at least ``least`` rows are done (None: every row). A large network reading text takes
    seconds a row: ``--top`` then explains the rows it has time for, not all 200."""
    from forgeml.explain.base import concatenate
    from forgeml.explain.methods import explain_estimator

    rows = len(ctx.classes)
    if seconds is None or rows <= CHUNK:
        return explain_estimator(estimator, family, ctx, arrays)
    parts, started = [], time.perf_counter()
    for start in range(0, rows, CHUNK):
        stop = min(rows, start + CHUNK)
        parts.append(explain_estimator(estimator, family, _head_context(ctx, stop, start), _head(arrays, stop, start)))
        if time.perf_counter() - started > seconds and stop >= least:
            break
    return concatenate(parts)


def _head(arrays: dict[str, np.ndarray], stop: int, start: int = 0) -> dict[str, np.ndarray]:
    return {key: value[start:stop] for key, value in arrays.items()}


def _head_context(ctx: Context, stop: int, start: int = 0) -> Context:
    from dataclasses import replace

    return replace(ctx, classes=ctx.classes[start:stop], texts=_head(ctx.texts, stop, start))


def page_extras(answer: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    """Removes and returns what ``keep_arrays`` added (the detailed rows' pixels and full saliency maps)."""
    return answer.pop("_images", {}), answer.pop("_saliency", {})


def importance(names: list[str], values: np.ndarray) -> list[dict[str, Any]]:
    """Global importance: the mean |attribution| of each feature over the explained rows, largest first."""
    mean = np.abs(values).mean(axis=0) if len(values) else np.zeros(len(names))
    return [{"feature": names[j], "mean_abs": round(float(mean[j]), 6)} for j in np.argsort(-mean, kind="stable")]


def row_answer(predictor: Any, ctx: Context, attribution: Attribution, scores: np.ndarray, position: int, i: int) -> dict[str, Any]:
    from forgeml.explain.text_spans import display_tokens

    task = predictor.task
    if task.is_classification:
        names = predictor.class_names
        prediction: Any = names[int(ctx.classes[i])]
        explained = prediction
    else:
        prediction = round(float(scores[i, 0]), 6)
        explained = predictor.config.target[0]
    values = attribution.values[i]
    contributions = {ctx.names[j]: round(float(values[j]), 6) for j in np.argsort(-np.abs(values), kind="stable")}
    out: dict[str, Any] = {"row": position, "prediction": prediction, "explained": explained,
                           "base": round(float(attribution.base[i]), 6), "output": round(float(attribution.output[i]), 6),
                           "contributions": contributions}
    if attribution.text:
        out["tokens"] = {name: [[token, round(score, 6)] for token, score in display_tokens(str(ctx.texts[name][i]), per_row[i])]
                         for name, per_row in attribution.text.items()}
    if attribution.images:
        out["saliency"] = {name: coarse(maps[i]) for name, maps in attribution.images.items()}
    return out


def coarse(saliency: np.ndarray) -> list[list[float]]:
    """A saliency map summed into a SALIENCY_GRID × SALIENCY_GRID grid (the JSON's size stays small)."""
    size = saliency.shape[0]
    cells = min(SALIENCY_GRID, size)
    edges = np.linspace(0, size, cells + 1).astype(int)
    return [[round(float(saliency[edges[a]:edges[a + 1], edges[b]:edges[b + 1]].sum()), 6) for b in range(cells)] for a in range(cells)]


def explain_data(predictor: Any, data: Any, *, rows: Sequence[int] | int | None = None, top: int | None = None,
                 as_dict: bool = False) -> Any:
    """``Pipeline.explain``: ``data`` a path, a DataFrame (never modified) or records (dicts)."""
    import pandas as pd

    from forgeml.data.load import describe_source
    from forgeml.predict import is_records, records_frame

    if isinstance(rows, (int, np.integer)):
        rows = [int(rows)]
    if is_records(data):
        frame, source = records_frame(data), "records"
    else:
        frame, source = predictor.read(data), describe_source(data)
    answer = explain_frame(predictor, frame, rows=rows, top=top, source=source)
    if as_dict:
        return answer
    table = pd.DataFrame([{**row["contributions"], "(base)": row["base"], "(output)": row["output"]} for row in answer["rows"]],
                         index=pd.Index([row["row"] for row in answer["rows"]], name="row"))
    table = table[[*[name for name in predictor.featureset.input_names], "(base)", "(output)"]]
    table.attrs.update({key: answer[key] for key in ("method", "output", "baseline", "importance")})
    return table
