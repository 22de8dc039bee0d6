"""/v1/predict throughput with 1-row requests at concurrency 64, vs a plain FastAPI endpoint.

Both sides are real uvicorn processes on loopback serving the same bundle (the default MLP on
the bundled penguins data), driven by the same load generator (bounded request count, 64 keep-alive
connections, 1 row per request, a warm-up request first): by default a minimal HTTP/1.1 client
on asyncio streams (httpx costs as much CPU per request as the server, see ``_serving.raw_load``),
``--client httpx`` for httpx.AsyncClient. The baseline (``_plain_server.py``)
runs ``Predictor.predict`` once per request in FastAPI's thread pool; ``forgeml serve`` micro-batches.
Targets: ≥ 5× the baseline's requests/s and p99 < 100 ms.

    .venv/bin/python bench/serve_throughput.py                 # 3000 requests per side
    .venv/bin/python bench/serve_throughput.py --quick         # 600
    .venv/bin/python bench/serve_throughput.py --backend onnx  # the onnxruntime backend
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, ForeignLoad, machine_line, verdict  # noqa: E402
from _serving import bundle, forgeml_serve, load, process, request_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--max-wait-ms", default="5")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw",
                        help="load generator: a minimal keep-alive HTTP/1.1 client (default) or httpx.AsyncClient")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    requests = 600 if args.quick else args.requests
    print(machine_line())
    bundle()
    bodies = [{"rows": [row]} for row in request_rows(64)]
    meter = ForeignLoad()
    with process(forgeml_serve("--backend", args.backend, "--max-wait-ms", args.max_wait_ms)) as (url, _):
        ours = asyncio.run(load(url, "/v1/predict", bodies, requests, args.concurrency, client=args.client))
    with process([sys.executable, str(BENCH_DIR / "_plain_server.py"), str(bundle()), "{port}"]) as (url, _):
        base = asyncio.run(load(url, "/predict", bodies, requests, args.concurrency, client=args.client))
    ratio = ours["rps"] / base["rps"]
    for name, result in (("forgeml serve", ours), ("plain FastAPI", base)):
        print(f"{name:14s} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms  max {result.get('max_ms', float('nan')):6.1f} ms  "
              f"errors {result['errors'] or 0}  ({result['requests']} requests in {result['seconds']:.1f} s)")
    print(f"throughput ratio {ratio:.2f}× (target ≥ 5×): {verdict(ratio >= 5)}")
    print(f"p99 {ours['p99_ms']:.1f} ms (target < 100 ms): {verdict(ours['p99_ms'] < 100)}")
    print(meter.report()[1])


if __name__ == "__main__":
    main()
