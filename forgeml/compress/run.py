"""``compress_bundle``: bundle in, new bundle out, the original untouched.

Order: resolve the bundle and refuse a taken OUT (before anything is loaded), load the bundle,
let the method check the bundle and options (``check`` in its module, before any data is read),
read the bundle's training file and re-split it as training did (``data``), compress, evaluate
both models on the same held-out rows, measure both (``tradeoff``), and write the new bundle
through ``bundle.write_bundle``: a staging folder beside OUT, renamed into place only once every
file and the manifest are written. The source bundle is only ever read (through the verified
private copy ``Pipeline.load`` makes), so its files stay byte-identical.
"""
from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from forgeml.compress.errors import CompressError
from forgeml.compress.methods import METHODS, method_function

DEFAULT_SUFFIX = {"quantize": "int8", "prune": "pruned", "distill": "distilled"}


@dataclass
class CompressResult:
    path: Path
    table: dict[str, Any]


def default_output(bundle: Path, method: str) -> Path:
    """``runs/<id>/bundle`` → ``runs/<id>/bundle-int8`` (beside it, so `runs` tools still find the run)."""
    return bundle.resolve().parent / f"{bundle.resolve().name}-{DEFAULT_SUFFIX.get(method, method)}"


def derived_pipeline(source: Any, predictor: Any) -> Any:
    """A Pipeline around ``predictor`` that carries the source's data summary, cleaning and history
    (the new model was made from the same data); the metrics are filled in after evaluation."""
    from forgeml.api import Pipeline

    pipeline = Pipeline(config=predictor.config)
    pipeline.predictor_ = predictor
    for name in ("loaded_history_", "loaded_summary_", "loaded_cleaning_", "importance_", "test_split_"):
        setattr(pipeline, name, copy.deepcopy(getattr(source, name, None)))
    pipeline.loaded_metrics_ = {}
    pipeline.created_at_ = datetime.now(timezone.utc).isoformat(timespec="seconds")
    pipeline._set_classes()
    return pipeline


def compress_bundle(bundle_ref: str | Path, method: str, options: dict[str, Any], *, data: Path | None = None,
                    output: Path | None = None, runs_dir: Path | None = None, show: bool = False) -> CompressResult:
    """Compress the bundle ``bundle_ref`` (folder, run id or prefix) with ``method`` into ``output``."""
    from forgeml.api import Pipeline
    from forgeml.compress.data import data_path, prepare_data
    from forgeml.compress.tradeoff import BATCH, build_table, measure, print_table
    from forgeml.evaluate.metrics import HEADLINE
    from forgeml.runs.bundle_ref import resolve_bundle

    if method not in METHODS:
        raise CompressError(f"unknown compression method {method!r}", where="forgeml compress", hint=f"one of: {', '.join(METHODS)}")
    bundle = resolve_bundle(bundle_ref, runs_dir)
    output = Path(output) if output is not None else default_output(bundle, method)
    if output.exists():
        raise CompressError("the output folder already exists", where=str(output),
                            hint="choose another -o OUT (a compressed bundle never replaces anything)")
    if output.resolve() == bundle.resolve() or bundle.resolve() in output.resolve().parents:
        raise CompressError("the output folder is inside the source bundle", where=str(output), hint="choose -o OUT outside the bundle")
    function = method_function(method)
    source = Pipeline.load(bundle)
    check = getattr(importlib.import_module(function.__module__), "check", None)
    if check is not None:
        check(source, options)
    prepared = prepare_data(source.predictor_, data_path(source.predictor_.config, data))
    compressed = function(source, prepared, options)

    task = source.predictor_.task.name
    if prepared is not None:
        split = prepared.test_split
        frame = prepared.frames[split]
        before_eval = source.predictor_.evaluate_frame(frame, source=f"{split} split")
        after_eval = compressed.predictor_.evaluate_frame(frame, source=f"{split} split")
        arrays = prepared.arrays[split]
        compressed.evaluations_ = {split: after_eval}
        compressed.test_split_ = split
    else:
        from forgeml.export.graph import sample_arrays
        from forgeml.export.verification import full_arrays

        split, frame, before_eval, after_eval = None, None, None, None
        predictor = source.predictor_
        arrays = full_arrays(predictor, sample_arrays(predictor.featureset.input_spec(), rows=BATCH, seed=predictor.config.train.seed))
    table = build_table(method, options, measure(source, arrays, before_eval), measure(compressed, arrays, after_eval),
                        metric_name=HEADLINE.get(task, "r2"), split=split, rows=None if frame is None else len(frame),
                        source_bundle=str(bundle))
    recorded = (getattr(source, "loaded_metrics_", None) or {}).get(table["metric_name"])
    if prepared is not None and recorded is not None and table["before"]["metric"] is not None and abs(recorded - table["before"]["metric"]) > 1e-6:
        # the file or its split is not what training saw: the table still compares like with like
        table["note"] = (f"the source scores {table['before']['metric']:.4f} on these rows but recorded {recorded:.4f} at training: "
                         f"{prepared.source} has changed since, or is not the training file")
    compressed.compression_ = table
    path = compressed.save(output)
    if show:
        print_table(table, f"{method}: {bundle} → {output}")
        if table.get("note"):
            from forgeml.console import console

            console().print(f"note: {table['note']}")
    return CompressResult(path, table)
