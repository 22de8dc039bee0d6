"""Preprocessing: forgeml's load + clean + transform vs pandas.read_csv + scikit-learn.

Data: a seeded CSV of N rows (default 1,000,000) × 30 columns written to bench/out/ (git-ignored):
14 decimal columns and 6 integer columns (a few % missing each), 8 string categories (3 to 1000
distinct values, some missing), one yes/no column, and a 3-class target ``y``.

OURS: ``forgeml.workflow.prepare`` — exactly what ``Pipeline.fit`` runs before training: load
(sniff encoding/delimiter, pyarrow), infer feature types and the task, data summary, text
repair, de-duplication, drop rows missing the target, stratified 70/15/15 split, fit features on
train (median fill, IQR clipping, z-scores, category vocabularies), transform all three splits.

BASELINE: ``pandas.read_csv`` (defaults), stratified 70/15/15 split (``train_test_split``), a
``ColumnTransformer`` — SimpleImputer(median) + StandardScaler for numbers, SimpleImputer(constant)
+ OrdinalEncoder for categories and the yes/no column — fitted on train, applied to all three
splits, and a LabelEncoder for the target.

Each side runs in its own fresh subprocess (so imports and memory do not leak between them);
runs alternate and the median time is compared (target: ours ≤ 1.2 × baseline). Peak memory
is each subprocess's peak RSS (VmHWM / ru_maxrss), compared with the DataFrame's in-memory size
``df.memory_usage(deep=True).sum()`` of the CSV as pandas.read_csv loads it (target ≤ 3×). It
is shown both absolute and above the process's RSS right after its imports (the peak is reset
then through /proc/self/clear_refs where the kernel allows it).

    .venv/bin/python bench/preprocessing.py              # 1M rows, 2 runs each (~2-3 min alone)
    .venv/bin/python bench/preprocessing.py --quick      # 100k rows, 2 runs each
    .venv/bin/python bench/preprocessing.py --rows 300000 --repeats 3 --stages --profile
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import OUT_DIR, ForeignLoad, machine_line, median, thread_env, verdict  # noqa: E402

TIME_TARGET = 1.2
MEMORY_TARGET = 3.0
N_FLOAT, N_INT, CATEGORY_SIZES = 14, 6, (3, 5, 10, 20, 50, 100, 300, 1000)
TARGET = "y"


# ----------------------------------------------------------------------------- data
def csv_path(rows: int, seed: int) -> Path:
    return OUT_DIR / f"preprocessing_{rows}_s{seed}.csv"


def write_csv(rows: int, seed: int) -> Path:
    """The bench CSV, generated once per (rows, seed) and reused."""
    import numpy as np
    import pandas as pd

    path = csv_path(rows, seed)
    if path.is_file():
        return path
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    signal = np.zeros(rows)
    for i in range(N_FLOAT):
        scale = 10.0 ** rng.integers(-2, 4)
        values = rng.normal(rng.normal() * scale, scale, rows)
        if i % 4 == 0:
            values = np.exp(rng.normal(0, 1, rows)) * scale  # skewed, with outliers
        signal += (values - values.mean()) / values.std() * rng.normal()
        values = np.round(values, 3)
        values[rng.random(rows) < 0.02 + 0.01 * (i % 5)] = np.nan
        columns[f"num_{i:02d}"] = values
    for i in range(N_INT):
        high = (10, 100, 1000, 10_000, 100_000, 1_000_000)[i]
        values = rng.integers(0, high, rows).astype("float64")
        signal += (values / high - 0.5) * rng.normal()
        if i % 2:
            values[rng.random(rows) < 0.03] = np.nan  # written as empty cells
        columns[f"int_{i}"] = pd.array(values, dtype="Int64") if i % 2 else values.astype("int64")
    for i, size in enumerate(CATEGORY_SIZES):
        weights = rng.zipf(1.5, size).astype("float64")
        codes = rng.choice(size, rows, p=weights / weights.sum())
        labels = np.array([f"c{i}_{'abcdefghij'[j % 10]}{j}" for j in range(size)], dtype=object)
        effect = rng.normal(size=size)
        signal += effect[codes]
        values = labels[codes]
        values[rng.random(rows) < 0.04] = None
        columns[f"cat_{i}"] = values
    flag = rng.random(rows) < 0.3
    signal += flag * 0.8
    columns["flag"] = np.where(flag, "yes", "no")
    noisy = signal + rng.normal(0, signal.std(), rows)
    columns[TARGET] = np.select([noisy < np.quantile(noisy, 0.3), noisy < np.quantile(noisy, 0.7)], ["low", "mid"], "high")
    frame = pd.DataFrame(columns)
    assert frame.shape[1] == 30, frame.shape
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


# ----------------------------------------------------------------------------- children
def _rss_now_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset the peak RSS counter (VmHWM) to the current RSS (Linux ≥ 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def work(side: str, path: Path) -> tuple[dict, dict]:
    """One side's load + clean + transform of the CSV at ``path``."""
    if side == "ours":
        from forgeml.config import Config
        from forgeml.workflow import prepare
    else:
        import numpy as np
        import pandas as pd
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import LabelEncoder, OrdinalEncoder, StandardScaler
    if side == "ours":
        config = Config(target=TARGET)
        prepared = prepare(config, str(path))
        shapes = {name: {k: list(v.shape) for k, v in arrays.items()} for name, arrays in prepared.arrays.items()}
        extra = {"features": {f.name: f.type for f in prepared.config.features}, "dropped": prepared.config.data.drop_reasons,
                 "messages": prepared.cleaning.messages[:5] if hasattr(prepared.cleaning, "messages") else []}
    else:
        df = pd.read_csv(path)
        y = df.pop(TARGET)
        numbers = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
        categories = [c for c in df.columns if c not in numbers]
        x_train, x_rest, y_train, y_rest = train_test_split(df, y, train_size=0.70, stratify=y, random_state=0)
        x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=0)
        transformer = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="<missing>"),
                                  OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.int64)), categories),
        ])
        labels = LabelEncoder().fit(y_train)
        arrays = {"train": transformer.fit_transform(x_train)}
        arrays.update(validation=transformer.transform(x_val), test=transformer.transform(x_test))
        encoded = {"train": labels.transform(y_train), "validation": labels.transform(y_val), "test": labels.transform(y_test)}
        shapes = {name: {"X": list(value.shape), "y": list(encoded[name].shape)} for name, value in arrays.items()}
        extra = {"numbers": len(numbers), "categories": len(categories)}
    return shapes, extra


