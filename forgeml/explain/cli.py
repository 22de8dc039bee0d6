"""``forgeml explain BUNDLE DATA [--rows 0,5,9 | --top K] [-o OUT]``: explanations.json and
explain.html for rows of a table.

Typer only at module level: the CLI imports this at start-up (``--help`` stays fast)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from forgeml.cli_options import BUNDLE_HELP, RunsDir

JSON_NAME, PAGE_NAME = "explanations.json", "explain.html"


def default_output(data: Path) -> Path:
    """``<data stem>_explanations/`` beside the data file."""
    return data.with_name(f"{data.stem}_explanations")


def register(app: typer.Typer) -> None:
    @app.command()
    def explain(
        bundle_ref: str = typer.Argument(..., metavar="BUNDLE", help=BUNDLE_HELP),
        data: Path = typer.Argument(..., help="Rows to explain (the bundle's input columns; the target may be absent)."),
        rows: Optional[str] = typer.Option(None, "--rows", help="Rows to explain, counted from 0 in file order: 0,5,9 or 10-12."),
        top: Optional[int] = typer.Option(None, "--top", help="Explain every row (a sample of 200 beyond that) and detail the K with the most attribution (default 10)."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder for explanations.json and explain.html (default: <data name>_explanations beside the data)."),
        steps: int = typer.Option(50, "--steps", min=4, max=1000, help="Integration steps of integrated gradients (networks)."),
        runs_dir: Optional[Path] = RunsDir,
    ) -> None:
        """Why the model predicts what it does: per-row and global attributions (explanations.json, explain.html)."""
        from rich.console import Console

        from forgeml.api import Pipeline
        from forgeml.errors import ConfigError
        from forgeml.explain.page import render
        from forgeml.explain.run import page_extras, parse_rows, explain_frame
        from forgeml.fileio import atomic_write_json, atomic_write_text, to_plain
        from forgeml.runs.bundle_ref import resolve_bundle

        if rows is not None and top is not None:
            raise ConfigError("--rows and --top choose rows two ways", where="--rows/--top", hint="give one of them")
        positions = parse_rows(rows)
        bundle = resolve_bundle(bundle_ref, runs_dir)
        predictor = Pipeline.load(bundle).predictor_
        frame = predictor.read(data)
        answer = explain_frame(predictor, frame, rows=positions, top=top, source=str(data), n_steps=steps, keep_arrays=True)
        images, saliency = page_extras(answer)
        answer["bundle"] = str(bundle)
        folder = output if output is not None else default_output(data)
        page = render(answer, images, saliency, title=f"Explanations: {data.name}")
        atomic_write_json(folder / JSON_NAME, to_plain(answer))
        atomic_write_text(folder / PAGE_NAME, page)
        console = Console()
        for item in answer["importance"][:5]:
            console.print(f"  {item['feature']}: {item['mean_abs']:.4g}")
        console.print(f"explained {answer['rows_explained']} row(s) ({answer['method']}); wrote {JSON_NAME} and {PAGE_NAME} to {folder}")
