"""The ``forgeml`` command line.

Commands import what they need inside their bodies: ``forgeml --help`` and ``forgeml runs list``
must not pay for torch, pandas or matplotlib. Every user mistake is a ``ForgeError``, printed
once here as one line (``--debug`` shows the traceback) with a non-zero exit code.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from forgeml.models.families import DEFAULT_FAMILY, FAMILIES
from forgeml.cli_options import BUNDLE_HELP, RunsDir
from forgeml.train.launch import LaunchOptions, launch_if_asked, refuse_one_process_models, with_torchrun_options

app = typer.Typer(add_completion=False, no_args_is_help=True, help="forgeml: raw data → trained, evaluated, reported PyTorch model.")

_STATE = {"debug": False}
# the model families, from the registry (a new family appears here by its registry line alone)
MODEL_HELP = f"Model family: {', '.join(FAMILIES)} (default {DEFAULT_FAMILY}; ensemble is AutoML over a portfolio of the others)."


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks.")) -> None:
    _STATE["debug"] = debug


def _console():
    from forgeml.console import console

    return console()


# ----------------------------------------------------------------------------- init
@app.command()
def init(
    data: Path = typer.Argument(..., help="CSV, TSV, Parquet or JSON lines file."),
    target: list[str] = typer.Option(..., "--target", "-t", help="Column to predict (repeat for several)."),
    output: Path = typer.Option(Path("config.yaml"), "--output", "-o", help="Where to write the config."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    force: bool = typer.Option(False, help="Overwrite an existing file."),
) -> None:
    """Write a config with every inferred feature and default, ready to edit."""
    from forgeml.config import Config, apply_overrides
    from forgeml.errors import ConfigError
    from forgeml.fileio import atomic_write_text
    from forgeml.workflow import load_frame, resolve_config

    if output.exists() and not force:
        raise ConfigError("file exists", where=str(output), hint="use --force to overwrite or -o another path")
    config = Config(target=target)
    if model:
        config = apply_overrides(config, {"model.type": model})
    resolved = resolve_config(config, load_frame(data, config), str(data))
    resolved = Config.from_dict({**resolved.model_dump(mode="json"), "data": {**resolved.data.model_dump(mode="json"), "path": _relative(data, output.parent)}})
    header = f"# forgeml config inferred from {data.name}; edit freely, then: forgeml train {output}\n"
    atomic_write_text(output, header + resolved.to_yaml())
    _console().print(f"wrote {output} ({len(resolved.features)} features, {len(resolved.data.drop)} dropped, task {resolved.task})")


def _relative(path: Path, base: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), base.resolve())


# ----------------------------------------------------------------------------- train
@app.command()
@with_torchrun_options
def train(
    source: Path = typer.Argument(..., help="Data file or image folder (with --target), or config.yaml."),
    target: Optional[list[str]] = typer.Option(None, "--target", "-t", help="Column to predict (repeat for several)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    encoder: Optional[str] = typer.Option(None, "--encoder", help="Local Hugging Face checkpoint folder for --model pretrained (model.text.checkpoint)."),
    time_budget: Optional[str] = typer.Option(None, "--time-budget", help="Training time limit, e.g. 90s, 10m (train.time_budget)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="AutoML preset fast, medium or best (model.preset; implies --model ensemble)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config option: --set train.epochs=20."),
    privacy_epsilon: Optional[float] = typer.Option(None, "--privacy-epsilon", help="Differentially private training (DP-SGD, networks only) spending at most this ε (train.privacy.epsilon)."),
    name: Optional[str] = typer.Option(None, help="Run name (default: the data file's name)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the latest interrupted run from its last checkpoint."),
    threads: Optional[int] = typer.Option(None, help="torch threads (default: the cores this process may use)."),
    log: list[str] = typer.Option([], "--log", help="Also log to tensorboard or mlflow (repeatable; needs that package)."),
    runs_dir: Optional[Path] = RunsDir,
    launch: LaunchOptions = LaunchOptions(),
) -> None:
    """Train, evaluate and report; writes runs/<id>/ with the bundle."""
    if launch.wanted:
        refuse_one_process_models(source, model, preset, set_, private=privacy_epsilon is not None)  # before torchrun starts ranks that would each refuse
    if launch_if_asked(launch):
        return
    from forgeml.config_base import parse_settings
    from forgeml.evaluate.report import print_metrics
    from forgeml.runs.registry import RunRegistry
    from forgeml.train_run import run_training
    from forgeml.workflow import load_config

    overrides = parse_settings(set_)
    if threads is not None:  # --threads 0 is refused by the config, not read as "not given"
        overrides["train.threads"] = threads
    if encoder:
        overrides["model.text.checkpoint"] = encoder
    if privacy_epsilon is not None:
        overrides["train.privacy.epsilon"] = privacy_epsilon
    if time_budget:
        from forgeml.train.budget import parse_duration

        overrides["train.time_budget"] = parse_duration(time_budget)
    if preset:
        model = model or "ensemble"
        overrides["model.preset"] = preset
    config, data = load_config(source, target, model, overrides)
    result = run_training(config, data, registry=RunRegistry(runs_dir), name=name or Path(data).stem, resume=resume, log=log)
    if result is not None:
        print_metrics(result.metrics, result.task, f"held-out metrics ({result.split} split)")
        _console().print(f"run: {result.run_id}\nreport: {result.report_path}\nbundle: {result.bundle_path}")


# ----------------------------------------------------------------------------- evaluate / predict / report
@app.command()
def evaluate(
    bundle_ref: str = typer.Argument(..., metavar="BUNDLE", help=BUNDLE_HELP),
    data: Path = typer.Argument(..., help="Labelled data to evaluate on."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Where report.html and metrics.json go (default: evaluations/<data> beside the bundle)."),
    runs_dir: Optional[Path] = RunsDir,
) -> None:
    """Metrics table and report.html for a bundle on new labelled data."""
    from forgeml.api import Pipeline
    from forgeml.evaluate.report import print_metrics, render_report
    from forgeml.fileio import atomic_write_json, atomic_write_text
    from forgeml.runs.bundle_ref import resolve_bundle

    bundle = resolve_bundle(bundle_ref, runs_dir)
    pipeline = Pipeline.load(bundle)
    metrics = pipeline.evaluate(data)
    evaluation = pipeline.last_evaluation_
    out = output_dir or (bundle.resolve().parent / "evaluations" / data.stem)
    inputs = pipeline.report_inputs(evaluation, title=f"forgeml evaluation — {data.name}")
    if evaluation.rows_dropped:
        inputs.extra_notes.append(f"dropped {evaluation.rows_dropped} rows with a missing target")
    atomic_write_text(out / "report.html", render_report(inputs))
    atomic_write_json(out / "metrics.json", metrics)
    print_metrics(metrics, pipeline.predictor_.task.name, f"metrics on {data.name} ({metrics.get('n', '?')} rows)")
    _console().print(f"report: {out / 'report.html'}")


@app.command()
def predict(
    bundle_ref: str = typer.Argument(..., metavar="BUNDLE", help=BUNDLE_HELP),
    data: Path = typer.Argument(..., help="Rows to predict (the target column may be absent)."),
    output: Path = typer.Option(Path("predictions.csv"), "--output", "-o", help="CSV to write (UTF-8, with a BOM when it holds non-ASCII text, for Excel)."),
    keep: list[str] = typer.Option([], "--keep", "-k", help="An input column to copy in front of the predictions (an id, say); repeatable, or comma-separated."),
    keep_all: bool = typer.Option(False, "--keep-all", help="Copy every input column in front of the predictions."),
    runs_dir: Optional[Path] = RunsDir,
) -> None:
    """Predictions (and class probabilities) for every row, in input order."""
    from forgeml.api import Pipeline
    from forgeml.fileio import atomic_write_csv
    from forgeml.predict import with_inputs
    from forgeml.runs.bundle_ref import resolve_bundle

    predictor = Pipeline.load(resolve_bundle(bundle_ref, runs_dir)).predictor_
    if keep or keep_all:  # read once here, since the kept columns come from the same frame
        frame = predictor.read(data)
        names = list(frame.columns) if keep_all else [name.strip() for item in keep for name in item.split(",") if name.strip()]
        predictions = with_inputs(frame, names, predictor.predict(frame), source=str(data))
    else:
        predictions = predictor.predict(data)
    atomic_write_csv(output, predictions.to_csv(index=False))  # with a BOM when non-ASCII: Excel reads it right
    _console().print(f"wrote {len(predictions)} predictions to {output}")


@app.command()
def report(
    bundle: str = typer.Argument(..., help=BUNDLE_HELP),
    open_: bool = typer.Option(False, "--open", help="Open in the browser."),
    runs_dir: Optional[Path] = RunsDir,
) -> None:
    """Print the path of a bundle's report.html."""
    from forgeml.errors import BundleError
    from forgeml.runs.bundle_ref import resolve_bundle

    path = resolve_bundle(bundle, runs_dir)
    page = path / "report.html"
    if not page.is_file():
        raise BundleError("no report.html here", where=str(path), hint="pass a bundle folder or a run id (see `forgeml runs list`)")
    print(page.resolve())
    if open_:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())


