"""Ludwig's side of ``text_vs_ludwig.py``: runs in ``bench/.venv-ludwig`` (made by
``ludwig_venv.sh``), never imported by forgeml or by the bench itself.

    bench/.venv-ludwig/bin/python bench/_ludwig_runner.py WORKDIR

WORKDIR holds ``train.parquet`` (the 80 %, target included), ``test.parquet`` (the 20 %, no
target) and ``settings.json`` (text, target, threads). It writes ``result.json``: the probability
of every class for every test row, fit seconds, batch predict seconds and Ludwig's version.

"Ludwig's default", as a new user gets it from Ludwig's docs: the smallest config that names the
input and output features and nothing else — its default text encoder, trainer (epochs, early
stopping, learning rate, batch size) and split (Ludwig cuts the rows it is given 70/10/20 and
validates on its own 10 %). Scoring is left to the bench, so every contender is scored alike.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path


def main(workdir: Path) -> int:
    settings = json.loads((workdir / "settings.json").read_text())
    import pandas as pd
    import torch

    torch.set_num_threads(settings["threads"])
    from ludwig import __version__
    from ludwig.api import LudwigModel

    train = pd.read_parquet(workdir / "train.parquet")
    test = pd.read_parquet(workdir / "test.parquet")
    config = {"input_features": [{"name": settings["text"], "type": "text"}],
              "output_features": [{"name": settings["target"], "type": "category"}]}
    model = LudwigModel(config, logging_level=logging.WARNING)
    started = time.perf_counter()
    model.train(dataset=train, output_directory=str(workdir / "results"), skip_save_processed_input=True,
                skip_save_progress=True, skip_save_log=True)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    predictions, _ = model.predict(test, skip_save_predictions=True)
    batch_seconds = time.perf_counter() - started
    prefix = f"{settings['target']}_probabilities_"
    columns = [c for c in predictions.columns if c.startswith(prefix) and c != prefix + "<UNK>"]
    proba = {c[len(prefix):]: predictions[c].astype(float).tolist() for c in columns}
    (workdir / "result.json").write_text(json.dumps({"proba": proba, "fit_s": fit_seconds, "predict_s": batch_seconds,
                                                     "version": __version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
