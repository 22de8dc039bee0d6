"""The body of ``forgeml tune``: the request from the command line, the study, the trials table,
the refit of the best trial as a normal run, and trials.csv/json beside its bundle."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional


def tune_command(*, source: Path, target: Optional[list[str]], model: Optional[str], trials: int, time_budget: Optional[str], workers: int,
                 storage: Optional[str], study: Optional[str], objective: str, pruner: str, folds: str, set_: list[str], name: Optional[str], refit: bool,
                 threads: Optional[int], runs_dir: Optional[Path], until: Optional[int], worker_index: int) -> None:
    from forgeml.config_base import parse_settings
    from forgeml.console import console as _console
    from forgeml.errors import ConfigError
    from forgeml.evaluate.report import print_metrics
    from forgeml.models.families import FAMILIES
    from forgeml.runs.registry import RunRegistry, default_runs_root
    from forgeml.tune.study import TuneRequest, check_request, run_tune
    from forgeml.workflow import load_config

    if model is not None and model not in FAMILIES:
        raise ConfigError(f"unknown model family {model!r}", where="--model", hint=f"one of {', '.join(FAMILIES)}")
    folds_setting = _folds_setting(folds)
    overrides = parse_settings(set_)
    fixed = frozenset(overrides)  # before the threads: an option the user set is not searched
    threads = threads or (_threads_per_worker(workers) if workers > 1 else None)
    if threads:
        overrides["train.threads"] = threads
    budget = None
    if time_budget:
        from forgeml.train.budget import parse_duration

        budget = parse_duration(time_budget)
    config, data = load_config(source, list(target or []), model, overrides)
    if config.model.type == "auto":  # auto picks the ensemble for tables, which has no space: tune the network
        from forgeml.config import apply_overrides
        from forgeml.models.auto import NETWORK_FAMILY

        config = apply_overrides(config, {"model.type": NETWORK_FAMILY})
    tail = [item for t in target or [] for item in ("--target", t)] + [item for s in set_ for item in ("--set", s)]
    tail += ["--threads", str(threads)] if threads else []
    request = TuneRequest(source=source, data=Path(data), config=config, trials=trials, time_budget=budget, workers=workers, storage=storage,
                          study=study, objectives=tuple(o.strip() for o in objective.split(",") if o.strip()), pruner=pruner, folds=folds_setting,
                          refit=refit, until=until, worker_index=worker_index, runs_root=runs_dir or default_runs_root(), argv_tail=tail,
                          fixed=fixed)
    check_request(request)  # a wrong family, objective or pruner: before reading any data
    summary = run_tune(request, _echo)
    if summary is None:
        return
    from forgeml.tune.results import print_table, write_member, write_trials

    console = _console()
    print_table(summary, console)
    if not refit:
        console.print(f"study {summary['study']} in {summary['storage']}: best trial {summary['best']['trial']}")
        return
    result = refit_best(request, summary, name or f"tune-{Path(data).stem}", RunRegistry(runs_dir))
    written = write_trials(summary, result.bundle_path.parent)
    member = write_member(summary, request.family, _fixed_options(request), result.bundle_path.parent)
    print_metrics(result.metrics, result.task, f"held-out metrics of trial {summary['best']['trial']}'s refit ({result.split} split)")
    console.print(f"run: {result.run_id}\nreport: {result.report_path}\nbundle: {result.bundle_path}\ntrials: {written[0]}\n"
                  f"ensemble member: {member} (forgeml train … --model ensemble --set 'model.members_from=[{member}]' adds it to the ensemble)",
                  markup=False)  # '[/abs/path]' would be read as a closing markup tag


def _fixed_options(request: Any) -> dict[str, Any]:
    """The options given with --set that every trial kept (the member keeps them too)."""
    from forgeml.tune.folds import config_value

    values = {key: config_value(request.config, key) for key in request.fixed if key.startswith(("model.", "train."))}
    return {key: value.model_dump(mode="json") if hasattr(value, "model_dump") else value for key, value in values.items()}


def _folds_setting(folds: str) -> int | str:
    from forgeml.errors import ConfigError

    if folds == "auto":
        return folds
    if not folds.isdigit() or int(folds) < 1:
        raise ConfigError(f"--folds {folds!r} is not auto or a whole number ≥ 1", where="--folds",
                          hint="--folds auto (5 folds up to 5,000 rows), --folds 1 (score on the validation split) or e.g. --folds 3")
    return int(folds)


def refit_best(request: Any, summary: dict[str, Any], name: str, registry: Any) -> Any:
    """The best trial's options on the request's config, trained as ``forgeml train`` would (a
    run folder, a bundle, a report with the Tuning section), on the same split."""
    from forgeml.config import apply_overrides
    from forgeml.train_run import run_training
    from forgeml.tune.results import _finite

    best = summary["best"]
    _echo(f"refitting trial {best['trial']}'s options on the same split")
    config = apply_overrides(request.config, dict(best["params"]))
    return run_training(config, request.data, registry=registry, name=name, resume=False, tuning=_finite(summary))


def _threads_per_worker(workers: int) -> int:
    from forgeml.train.distributed import default_threads

    return max(1, default_threads() // workers)


def _echo(line: str) -> None:
    print(line, flush=True)  # workers print too: a line at a time
