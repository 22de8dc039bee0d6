"""Real servers: ``forgeml serve`` as a subprocess on a free loopback port, ready when /readyz says so."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

API_KEY = "test-key-0123456789"
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def serve(bundle: Path, *args: str, workdir: Path) -> Iterator[Server]:
    port = free_port()
    log = workdir / f"server-{port}.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "forgeml.cli", "serve", str(bundle), "--port", str(port), *args],
                                   stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}:\n{server.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready after {START_TIMEOUT_S} s:\n{server.output()}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def key_file(tmp_path_factory) -> Path:
    import hashlib

    path = tmp_path_factory.mktemp("keys") / "keys.txt"
    # One key stored hashed, one plain: both forms must work.
    path.write_text(f"# serving keys\nsha256:{hashlib.sha256(API_KEY.encode()).hexdigest()}\nanother-plain-key\n")
    return path


@pytest.fixture(scope="session")
def torch_server(saved_bundle, key_file, tmp_path_factory) -> Iterator[Server]:
    """API keys on; small limits so the limit tests need small bodies (a 2 s body timeout for the slow client)."""
    with serve(saved_bundle, "--api-key-file", str(key_file), "--max-rows", "50", "--max-body-bytes", "20000",
               "--max-csv-bytes", "200000", "--max-wait-ms", "10", "--body-timeout-s", "2", workdir=tmp_path_factory.mktemp("torch_server")) as server:
        yield server


@pytest.fixture(scope="session")
def onnx_server(saved_bundle, tmp_path_factory) -> Iterator[Server]:
    with serve(saved_bundle, "--backend", "onnx", workdir=tmp_path_factory.mktemp("onnx_server")) as server:
        yield server


@pytest.fixture(scope="session")
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="session")
def rows(mixed_frame) -> list[dict]:
    """Rows as a client would send them: JSON types, null for missing values, no target."""
    import math

    records = mixed_frame.drop(columns=["label"]).head(40).to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in records]


@pytest.fixture(scope="session")
def start_server():
    """``with start_server(bundle, *args, workdir=...) as server`` for tests that need their own."""
    return serve


@pytest.fixture(scope="session")
def image_bundle(tmp_path_factory) -> tuple[Path, Path]:
    """(bundle, image folder): a one-epoch classifier of 16 px shapes; predictions need not be good."""
    from tests.multimodal_data import write_image_folder

    from forgeml import Pipeline

    root = write_image_folder(tmp_path_factory.mktemp("shapes") / "images", per_class=6, size=16)
    pipeline = Pipeline(target="label", overrides={"train.epochs": 1, "train.progress": False, "train.threads": 1,
                                                   "train.bagging_folds": 1}).fit(root)
    return pipeline.save(tmp_path_factory.mktemp("image_bundle") / "bundle"), root
