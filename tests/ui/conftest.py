"""A run registry with real trainings, and ``forgeml ui`` serving it as a subprocess."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def ui_runs(tmp_path_factory, make_mixed) -> Path:
    """Two MLP runs (different learning rates, so their curves differ), a LightGBM run and a small AutoML ensemble."""
    from forgeml.config import Config, apply_overrides
    from forgeml.runs.registry import RunRegistry
    from forgeml.train_run import run_training

    root = tmp_path_factory.mktemp("ui")
    data = root / "mixed.csv"
    make_mixed().to_csv(data, index=False)
    registry = RunRegistry(root / "runs")
    fast = {"model.type": "mlp", "train.epochs": 4, "train.progress": False, "train.threads": 1}
    for name, overrides in (("slow-lr", {"train.learning_rate": 1e-4}), ("fast-lr", {"train.learning_rate": 1e-2}),
                            ("boosted", {"model.type": "gbm", "model.num_boost_round": 20, "model.min_data_in_leaf": 5, "model.text_columns": "ignore"}),
                            ("automl", {"model.type": "ensemble", "model.members": ["lightgbm", "linear"], "model.folds": 2, "train.time_budget": 60})):
        config = apply_overrides(Config(target="label"), {**fast, **overrides})
        run_training(config, data, registry=registry, name=name, resume=False)
    return registry.root


@pytest.fixture(scope="session")
def ui_server(ui_runs, tmp_path_factory) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("ui_server") / "ui.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "forgeml.cli", "ui", "--runs-dir", str(ui_runs), "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"ui not up:\n{log.read_text()}"
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    # The dashboard must work offline: any request leaving loopback fails the test.
    outside: list[str] = []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("http://127.0.0.1") else (outside.append(route.request.url), route.abort()))
    page = context.new_page()
    yield page
    context.close()
    assert not outside, f"the page tried to reach the network: {outside}"
