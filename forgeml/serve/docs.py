"""``/docs``: Swagger UI served from this machine, so the page works offline and behind firewalls.

FastAPI's own ``/docs`` page loads Swagger UI's script and stylesheet from a CDN; without network
the page is blank. The same assets ship in the ``fastapi-offline`` wheel (MIT, Swagger UI 5, which
renders the OpenAPI 3.1 FastAPI writes; ``swagger-ui-bundle`` on PyPI ships Swagger UI 4, which
does not); only its static files are used, served at ``/docs/assets/`` (``/redoc`` too, with its
script from there and no web fonts). Without that package
the page falls back to the CDN and says so once in the log.

With API keys set the guard protects ``/docs``, its assets, ``/redoc`` and ``/openapi.json`` like ``/v1/``:
the schema shows training categories and clip ranges. A browser is asked for the key with HTTP
Basic (any user name, the key as password) and then sends it with every request of the page.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

log = logging.getLogger("forgeml.serve")

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
# asset name → media type; nothing else under /docs/assets is served
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png",
          "redoc.standalone.js": "text/javascript"}


def assets_folder() -> Path | None:
    """The folder holding Swagger UI's files, found without importing the package."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if all((folder / name).is_file() for name in ASSETS) else None


def add_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) on local assets; create the app with ``docs_url=None, redoc_url=None``."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    folder = assets_folder()
    if folder is None:
        log.warning("/docs loads Swagger UI from a CDN (install 'forgeml[serve]' for offline assets)")
        urls = {}
    else:
        urls = {"swagger_js_url": f"{ASSETS_URL}/swagger-ui-bundle.js", "swagger_css_url": f"{ASSETS_URL}/swagger-ui.css",
                "swagger_favicon_url": f"{ASSETS_URL}/favicon.png"}

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} — docs", **urls)

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        local = {"redoc_js_url": f"{ASSETS_URL}/redoc.standalone.js", "redoc_favicon_url": f"{ASSETS_URL}/favicon.png",
                 "with_google_fonts": False} if folder is not None else {}
        return get_redoc_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} — reference", **local)

    if folder is not None:
        @app.get(f"{ASSETS_URL}/{{name}}", include_in_schema=False)
        async def asset(name: str) -> FileResponse:
            if name not in ASSETS:
                raise HTTPException(404, "Not Found")
            # the files never change for one installed version: let the browser keep them a day
            return FileResponse(folder / name, media_type=ASSETS[name], headers={"cache-control": "public, max-age=86400"})