# ----------------------------------------------------------------------------- demo
@app.command()
def demo(runs_dir: Optional[Path] = RunsDir) -> None:
    """Train, evaluate and report on the bundled Palmer penguins data (embedded defaults only)."""
    from forgeml.config import Config
    from forgeml.datasets import DEMO
    from forgeml.evaluate.report import print_metrics
    from forgeml.runs.registry import RunRegistry
    from forgeml.train_run import run_training

    _console().print(f"demo: predict {DEMO.target!r} from {DEMO.path.name} ({DEMO.description})")
    result = run_training(Config(target=DEMO.target), DEMO.path, registry=RunRegistry(runs_dir), name="demo-penguins", resume=False)
    print_metrics(result.metrics, result.task, f"held-out metrics ({result.split} split)")
    _console().print(f"run: {result.run_id}\nreport: {result.report_path}\nbundle: {result.bundle_path}")


# ----------------------------------------------------------------------------- command modules
# Larger command groups (serving, language models, …) live in their own modules, each exposing
# ``register(app)``. Those modules must import only typer at module level, so --help stays fast.
COMMAND_MODULES: tuple[str, ...] = (
    "forgeml.runs.cli",
    "forgeml.export.cli",
    "forgeml.serve.cli",
    "forgeml.ui.cli",
    "forgeml.lm.cli",
    "forgeml.models.leaderboard_cli",
    "forgeml.tune.cli",
    "forgeml.compress.cli",
    "forgeml.explain.cli",
)


