"""Shared by the serving benches: a small MLP bundle (bundled penguins data) and server processes."""
from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from _common import OUT_DIR, ROOT, thread_env

BUNDLE = OUT_DIR / "serve_bundle"


def bundle(epochs: int = 10) -> Path:
    """The foundation's default MLP on the bundled penguins data; trained once, reused."""
    if (BUNDLE / "manifest.json").is_file():
        return BUNDLE
    from forgeml import Pipeline
    from forgeml.datasets import DEMO

    Pipeline(target=DEMO.target, overrides={"model.type": "mlp", "train.epochs": epochs, "train.progress": False, "train.threads": 1}).fit(DEMO.path).save(BUNDLE)
    return BUNDLE


def request_rows(count: int = 64) -> list[dict]:
    """Real input rows as a client would send them (JSON types, null for missing)."""
    import pandas as pd

    from forgeml.bundle import load_predictor
    from forgeml.datasets import DEMO

    names = load_predictor(bundle()).featureset.input_names
    frame = pd.read_csv(DEMO.path)[names].head(count)
    return [{k: (None if isinstance(v, float) and math.isnan(v) else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
            for r in frame.to_dict(orient="records")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def process(command: list[str], ready_path: str = "/readyz", threads: int = 1) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start a server command with ``{port}`` filled in; yield (url, process) once it answers."""
    import httpx

    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    proc = subprocess.Popen(command, env=thread_env(threads), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{command} exited: {proc.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + ready_path, timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command} not ready")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def forgeml_serve(*args: str) -> list[str]:
    return [sys.executable, "-m", "forgeml.cli", "serve", str(bundle()), "--port", "{port}", *args]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return math.nan


async def load(url: str, path: str, bodies: list[dict], requests: int, concurrency: int, headers: dict | None = None,
               client: str = "raw") -> dict:
    """``requests`` POSTs from ``concurrency`` workers; latency per request, errors by status."""
    if client == "raw":
        return await raw_load(url, path, bodies, requests, concurrency)
    import asyncio

    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = iter(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            started = time.perf_counter()
            try:
                response = await client.post(path, json=bodies[i % len(bodies)])
                if response.status_code != 200:
                    errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits, headers=headers) as client:
        await client.post(path, json=bodies[0])  # connection and first-request warm-up
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3  # noqa: E731
    return {"requests": len(latencies), "seconds": wall, "rps": len(latencies) / wall, "p50_ms": pick(0.50),
            "p90_ms": pick(0.90), "p99_ms": pick(0.99), "max_ms": latencies[-1] * 1e3 if latencies else math.nan, "errors": errors}


async def raw_load(url: str, path: str, bodies: list[dict], requests: int, concurrency: int) -> dict:
    """The same load from a minimal HTTP/1.1 keep-alive client on asyncio streams.

    httpx spends ~5 ms of CPU per request here, as much as the server: on a 2-core machine the
    load generator, not the server, would set the pace. This client pre-encodes each request and
    only reads the status line, headers and Content-Length body, so nearly all CPU goes to the
    servers being compared (the same client drives both).
    """
    import asyncio
    import json
    from urllib.parse import urlsplit

    host, port = urlsplit(url).hostname, urlsplit(url).port
    payloads = []
    for body in bodies:
        data = json.dumps(body).encode()
        payloads.append(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = iter(range(requests))

    async def exchange(reader, writer, payload: bytes) -> int:
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        return status

    async def worker(reader, writer) -> None:
        try:
            for i in counter:
                started = time.perf_counter()
                try:
                    status = await exchange(reader, writer, payloads[i % len(payloads)])
                    if status != 200:
                        errors[str(status)] = errors.get(str(status), 0) + 1
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    async def warm(index: int):
        # Connections opened and used a few times before timing: the figure is steady state,
        # not 64 TCP handshakes and the server's first batches.
        reader, writer = await asyncio.open_connection(host, port)
        for k in range(3):
            await exchange(reader, writer, payloads[(index + k) % len(payloads)])
        return reader, writer

    connections = await asyncio.gather(*(warm(i) for i in range(concurrency)))
    started = time.perf_counter()
    await asyncio.gather(*(worker(reader, writer) for reader, writer in connections))
    wall = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3  # noqa: E731
    return {"requests": len(latencies), "seconds": wall, "rps": len(latencies) / wall, "p50_ms": pick(0.50),
            "p90_ms": pick(0.90), "p99_ms": pick(0.99), "max_ms": latencies[-1] * 1e3 if latencies else math.nan, "errors": errors}
