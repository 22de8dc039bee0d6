"""``forgeml serve``: imports only typer at module level (``forgeml --help`` stays fast)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from forgeml.cli_options import BUNDLE_HELP, RunsDir


def check_port(host: str, port: int) -> None:
    """Fail at once, in one line, if the port is taken (before seconds of model loading)."""
    import socket

    from forgeml.errors import ConfigError

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})", where="--host/--port",
                          hint="choose another --port, or stop what is using it") from None


# What the server itself imports (the dashboard's jinja2 is not needed to serve a model).
SERVER_MODULES = ("fastapi", "uvicorn", "prometheus_client", "python_multipart|multipart")


def require_serving_extras(backend: str) -> None:
    """One line naming the extra to install, before seconds of loading the bundle; the onnx
    backend also needs onnxruntime (and onnx/onnxscript to export a bundle that has no export)."""
    from forgeml.extras import require_extra

    require_extra("serve", needed_by="forgeml serve", modules=SERVER_MODULES)
    if backend.strip().lower() == "onnx":
        require_extra("onnx", needed_by="forgeml serve --backend onnx")


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        bundle_ref: str = typer.Argument(..., metavar="BUNDLE", help=BUNDLE_HELP),
        host: str = typer.Option("127.0.0.1", help="Interface to bind; 0.0.0.0 exposes the server to the network."),
        port: int = typer.Option(8000, help="TCP port."),
        backend: str = typer.Option("torch", help="torch (the bundle's own model) or onnx (onnxruntime, verified against torch at start)."),
        api_key_file: Optional[Path] = typer.Option(None, help="File with one API key per line (or sha256:<hex>); requests to /v1/ then need one."),
        image_root: Optional[Path] = typer.Option(None, help="Image features: also accept paths to files inside this folder (by default clients send image bytes, base64)."),
        max_batch_size: int = typer.Option(64, help="Rows per forward pass when requests are batched."),
        max_wait_ms: float = typer.Option(5.0, help="How long a request may wait for others to share its batch."),
        max_rows: int = typer.Option(1000, help="Rows allowed in one JSON request."),
        max_body_bytes: int = typer.Option(1 << 20, help="Largest JSON request body (413 above)."),
        max_csv_bytes: int = typer.Option(100 << 20, help="Largest CSV upload, as sent and after gzip decompression (413 above)."),
        max_csv_uploads: int = typer.Option(2, help="CSV uploads read or streamed at once (503 with Retry-After above)."),
        max_queue_rows: Optional[int] = typer.Option(None, help="Rows waiting or being scored before new requests get 503 with Retry-After (default 8192, or 4 × --max-rows)."),
        timeout_ms: float = typer.Option(10_000, help="Per-request deadline (504 after it)."),
        body_timeout_s: float = typer.Option(30.0, help="A client silent this long while sending its body gets 408."),
        threads: int = typer.Option(1, help="Threads for the model (the event loop uses another core)."),
        device: str = typer.Option("auto", help="Language models: auto (a CUDA GPU when there is one), cpu or cuda."),
        max_new_tokens: int = typer.Option(1024, help="Language models: the most tokens one /v1/generate request may ask for."),
        log_level: str = typer.Option("warning", help="uvicorn log level."),
        runs_dir: Optional[Path] = RunsDir,
    ) -> None:
        """Serve a bundle over HTTP: /v1/predict and /v1/predict/csv (or /v1/generate for a language model), /v1/model, /healthz, /readyz, /metrics, /docs."""
        require_serving_extras(backend)
        import uvicorn

        from forgeml.runs.bundle_ref import resolve_bundle
        from forgeml.serve.app import create_app
        from forgeml.serve.settings import ServeSettings

        bundle = resolve_bundle(bundle_ref, runs_dir)
        check_port(host, port)
        settings = ServeSettings(backend=backend, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_rows=max_rows,
                                 max_body_bytes=max_body_bytes, max_csv_bytes=max_csv_bytes, max_csv_uploads=max_csv_uploads,
                                 max_queue_rows=max_queue_rows, timeout_ms=timeout_ms, body_timeout_s=body_timeout_s,
                                 threads=threads, api_key_file=api_key_file, image_root=image_root, device=device, max_new_tokens=max_new_tokens)
        app = create_app(bundle, settings)
        print(f"serving {bundle} ({settings.backend}) on http://{host}:{port}  (docs: /docs, Ctrl-C to stop)", flush=True)
        # Graceful shutdown: on SIGTERM/Ctrl-C uvicorn stops accepting, lets in-flight requests
        # finish (up to 30 s), then runs the app's shutdown, which drains the batch queue.
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30, access_log=False)
