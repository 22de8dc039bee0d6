"""``forgeml ui``: imports only typer at module level (``forgeml --help`` stays fast)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from forgeml.cli_options import RunsDir


def register(app: typer.Typer) -> None:
    @app.command()
    def ui(
        runs_dir: Optional[Path] = RunsDir,
        host: str = typer.Option("127.0.0.1", help="Interface to bind; keep the default unless others should see your runs."),
        port: int = typer.Option(8501, help="TCP port."),
        open_: bool = typer.Option(False, "--open", help="Open the dashboard in the browser."),
    ) -> None:
        """Dashboard of runs on localhost: sortable list, run pages with learning curves, compare two runs."""
        from forgeml.extras import require_extra

        require_extra("serve", needed_by="forgeml ui", modules=("fastapi", "uvicorn", "jinja2"))
        import uvicorn

        from forgeml.serve.cli import check_port
        from forgeml.ui.app import create_ui_app

        check_port(host, port)
        app = create_ui_app(runs_dir)
        url = f"http://{host}:{port}/"
        print(f"forgeml ui on {url}  (Ctrl-C to stop)", flush=True)
        if open_:
            import threading
            import webbrowser

            threading.Timer(1.0, webbrowser.open, args=(url,)).start()
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
