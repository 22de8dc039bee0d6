"""``forgeml tune DATA --target Y``: Optuna search over a family's options, the best trial
refitted as a normal run (``forgeml predict/evaluate/serve/leaderboard`` take its bundle).

Typer only at module level: the CLI imports this at start-up (``--help`` stays fast)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from forgeml.cli_options import RunsDir


def register(app: typer.Typer) -> None:
    @app.command()
    def tune(
        source: Path = typer.Argument(..., help="Data file (with --target), or config.yaml."),
        target: Optional[list[str]] = typer.Option(None, "--target", "-t", help="Column to predict (repeat for several)."),
        model: Optional[str] = typer.Option(None, help="Model family to tune: mlp (architecture search too), gbm, catboost, linear, or another network family (default mlp)."),
        trials: int = typer.Option(20, "--trials", "-n", help="Trials to add to the study (all workers together)."),
        time_budget: Optional[str] = typer.Option(None, "--time-budget", help="Time for the trials, e.g. 90s, 10m (the refit of the best comes after); a trial still running then is stopped."),
        workers: int = typer.Option(1, "--workers", "-j", help="Worker processes on this machine sharing the study (default storage: a journal file)."),
        storage: Optional[str] = typer.Option(None, "--storage", help="Where the study lives: FILE.db, FILE.journal, sqlite:///FILE or postgresql://user:pw@host/db (default: runs/tuning/<study>.db or .journal)."),
        study: Optional[str] = typer.Option(None, "--study", help="Study name (default: <data>-<family>); an existing study of that name goes on."),
        objective: str = typer.Option("loss", "--objective", help="loss, or two objectives for a Pareto front: loss,latency or loss,params."),
        pruner: str = typer.Option("hyperband", "--pruner", help="hyperband (default), median or none."),
        folds: str = typer.Option("auto", "--folds", help="Score each trial out of fold over K folds of train + validation (auto: 5 up to 5,000 rows, else 1 = the validation split)."),
        set_: list[str] = typer.Option([], "--set", help="A config option every trial keeps (left out of the search): --set train.epochs=50."),
        name: Optional[str] = typer.Option(None, help="Name of the refitted run (default: tune-<data>)."),
        refit: bool = typer.Option(True, "--refit/--no-refit", help="Refit the best trial as a run (--no-refit: a worker host that only adds trials)."),
        threads: Optional[int] = typer.Option(None, help="torch/LightGBM threads per process (default: the cores shared among the workers)."),
        runs_dir: Optional[Path] = RunsDir,
        until: Optional[int] = typer.Option(None, "--until", hidden=True),
        worker_index: int = typer.Option(0, "--worker-index", hidden=True),
    ) -> None:
        """Search a model family's options (and a network's architecture) with Optuna; refit the best."""
        from forgeml.tune.run import tune_command

        tune_command(source=source, target=target, model=model, trials=trials, time_budget=time_budget, workers=workers, storage=storage,
                     study=study, objective=objective, pruner=pruner, folds=folds, set_=set_, name=name, refit=refit, threads=threads, runs_dir=runs_dir,
                     until=until, worker_index=worker_index)