def instrument_stages() -> list[tuple[str, float, int]]:
    """Wrap the steps ``prepare`` calls with timers (seconds, peak RSS during) — for ``--stages``."""
    import functools

    import forgeml.data.clean as clean
    import forgeml.data.split as split
    import forgeml.evaluate.summary as summary
    import forgeml.workflow as workflow
    from forgeml.features.featureset import FeatureSet
    from forgeml.features.target import ClassTarget

    log: list[tuple[str, float, int]] = []

    def timed(owner, attribute, label):
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def wrapper(*a, **k):
            _reset_peak()
            started = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                log.append((label, time.perf_counter() - started, _hwm_kib()))

        setattr(owner, attribute, wrapper)

    timed(workflow, "load_frame", "load (load_table)")
    timed(workflow, "resolve_config", "infer types + task (resolve_config)")
    timed(summary, "summarize_data", "data summary (summarize_data)")
    timed(clean, "repair_text_columns", "text repair (repair_text_columns)")
    timed(clean, "drop_duplicates", "de-duplicate (drop_duplicates)")
    timed(clean, "drop_missing_target", "drop missing target")
    timed(split, "split_frame", "split (split_frame)")
    timed(FeatureSet, "fit", "fit features (FeatureSet.fit)")
    timed(FeatureSet, "transform", "transform (FeatureSet.transform)")
    timed(ClassTarget, "encode", "encode target")
    return log


def child(side: str, path: Path, profile: bool, stages: bool = False) -> None:
    import resource

    started_imports = time.perf_counter()
    if side == "ours":
        import forgeml.workflow  # noqa: F401
    else:
        import sklearn.compose  # noqa: F401
    # Warm-up on the first rows: loads lazily imported modules (pyarrow, scipy, ...) and pays
    # first-call costs, so the timed run and its memory measure the work on the data alone.
    warm = path.with_name(path.stem + ".head.csv")
    if not warm.is_file():
        with path.open() as src, warm.open("w") as dst:
            dst.writelines(line for _, line in zip(range(2001), src))
    work(side, warm)
    import_seconds = time.perf_counter() - started_imports
    import gc

    gc.collect()
    rss_after_imports = _rss_now_kib()
    reset = _reset_peak()

    log = instrument_stages() if stages and side == "ours" else None
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    shapes, extra = work(side, path)
    seconds = time.perf_counter() - started
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(30)
        print(stream.getvalue(), file=sys.stderr)
    if log is not None:
        merged: dict[str, list[float]] = {}
        for label, spent, rss in log:
            merged.setdefault(label, [0.0, 0, 0])
            merged[label][0] += spent
            merged[label][1] += 1
            merged[label][2] = max(merged[label][2], rss)
        print(f"--- ours, stage by stage ({seconds:.2f} s total) ---", file=sys.stderr)
        for label, (spent, calls, rss) in merged.items():
            print(f"  {label:<40} {spent:7.2f} s  {spent / seconds:6.1%}  ({calls} call{'s' if calls > 1 else ''}; peak RSS during {rss / 1024:.0f} MiB)", file=sys.stderr)
        print(f"  {'(other)':<40} {seconds - sum(v[0] for v in merged.values()):7.2f} s", file=sys.stderr)
    peak_kib = _hwm_kib()
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "side": side, "seconds": seconds, "import_seconds": import_seconds, "rss_after_imports_kib": rss_after_imports,
        "peak_kib": peak_kib if reset else maxrss_kib, "maxrss_kib": maxrss_kib, "peak_reset": reset, "shapes": shapes, "extra": extra,
    }
    print("RESULT " + json.dumps(result))


