"""The mixed-table part of bench/text_vs_tfidf.py (issue 14): birds.csv, target ``effect``.

Does a free-text column help the default model of a table that has numbers and categories too?
Three contenders on one stratified 80/20 split (seed 0), macro-F1 on the 20 % (the classes are
90 % "No effect", so accuracy says little):

* ``default``: ``Pipeline(target="effect")`` on every column — the AutoML ensemble, whose n-gram
  member reads ``remarks`` and whose tree members read the rest;
* ``default_no_remarks``: the same without the ``remarks`` column;
* ``tfidf_lr_remarks``: ``TfidfVectorizer()`` + ``LogisticRegression(max_iter=1000)`` on
  ``remarks`` alone (scikit-learn's defaults: word unigrams).
"""
from __future__ import annotations

import time
from pathlib import Path

TARGET, TEXT = "effect", "remarks"


def _forgeml(train, test, budget: float, threads: int) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    from forgeml import Pipeline

    overrides = {"train.progress": False, "train.threads": threads, "train.time_budget": budget,
                 "data.split.train": 0.85, "data.split.validation": 0.15, "data.split.test": 0.0, "data.split.seed": 0}
    started = time.perf_counter()
    pipeline = Pipeline(target=TARGET, overrides=overrides).fit(train)
    fit_seconds = time.perf_counter() - started
    predicted = pipeline.predict(test.drop(columns=[TARGET]))[f"{TARGET}_prediction"].astype(str)
    board = pipeline.leaderboard()
    members = "; ".join(f"{r.member} {r.status}" + (f" w={r.weight:.2f} oof {r.score:.4f}" if r.status == "fitted" else "") + (f" ({r.note})" if isinstance(getattr(r, "note", None), str) else "")
                        for r in board.itertuples())
    return {"f1_macro": f1_score(test[TARGET], predicted, average="macro"), "accuracy": accuracy_score(test[TARGET], predicted),
            "fit_s": fit_seconds, "members": members}


def _tfidf_lr(train, test) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
    started = time.perf_counter()
    model.fit(train[TEXT].fillna("").astype(str), train[TARGET])
    fit_seconds = time.perf_counter() - started
    predicted = model.predict(test[TEXT].fillna("").astype(str))
    return {"f1_macro": f1_score(test[TARGET], predicted, average="macro"), "accuracy": accuracy_score(test[TARGET], predicted),
            "fit_s": fit_seconds}


def run_birds(path: Path, budget: float, threads: int) -> None:
    import pandas as pd
    from sklearn.model_selection import train_test_split

    if not path.is_file():
        print(f"birds: skipped ({path} not found: the shared data folder is absent)")
        return
    frame = pd.read_csv(path)
    train, test = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame[TARGET])
    print(f"\n## birds: {len(train)} train / {len(test)} test rows, target {TARGET!r}, macro-F1 (ensemble budget {budget:.0f} s)")
    print("| contender | macro-F1 | accuracy | fit s |")
    print("| --- | --- | --- | --- |")
    results = {
        "default": lambda: _forgeml(train, test, budget, threads),
        "default_no_remarks": lambda: _forgeml(train.drop(columns=[TEXT]), test.drop(columns=[TEXT]), budget, threads),
        "tfidf_lr_remarks": lambda: _tfidf_lr(train, test),
    }
    scores = {}
    for name, run in results.items():
        result = run()
        scores[name] = result["f1_macro"]
        print(f"| {name} | {result['f1_macro']:.4f} | {result['accuracy']:.4f} | {result['fit_s']:.1f} |", flush=True)
        if "members" in result:
            print(f"|   members: {result['members']} | | | |", flush=True)
    ok = scores["default"] > max(scores["default_no_remarks"], scores["tfidf_lr_remarks"])
    print(f"birds: default {scores['default']:.4f} vs without remarks {scores['default_no_remarks']:.4f}, "
          f"text-only TF-IDF + LR {scores['tfidf_lr_remarks']:.4f} (target: above both): {'PASS' if ok else 'FAIL'}")
