"""``forgeml export``: imports only typer at module level (``forgeml --help`` stays fast)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        bundle: Path = typer.Argument(..., help="Bundle folder (runs/<id>/bundle)."),
        format_: str = typer.Option("onnx", "--format", "-f", help="onnx, torchscript or safetensors."),
        data: Optional[Path] = typer.Option(None, "--data", help="Rows to verify on (default: generated inputs covering every category and token)."),
        tolerance: float = typer.Option(1e-4, help="Largest allowed |export − eager PyTorch| on any score."),
    ) -> None:
        """Write <bundle>/exports/model.<ext>, verified against eager PyTorch, with its SHA-256 in exports/manifest.json."""
        from forgeml.export.exporter import export_bundle

        result = export_bundle(bundle, format_.lower(), data=data, tolerance=tolerance)
        print(f"wrote {result.path} ({result.format}; max |diff| vs eager {result.max_abs_diff:.2g} on {result.rows_checked} rows; sha256 {result.sha256[:12]})")