def frame_size(path: Path) -> dict:
    """In-memory size of the CSV as pandas.read_csv loads it (measured in a subprocess)."""
    code = (
        "import json, sys, pandas as pd; df = pd.read_csv(sys.argv[1]); "
        "print(json.dumps({'bytes': int(df.memory_usage(deep=True).sum()), 'shape': list(df.shape), "
        "'dtypes': sorted({str(t) for t in df.dtypes})}))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_child(side: str, path: Path, threads: int, profile: bool = False, stages: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", side, "--path", str(path)] + (["--profile"] if profile else []) + (["--stages"] if stages else [])
    proc = subprocess.run(command, capture_output=True, text=True, env=thread_env(threads), cwd=str(Path(__file__).resolve().parents[1]))
    if proc.returncode != 0:
        raise RuntimeError(f"{side} child failed:\n{proc.stderr[-4000:]}")
    if profile or stages:
        print("\n" + "\n".join(proc.stderr.splitlines()[:70]))
    line = [row for row in proc.stdout.splitlines() if row.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each side (alternating)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="OMP/MKL/OpenBLAS threads for both sides")
    parser.add_argument("--quick", action="store_true", help="100k rows")
    parser.add_argument("--profile", action="store_true", help="also run each side once under cProfile")
    parser.add_argument("--stages", action="store_true", help="also run ours once with per-stage timings")
    parser.add_argument("--child", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.path, args.profile, args.stages)
        return 0
    if args.quick:
        args.rows = min(args.rows, 100_000)

    print(f"preprocessing: {args.rows:,} rows × 30 columns, {args.repeats} runs each (alternating), threads={args.threads}")
    print(f"machine: {machine_line()}")
    started = time.perf_counter()
    path = write_csv(args.rows, args.seed)
    print(f"data: {path.relative_to(Path(__file__).resolve().parents[1])} ({path.stat().st_size / 2**20:.0f} MiB on disk; ready in {time.perf_counter() - started:.1f} s)")
    size = frame_size(path)
    frame_mib = size["bytes"] / 2**20
    print(f"DataFrame in memory (pandas.read_csv, memory_usage(deep=True)): {frame_mib:.0f} MiB; dtypes {size['dtypes']}")

    load = ForeignLoad()
    results: dict[str, list[dict]] = {"ours": [], "baseline": []}
    for repeat in range(args.repeats):
        for side in ("ours", "baseline"):
            result = run_child(side, path, args.threads)
            results[side].append(result)
            print(f"  run {repeat + 1} {side:<8}: {result['seconds']:6.2f} s work (+{result['import_seconds']:.1f} s imports+warm-up), "
                  f"peak RSS {result['peak_kib'] / 1024:6.0f} MiB (after imports+warm-up {result['rss_after_imports_kib'] / 1024:.0f} MiB)")
    share, note = load.report()
    if args.repeats > 0:
        summarize(results, frame_mib, note)
    if args.stages:
        run_child("ours", path, args.threads, stages=True)
    if args.profile:
        run_child("ours", path, args.threads, profile=True)
    return 0


def summarize(results: dict[str, list[dict]], frame_mib: float, note: str) -> None:
    ours_s = median([r["seconds"] for r in results["ours"]])
    base_s = median([r["seconds"] for r in results["baseline"]])
    ratio = ours_s / base_s
    ours_peak = max(r["peak_kib"] for r in results["ours"]) / 1024
    base_peak = max(r["peak_kib"] for r in results["baseline"]) / 1024
    ours_work = max(r["peak_kib"] - r["rss_after_imports_kib"] for r in results["ours"]) / 1024
    base_work = max(r["peak_kib"] - r["rss_after_imports_kib"] for r in results["baseline"]) / 1024
    first = results["ours"][0]
    print(f"\nours: shapes {first['shapes']['train']} (train); feature types "
          f"{sorted({t for t in first['extra']['features'].values()})}; dropped {first['extra']['dropped'] or 'none'}")
    print(f"\nTIME     OURS {ours_s:.2f} s   BASELINE {base_s:.2f} s   RATIO {ratio:.2f}×  (target ≤ {TIME_TARGET}×)  {verdict(ratio <= TIME_TARGET)}")
    print(f"         imports + 2k-row warm-up not counted: ours {median([r['import_seconds'] for r in results['ours']]):.1f} s, "
          f"baseline {median([r['import_seconds'] for r in results['baseline']]):.1f} s")
    print(f"MEMORY   OURS peak RSS {ours_peak:.0f} MiB = {ours_peak / frame_mib:.2f}× the frame   "
          f"BASELINE {base_peak:.0f} MiB = {base_peak / frame_mib:.2f}×   (target ≤ {MEMORY_TARGET}× of {frame_mib:.0f} MiB)  "
          f"{verdict(ours_peak <= MEMORY_TARGET * frame_mib)}")
    print(f"         above post-import RSS: ours {ours_work:.0f} MiB = {ours_work / frame_mib:.2f}×, baseline {base_work:.0f} MiB = {base_work / frame_mib:.2f}×"
          + ("" if first["peak_reset"] else "  (peak reset unavailable: these include imports)"))
    print(f"load: {note}")


if __name__ == "__main__":
    sys.exit(main())
