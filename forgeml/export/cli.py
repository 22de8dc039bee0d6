"""``forgeml export``: imports only typer at module level (``forgeml --help`` stays fast)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from forgeml.cli_options import BUNDLE_HELP, RunsDir


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        bundle_ref: str = typer.Argument(..., metavar="BUNDLE", help=BUNDLE_HELP),
        format_: str = typer.Option("onnx", "--format", "-f", help="onnx, torchscript or safetensors (torch models); lightgbm (gbm models)."),
        data: Optional[Path] = typer.Option(None, "--data", help="Rows to verify on (default: generated inputs covering every category and token)."),
        tolerance: float = typer.Option(1e-4, help="Largest allowed |export − eager PyTorch| on any score."),
        runs_dir: Optional[Path] = RunsDir,
    ) -> None:
        """Write <bundle>/exports/model.<ext>, verified against the bundle's own model (eager PyTorch, or LightGBM), with its SHA-256 in exports/manifest.json."""
        from forgeml.export.exporter import export_bundle
        from forgeml.extras import require_extra
        from forgeml.runs.bundle_ref import resolve_bundle

        if format_.lower() == "onnx":  # before loading the bundle
            require_extra("onnx", needed_by="forgeml export --format onnx")

        result = export_bundle(resolve_bundle(bundle_ref, runs_dir), format_.lower(), data=data, tolerance=tolerance)
        print(f"wrote {result.path} ({result.format}; max |diff| vs the bundle's model {result.max_abs_diff:.2g} on {result.rows_checked} rows; sha256 {result.sha256[:12]})")
