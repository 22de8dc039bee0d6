"""``forgeml compress``: imports only typer at module level (``forgeml --help`` stays fast)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from forgeml.cli_options import BUNDLE_HELP, RunsDir


def chosen_method(distill: bool, quantize: Optional[str], prune: Optional[float]) -> str:
    """Exactly one of --distill, --quantize, --prune."""
    from forgeml.compress.errors import CompressError

    chosen = [name for name, given in (("distill", distill), ("quantize", quantize is not None), ("prune", prune is not None)) if given]
    if len(chosen) != 1:
        raise CompressError("choose one compression method" if not chosen else f"--{' and --'.join(chosen)} cannot be combined",
                            where="forgeml compress", hint="pass exactly one of --distill, --quantize int8, --prune AMOUNT (compress the result again for a second)")
    return chosen[0]


def method_options(method: str, quantize: Optional[str], prune: Optional[float], structured: bool, settings: list[str]) -> dict[str, Any]:
    """The options dict the method receives (``methods`` docstring); ``--set key=value`` adds any."""
    import yaml

    from forgeml.compress.errors import CompressError

    options: dict[str, Any] = {"quantize": {"dtype": quantize}, "prune": {"amount": prune, "structured": structured}}.get(method, {})
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CompressError(f"--set {item!r} is not key=value", where="--set", hint="e.g. --set epochs=3")
        options[key.strip()] = yaml.safe_load(value)
    return options


def register(app: typer.Typer) -> None:
    @app.command()
    def compress(
        bundle_ref: str = typer.Argument(..., metavar="BUNDLE", help=BUNDLE_HELP),
        distill: bool = typer.Option(False, "--distill", help="Train one small student on the bundle's soft predictions."),
        quantize: Optional[str] = typer.Option(None, "--quantize", metavar="int8", help="int8 weights, dynamic int8 activations for the Linear layers (network families)."),
        prune: Optional[float] = typer.Option(None, "--prune", metavar="AMOUNT", help="Remove this share (0 < AMOUNT < 1) of hidden units / channels, then fine-tune briefly."),
        structured: bool = typer.Option(True, "--structured/--unstructured", help="Prune whole units (smaller, faster; default) or single weights (refused: stored densely they save nothing)."),
        data: Optional[Path] = typer.Option(None, "--data", help="The training file, when the bundle's recorded one (config data.path) is gone or absent; split as training split it."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="New bundle folder (default: beside the bundle, <bundle>-int8 / -pruned / -distilled); must not exist."),
        settings: list[str] = typer.Option([], "--set", help="A method option as key=value (e.g. epochs=3); repeatable."),
        student: Optional[str] = typer.Option(None, "--student", metavar="mlp|gbm|auto", help="--distill: the student, an MLP (default: fastest), one LightGBM, or auto (both; the closer to the teacher is kept)."),
        temperature: Optional[float] = typer.Option(None, "--temperature", help="--distill: softens the teacher's and the student's probabilities (default 2; 1: as they are)."),
        augment: Optional[float] = typer.Option(None, "--augment", help="--distill: new rows (perturbed, mixed) per training row, labelled by the teacher (default 4; 0: training rows only)."),
        seed: Optional[int] = typer.Option(None, "--seed", help="--distill: seeds the new rows and the student (default 0)."),
        runs_dir: Optional[Path] = RunsDir,
    ) -> None:
        """Write a smaller or faster copy of a bundle and a before/after table (metric, size, parameters, latency); the bundle itself is not changed."""
        from forgeml.compress.distill import flag_options
        from forgeml.compress.run import compress_bundle
        from forgeml.console import console

        method = chosen_method(distill, quantize, prune)
        options = {**method_options(method, quantize, prune, structured, settings),
                   **flag_options(method, student=student, temperature=temperature, augment=augment, seed=seed)}
        result = compress_bundle(bundle_ref, method, options,
                                 data=data, output=output, runs_dir=runs_dir, show=True)
        console().print(f"wrote {result.path} (report: {result.path / 'report.html'})")