def _register_command_modules() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_command_modules()


# ----------------------------------------------------------------------------- entry point
def main() -> None:
    from forgeml.train.ranks import leave, watch_for_aborts

    watch_for_aborts()
    leave(_run())


def _run() -> int:
    """The command's exit code; errors the user can fix are one line on stderr, not a traceback."""
    from forgeml.errors import ForgeError

    try:
        # Without standalone mode typer *returns* the exit code of --help and of Ctrl-C (130).
        code = app(standalone_mode=False)
    except ForgeError as exc:
        if _STATE["debug"]:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder where a file should go, no permission, a full disk: the user's to fix
        if _STATE["debug"]:
            raise
        where = exc.filename2 or exc.filename or "file system"
        print(f"error: {where}: {exc.strerror or exc} — check the path, its permissions and the free space", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _click_exceptions() as exc:
        exc.show()
        return exc.exit_code
    except RuntimeError as exc:
        if _STATE["debug"] or not _lost_a_peer(exc):
            raise
        return 1  # torchrun's launcher names the rank that died and why; the traceback is in the run's train.log
    return code if isinstance(code, int) else 0


def _lost_a_peer(exc: RuntimeError) -> bool:
    """A rank of a torchrun job whose collective failed because another rank died (gloo: "Connection
    closed by peer"): the launcher reports that death in one line, and this rank, racing its own
    stop, would add a traceback that says nothing more."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and (type(exc).__name__ == "DistBackendError" or "by peer" in str(exc))


def _click_exceptions():
    try:  # recent typer (0.29 here) vendors click as typer._click and raises its exceptions, not click's
        from typer._click.exceptions import ClickException
    except ImportError:
        from click import ClickException
    return (ClickException,)


if __name__ == "__main__":
    main()
