"""CLI start-up: wall time of ``forgeml --help`` and ``forgeml runs list`` vs ``python -c pass``.

Each command runs N times (default 10) as a fresh process after one untimed warm-up (so the
OS file cache is warm for both); the median is reported, with the interpreter's own start-up
(``python -c pass``) as the baseline. Targets: ``--help`` < 0.3 s, ``runs list`` < 0.5 s.

``runs list`` reads a temporary registry holding a few real runs (trained once with
``forgeml train`` on the bundled penguins data, 1 epoch; an empty registry with --empty-registry).
It also reports which heavy modules (torch, pandas, numpy, sklearn, matplotlib, lightgbm,
pyarrow) each command imports, checked by running the command in-process and reading
``sys.modules``, and the top entries of ``python -X importtime``.

    .venv/bin/python bench/cli_startup.py            # 10 runs each (~30 s alone)
    .venv/bin/python bench/cli_startup.py --quick    # 3 runs each, empty registry
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, ForeignLoad, machine_line, median, thread_env, verdict  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
FORGEML = str(VENV_BIN / "forgeml")
HEAVY = ("torch", "pandas", "numpy", "sklearn", "scipy", "matplotlib", "lightgbm", "pyarrow", "pydantic", "yaml", "rich")
TARGETS = {"--help": 0.3, "runs list": 0.5}

MODULES_PROBE = r"""
import json, sys
from forgeml.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
heavy = %r
print("MODULES " + json.dumps({name: name in sys.modules for name in heavy}))
"""


def timed_runs(command: list[str], runs: int, env: dict[str, str], cwd: str) -> list[float]:
    subprocess.run(command, capture_output=True, env=env, cwd=cwd)  # warm-up, untimed
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, env=env, cwd=cwd)
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr.decode()[-2000:]}")
    return times


def imported_modules(args: list[str], env: dict[str, str], cwd: str) -> dict[str, bool]:
    proc = subprocess.run([PYTHON, "-c", MODULES_PROBE % (HEAVY,), *args], capture_output=True, text=True, env=env, cwd=cwd)
    line = [row for row in proc.stdout.splitlines() if row.startswith("MODULES ")]
    if not line:
        raise RuntimeError(f"module probe failed:\n{proc.stderr[-2000:]}")
    return json.loads(line[-1][len("MODULES "):])


def importtime_top(args: list[str], env: dict[str, str], cwd: str, top: int = 6) -> list[tuple[float, str]]:
    """Largest cumulative import times (ms) for top-level packages under ``-X importtime``."""
    proc = subprocess.run([PYTHON, "-X", "importtime", "-m", "forgeml.cli", *args], capture_output=True, text=True, env=env, cwd=cwd)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, name = line.split(":", 1)[1].split("|")
        if name.startswith(" ") and not name.startswith("  "):  # top level: nested names are indented further
            rows.append((int(cumulative_us) / 1000, name.strip()))
    return sorted(rows, reverse=True)[:top]


def make_registry(directory: Path, runs: int, env: dict[str, str]) -> int:
    """Train ``runs`` tiny real runs into ``directory``; returns how many succeeded."""
    data = ROOT / "forgeml" / "datasets" / "penguins.csv"
    made = 0
    for index in range(runs):
        proc = subprocess.run(
            [FORGEML, "train", str(data), "--target", "Species", "--set", "train.epochs=1", "--set", "train.progress=false",
             "--name", f"bench-{index}", "--runs-dir", str(directory)],
            capture_output=True, text=True, env=env, cwd=str(directory.parent),
        )
        if proc.returncode == 0:
            made += 1
        else:
            print(f"  (could not create run {index}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode})")
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command")
    parser.add_argument("--registry-runs", type=int, default=3, help="real runs put in the temporary registry")
    parser.add_argument("--empty-registry", action="store_true")
    parser.add_argument("--quick", action="store_true", help="3 runs each, empty registry")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.empty_registry = 3, True

    print(f"cli_startup: median of {args.runs} runs per command (after 1 warm-up)")
    print(f"machine: {machine_line()}")
    with tempfile.TemporaryDirectory(prefix="forgeml-bench-") as tmp:
        work = Path(tmp)
        registry = work / "runs"
        registry.mkdir()
        env = thread_env(1)
        env["FORGEML_RUNS_DIR"] = str(registry)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # normal use has .pyc files; let them be written
        env["COLUMNS"] = "100"
        made = 0 if args.empty_registry else make_registry(registry, args.registry_runs, env)
        print(f"registry: {made} run(s) in a temporary folder")

        load = ForeignLoad()
        commands = {
            "python -c pass": [PYTHON, "-c", "pass"],
            "--help": [FORGEML, "--help"],
            "runs list": [FORGEML, "runs", "list"],
        }
        results = {name: timed_runs(command, args.runs, env, str(work)) for name, command in commands.items()}
        share, note = load.report()
        listing = subprocess.run(commands["runs list"], capture_output=True, text=True, env=env, cwd=str(work)).stdout
        modules = {name: imported_modules(command[1:], env, str(work)) for name, command in commands.items() if name != "python -c pass"}
        top = {name: importtime_top(command[1:], env, str(work)) for name, command in commands.items() if name != "python -c pass"}

    base = median(results["python -c pass"])
    print(f"\nBASELINE  python -c pass: median {base * 1000:.0f} ms (min {min(results['python -c pass']) * 1000:.0f})")
    ok_all = True
    for name, target in TARGETS.items():
        value = median(results[name])
        ok = value < target
        ok_all &= ok
        print(f"OURS      forgeml {name:<10}: median {value * 1000:.0f} ms (min {min(results[name]) * 1000:.0f}, max {max(results[name]) * 1000:.0f})"
              f"   = {value / base:.1f}× python start-up   target < {target * 1000:.0f} ms  {verdict(ok)}")
    for name, imported in modules.items():
        loaded = [module for module, present in imported.items() if present]
        torch_note = "torch IMPORTED" if imported.get("torch") else "torch not imported"
        print(f"imports   forgeml {name:<10}: {torch_note}; heavy modules loaded: {', '.join(loaded) or 'none'}")
        print(f"          slowest top-level imports (cumulative ms): " + ", ".join(f"{n} {ms:.0f}" for ms, n in top[name]))
    if made:
        lines = [line for line in listing.splitlines() if line.strip()]
        print(f"runs list printed {len(lines)} lines (registry of {made} runs)")
    print(f"load: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
