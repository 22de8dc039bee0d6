"""Baseline for bench/serve_throughput.py: a plain FastAPI endpoint that runs the same bundle's
Predictor once per request (no batching), as one would write it by hand. Run as
``python bench/_plain_server.py BUNDLE PORT``."""
from __future__ import annotations

import sys

import pandas as pd
import torch
import uvicorn
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from forgeml.bundle import load_predictor

torch.set_num_threads(1)
predictor = load_predictor(sys.argv[1])
names = predictor.featureset.input_names
app = FastAPI()


@app.get("/readyz")
def ready() -> dict:
    return {"status": "ready"}


@app.post("/predict")
async def predict(body: dict) -> dict:
    frame = pd.DataFrame.from_records(body["rows"], columns=names)
    out = await run_in_threadpool(predictor.predict, frame)
    return {"predictions": out.to_dict(orient="records")}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
