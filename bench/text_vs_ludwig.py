"""Text figure (issue 14): forgeml's default against Ludwig's default and TF-IDF + LR, on the
sets of ``text_vs_tfidf.py`` (same loaders, same 80/20 split, seed 0, same scoring).

Ludwig runs in its own venv (``bash bench/ludwig_venv.sh`` once: Ludwig 0.11 wants torchvision
and torchaudio, which need another torch than forgeml's), as a subprocess
(``bench/_ludwig_runner.py``): its default config names the text input and the category output,
nothing else. forgeml: the ``medium`` ensemble at ``--budget`` seconds (what ``model.type: auto``,
the default, picks for a text table; named here so that the budget applies). TF-IDF + LR: the issue's baseline, as in
``text_vs_tfidf.py``. Ludwig gets no time budget (it has none by default; its fit time is printed).

    flock /tmp/forgeml-heavy.lock .venv/bin/python bench/text_vs_ludwig.py                 # both sets
    .venv/bin/python bench/text_vs_ludwig.py --only tweets_en --contenders ludwig tfidf_lr
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import ForeignLoad, pin_threads  # noqa: E402
from text_vs_tfidf import opening_line, run_forgeml, run_sklearn, score, split_set  # noqa: E402

BENCH = Path(__file__).resolve().parent
LUDWIG_PYTHON = BENCH / ".venv-ludwig" / "bin" / "python"
CONTENDERS = ("forgeml", "ludwig", "tfidf_lr")


def run_ludwig(train, test, text: str, target: str, positive: str, threads: int) -> dict:
    if not LUDWIG_PYTHON.is_file():
        raise SystemExit(f"{LUDWIG_PYTHON} not found: run `bash bench/ludwig_venv.sh` once (or leave ludwig out of --contenders)")
    with tempfile.TemporaryDirectory(prefix="ludwig-") as folder:
        work = Path(folder)
        train[[text, target]].to_parquet(work / "train.parquet")
        test[[text]].to_parquet(work / "test.parquet")
        (work / "settings.json").write_text(json.dumps({"text": text, "target": target, "threads": threads}))
        started = time.perf_counter()
        done = subprocess.run([str(LUDWIG_PYTHON), str(BENCH / "_ludwig_runner.py"), str(work)], capture_output=True, text=True,
                              cwd=work,  # Ludwig leaves a .lock_preprocessing file in its working folder
                              env={"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin",
                                   "HOME": str(work), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        if done.returncode != 0:
            raise SystemExit(f"ludwig failed ({time.perf_counter() - started:.0f} s):\n{done.stderr[-3000:]}")
        result = json.loads((work / "result.json").read_text())
    proba = result["proba"].get(positive)
    if proba is None:
        raise SystemExit(f"ludwig's predictions have no probability for {positive!r}: {sorted(result['proba'])}")
    import numpy as np

    return {**score(test[target], np.asarray(proba), positive), "fit_s": result["fit_s"],
            "predict_ms_row": result["predict_s"] * 1000 / len(test), "version": result["version"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=["reviews_zh", "tweets_en"])
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--budget", type=float, default=300.0, help="forgeml's time budget, seconds.")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    pin_threads(args.threads)
    print(opening_line())
    load = ForeignLoad()
    for name in args.only:
        ready = split_set(name)
        if ready is None:
            continue
        train, test, text, target, positive = ready
        print("| contender | accuracy | ROC-AUC | fit s | predict ms/row (batch) |")
        print("| --- | --- | --- | --- | --- |")
        results = {}
        for contender in args.contenders:
            if contender == "tfidf_lr":
                result = run_sklearn(False, train, test, text, target, positive)
            elif contender == "ludwig":
                result = run_ludwig(train, test, text, target, positive, args.threads)
            else:
                result = run_forgeml("ensemble", train, test, text, target, positive, args.budget, args.threads)
            results[contender] = result
            label = contender + (f" {result['version']}" if "version" in result else "")
            print(f"| {label} | {result['accuracy']:.4f} | {result['roc_auc']:.4f} | {result['fit_s']:.1f} | {result['predict_ms_row']:.3f} |",
                  flush=True)
        if "forgeml" in results:
            for peer in ("ludwig", "tfidf_lr"):
                if peer in results:
                    gaps = {m: results["forgeml"][m] - results[peer][m] for m in ("accuracy", "roc_auc")}
                    print(f"{name}: forgeml − {peer} = {gaps['accuracy'] * 100:+.2f} accuracy points, {gaps['roc_auc']:+.4f} ROC-AUC")
    print(f"\n{load.report()[1]}")


if __name__ == "__main__":
    main()
