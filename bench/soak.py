"""Soak: a bounded stream of /v1/predict requests at concurrency 32; errors and server RSS growth.

The server's RSS is read from /proc after a warm-up phase (first 10 % of the requests) and at
the end; the baseline is that warm RSS. Targets: zero errors, RSS growth < 10 %. Requests are
1 to 4 rows, cycling over real penguins rows. Bounded by --seconds (default 60; the issue's
figure is --seconds 600) and by --max-requests.

    .venv/bin/python bench/soak.py                  # 60 s
    .venv/bin/python bench/soak.py --seconds 600    # the 10-minute figure
    .venv/bin/python bench/soak.py --quick          # 15 s
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ForeignLoad, machine_line, verdict  # noqa: E402
from _serving import forgeml_serve, process, request_rows, rss_mib  # noqa: E402


async def soak(url: str, pid: int, seconds: float, concurrency: int, max_requests: int) -> dict:
    import httpx

    rows = request_rows(64)
    bodies = [{"rows": rows[i : i + 1 + i % 4]} for i in range(60)]
    errors: dict[str, int] = {}
    done = 0
    warm_rss = None
    started = time.monotonic()
    stop_at = started + seconds

    async def worker(client: httpx.AsyncClient, offset: int) -> None:
        nonlocal done, warm_rss
        i = offset
        while time.monotonic() < stop_at and done < max_requests:
            try:
                response = await client.post("/v1/predict", json=bodies[i % len(bodies)])
                if response.status_code != 200:
                    errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            done += 1
            i += concurrency
            if warm_rss is None and time.monotonic() - started > seconds * 0.1:
                warm_rss = rss_mib(pid)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        await asyncio.gather(*(worker(client, k) for k in range(concurrency)))
    return {"requests": done, "seconds": time.monotonic() - started, "errors": errors,
            "warm_rss": warm_rss or rss_mib(pid), "end_rss": rss_mib(pid)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds = 15 if args.quick else args.seconds
    print(machine_line())
    meter = ForeignLoad()
    with process(forgeml_serve("--backend", args.backend)) as (url, proc):
        start_rss = rss_mib(proc.pid)
        result = asyncio.run(soak(url, proc.pid, seconds, args.concurrency, args.max_requests))
    growth = (result["end_rss"] - result["warm_rss"]) / result["warm_rss"]
    total_errors = sum(result["errors"].values())
    print(f"{result['requests']} requests in {result['seconds']:.0f} s ({result['requests'] / result['seconds']:.0f} req/s) at concurrency {args.concurrency}")
    print(f"errors: {result['errors'] or 0} → {verdict(total_errors == 0)}")
    print(f"server RSS: ready {start_rss:.0f} MiB, warm {result['warm_rss']:.0f} MiB, end {result['end_rss']:.0f} MiB; "
          f"growth after warm-up {growth * 100:+.1f} % (target < 10 %) → {verdict(growth < 0.10)}")
    print(f"soak {result['seconds']:.0f} s: {verdict(total_errors == 0 and growth < 0.10)} (zero errors and RSS growth < 10 %)")
    print(meter.report()[1])


if __name__ == "__main__":
    main()
