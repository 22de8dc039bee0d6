"""/docs in a real browser, offline: Swagger UI renders the bundle's routes from the server's own
assets, behind the API key (the browser's HTTP Basic prompt, answered with the key)."""
from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def test_docs_render_offline_behind_the_key(torch_server, auth):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    key = auth["Authorization"].removeprefix("Bearer ")
    outside: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            # (without the key a browser gets no page at all: see test_server's 401 checks)
            context = browser.new_context(http_credentials={"username": "me", "password": key})
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("http://127.0.0.1")
                          else (outside.append(route.request.url), route.abort()))
            page = context.new_page()
            page.goto(f"{torch_server.url}/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=20_000)  # the spec loaded and rendered
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            assert any("/v1/predict" in path for path in paths), paths
            context.close()
        finally:
            browser.close()
    assert not outside, f"/docs tried to reach the network: {outside}"
