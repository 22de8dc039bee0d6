"""The harness of the bad-input tables (tests/e2e/test_bad_input*.py): each case makes its files
in a folder of its own and names the CLI arguments; every case of a table is started at once and
each test waits for its own. Snapshots of the folder (and of the bundle a case reads) before and
after prove the inputs are untouched.

Every table also runs ``test_every_case_is_one_error_line_or_a_result``: no traceback, and either
exit 0 or exactly one ``error:`` line (``data:`` notes may come before it, nothing else).
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SENTINEL = "an older predictions file the user wants to keep\n"

# name → (make the files in the case folder and return the CLI arguments). ``bundle`` is the
# session's trained bundle (read-only); cases that damage a bundle damage their own copy.
Case = Callable[[Path, Path, pd.DataFrame], list]


def snapshot(*folders: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and mtime, outside the run registry a training creates."""
    files = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "runs" not in path.relative_to(folder).parts:
                files[str(path)] = (path.read_bytes(), path.stat().st_mtime_ns)
    return files


@dataclass
class Outcome:
    result: object  # conftest.CLIResult
    before: dict
    after: dict
    folder: Path


def cases_of(namespace: dict) -> dict[str, Case]:
    """A module's ``case_*`` functions by name (without the prefix), in the order written."""
    return {name[len("case_"):]: fn for name, fn in namespace.items() if name.startswith("case_")}


def start_cases(cases: dict[str, Case], tmp_path_factory, bundle: Path, cli, cli_pool, frame: pd.DataFrame) -> dict[str, Future]:
    """Every case started at once; ``outcomes[name].result()`` is its ``Outcome``."""

    def run(name: str, case: Case) -> Outcome:
        folder = tmp_path_factory.mktemp(name)
        args = case(folder, bundle, frame)
        before = snapshot(folder, bundle)
        result = cli(*args, cwd=folder)
        return Outcome(result, before, snapshot(folder, bundle), folder)

    return {name: cli_pool.submit(run, name, case) for name, case in cases.items()}


def assert_one_line_or_result(outcome: Outcome) -> None:
    """The table's rule: no traceback anywhere; exit 0, or exit 2 with exactly one ``error:`` line
    (what, where, what to do) after any ``data:`` notes; and never a changed input."""
    result = outcome.result
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    if result.returncode == 0:
        assert not errors, result
    else:
        assert result.returncode == 2, result
        assert len(errors) == 1 and lines[-1] == errors[0], result
        assert all(line.startswith("data: ") for line in lines[:-1]), result
        assert " — " in errors[0], f"no hint (what to do) in: {errors[0]}"
    kept = {name: value for name, value in outcome.after.items() if name in outcome.before}
    assert kept == outcome.before, "an input file was changed or removed"


def assert_one_clear_line(outcome: Outcome, *needles: str) -> str:
    """A refusal: exit 2, stderr is one ``error:`` line holding every needle and a hint, nothing
    was changed or added, and no bundle was written."""
    result = outcome.result
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in: {lines[0]}"
    assert " — " in lines[0], f"no hint (what to do) in: {lines[0]}"
    assert outcome.after == outcome.before, "an input file was changed, added or removed"
    assert not list(outcome.folder.glob("runs/*/bundle")), "a failed run wrote a bundle"
    return lines[0]


# ----------------------------------------------------------------------------- argument builders
def train_args(file: str, target: str = "price") -> list:
    return ["train", file, "--target", target, "--runs-dir", "runs"]


def init_args(file: str, target: str = "price") -> list:
    # init reads and checks the data exactly as train does, without importing torch: the cheaper
    # door for the loader's errors (the commonest typos still go through train)
    return ["init", file, "--target", target]


def predict_args(bundle: Path | str, folder: Path) -> list:
    (folder / "predictions.csv").write_text(SENTINEL, encoding="utf-8")  # must survive a failure
    return ["predict", bundle, "new.csv", "-o", "predictions.csv"]


def copy_bundle(bundle: Path, folder: Path) -> Path:
    return Path(shutil.copytree(bundle, folder / "bundle"))
