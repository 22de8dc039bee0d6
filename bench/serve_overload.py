"""/v1/predict under overload (issue 18's figure): requests arriving at 4× what the server can
answer are refused at once with 503 + Retry-After, and the requests it accepts are still answered
within their deadline — not a wall of 504s after everyone waited.

1. capacity: closed loop (``_serving.raw_load``), 4 requests in flight (the server stays busy, and
   refuses nothing), counting only the 200 answers per second;
2. open loop at 0.5× and at 4× that rate for ``--seconds`` each: requests start on a fixed
   schedule whatever the answers (a connection pool grows as needed), so the server, not the
   client, decides what to refuse. Latency is counted from each request's send; the rate the
   client really reached is printed (on 2 cores a Python client may fall short of 4×).

Target: at 4×, 0 × 504, some 503s (each with Retry-After), accepted p99 within the deadline
(``--timeout-ms``, given to the server).

    .venv/bin/python bench/serve_overload.py             # 200-row requests, 15 s per load
    .venv/bin/python bench/serve_overload.py --quick     # 6 s per load
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ForeignLoad, machine_line, verdict  # noqa: E402
from _serving import bundle, forgeml_serve, process, raw_load, request_rows  # noqa: E402


async def open_loop(url: str, payload: bytes, rate: float, seconds: float) -> dict:
    """``rate`` requests per second for ``seconds``, each on an idle connection (or a new one)."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    results: list[tuple[int, float, bool]] = []  # status, seconds since sent, Retry-After sent

    async def one(scheduled: float) -> None:
        reader, writer = idle.pop() if idle else await asyncio.open_connection(host, port)
        scheduled = time.perf_counter()  # the send, not the schedule: a lagging client is not the server's latency
        try:
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            lines = head.lower().split(b"\r\n")
            length = next((int(line[15:]) for line in lines if line.startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            results.append((status, time.perf_counter() - scheduled, any(line.startswith(b"retry-after:") for line in lines)))
            idle.append((reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            results.append((0, time.perf_counter() - scheduled, False))
            writer.close()

    started = time.perf_counter()
    tasks, total = [], int(rate * seconds)
    for i in range(total):
        scheduled = started + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        tasks.append(asyncio.create_task(one(scheduled)))
    sent_in = time.perf_counter() - started
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    accepted = sorted(latency for status, latency, _ in results if status == 200)
    codes: dict[int, int] = {}
    for status, _, _ in results:
        codes[status] = codes.get(status, 0) + 1
    refused = [r for r in results if r[0] == 503]
    return {"sent": total, "achieved_rps": total / sent_in, "codes": dict(sorted(codes.items())), "refused_with_retry_after": sum(r[2] for r in refused),
            "accepted_p50_s": accepted[len(accepted) // 2] if accepted else float("nan"),
            "accepted_p99_s": accepted[min(len(accepted) - 1, int(0.99 * len(accepted)))] if accepted else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200, help="rows per request")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of each open-loop load")
    parser.add_argument("--timeout-ms", type=int, default=2000, help="the server's per-request deadline")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds = 6.0 if args.quick else args.seconds
    print(machine_line())
    bundle()
    rows = request_rows(64)
    body = {"rows": [rows[i % len(rows)] for i in range(args.rows)]}
    meter = ForeignLoad()
    with process(forgeml_serve("--max-rows", str(max(1000, args.rows)), "--timeout-ms", str(args.timeout_ms))) as (url, _):
        in_flight = 4  # enough to keep the server busy; many more and it refuses (work ahead > a quarter of the deadline)
        capacity = asyncio.run(raw_load(url, "/v1/predict", [body], 40 * in_flight, in_flight))
        answered = capacity["requests"] - sum(capacity["errors"].values())
        rate = answered / capacity["seconds"]
        print(f"capacity (closed loop, {in_flight} in flight, {args.rows}-row requests): {rate:.1f} answered req/s, "
              f"p99 {capacity['p99_ms']:.0f} ms, errors {capacity['errors'] or 0}")
        data = json.dumps(body).encode()
        host, port = urlsplit(url).hostname, urlsplit(url).port
        payload = (f"POST /v1/predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(data)}\r\n\r\n").encode() + data
        loads = {}
        for factor in (0.5, 4.0):
            loads[factor] = result = asyncio.run(open_loop(url, payload, rate * factor, seconds))
            print(f"{factor:3.1f}× capacity ({rate * factor:6.1f} req/s for {seconds:.0f} s, reached {result['achieved_rps']:.1f}): "
                  f"{result['sent']} sent, status {result['codes']}, "
                  f"503 with Retry-After {result['refused_with_retry_after']}, accepted p50 {result['accepted_p50_s']:.2f} s, "
                  f"p99 {result['accepted_p99_s']:.2f} s")
    over = loads[4.0]
    deadline = args.timeout_ms / 1000
    print(f"at 4×: 504s {over['codes'].get(504, 0)} (target 0): {verdict(over['codes'].get(504, 0) == 0)}")
    refused = over["codes"].get(503, 0)
    print(f"at 4×: 503s {refused}, all with Retry-After: {verdict(refused > 0 and over['refused_with_retry_after'] == refused)}")
    print(f"at 4×: accepted p99 {over['accepted_p99_s']:.2f} s (target within the {deadline:.1f} s deadline): "
          f"{verdict(over['accepted_p99_s'] <= deadline)}")
    print(meter.report()[1])


if __name__ == "__main__":
    main()
