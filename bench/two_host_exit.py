"""Issue 17's figure: a two-host run exits after it has finished, every time.

Two "hosts" are network namespaces joined by a veth pair (10.213.7.1 / .2; needs root and the
`ip` tool). Each run starts `forgeml lm train` (or `forgeml train` on a generated table with
`--kind tabular`) on both hosts with `--nnodes 2 --node-rank 0|1`, and waits at most
`--timeout` seconds (default 30) for both launchers to exit with code 0. A launcher still alive
then is a hang: its processes' Python stacks are printed with py-spy (if installed), then the
run's process groups are killed and the loop goes on.

Prints one line per run, then the count of hangs and the slowest run, with PASS when there were
0 hangs and every run ended within the timeout. The baseline is the same loop's own slowest run
(no other tool runs a two-host forgeml job).

    .venv/bin/python bench/two_host_exit.py --runs 50 [--kind lm|tabular] [--timeout 30]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line  # noqa: E402

LM_ARGS = ["lm", "train", "{corpus}", "--preset", "tiny", "--batch-tokens", "256", "--set", "model.block_size=32",
           "--set", "train.eval_every=2", "--set", "train.eval_batches=2", "--set", "train.progress=false", "--threads", "1", "--steps", "3"]
TABULAR_ARGS = ["train", "{table}", "--target", "y", "--model", "mlp", "--set", "train.epochs=2", "--set", "train.progress=false",
                "--set", "train.bagging_folds=1", "--threads", "1"]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


def make_hosts() -> tuple[tuple[str, str], tuple[str, str]]:
    tag = uuid.uuid4().hex[:6]
    names, links = (f"fml{tag}a", f"fml{tag}b"), (f"vf{tag}a", f"vf{tag}b")
    _ip("netns", "add", names[0])
    _ip("netns", "add", names[1])
    _ip("link", "add", links[0], "type", "veth", "peer", "name", links[1])
    for name, link, address in zip(names, links, ("10.213.7.1/30", "10.213.7.2/30")):
        _ip("link", "set", link, "netns", name)
        _ip("-n", name, "addr", "add", address, "dev", link)
        _ip("-n", name, "link", "set", link, "up")
        _ip("-n", name, "link", "set", "lo", "up")
    return names, links


def make_inputs(folder: Path) -> dict[str, str]:
    corpus = folder / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for module in (string, textwrap, json.decoder, json.encoder):
        shutil.copy(module.__file__, corpus / Path(module.__file__).name)
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).round(4)
    lines = ["a,b,c,y"] + [f"{a},{b},{c},{round(a - 2 * b + 3 * c, 4)}" for a, b, c in x]
    (folder / "table.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"corpus": str(corpus), "table": str(folder / "table.csv")}


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        found += map(int, children)
        queue += map(int, children)
    return found


def dump_stacks(process: subprocess.Popen) -> str:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return "(py-spy not installed: no stacks)"
    return "\n".join(subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30).stdout
                     for pid in [process.pid, *_descendants(process.pid)])


def one_run(index: int, kind: str, names, links, inputs: dict[str, str], work: Path, timeout: float) -> tuple[bool, float, str]:
    folder = work / f"run{index}"
    folder.mkdir()
    args = [a.format(**inputs) for a in (LM_ARGS if kind == "lm" else TABULAR_ARGS)]
    common = [*args, "--nnodes", "2", "--rdzv-endpoint", "10.213.7.1:29500", "--rdzv-timeout", "60"]
    processes = []
    started = time.monotonic()
    for rank, (name, link) in enumerate(zip(names, links)):
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": link,
               "FORGEML_CACHE_DIR": str(folder / f"cache{rank}"), "FORGEML_RUNS_DIR": str(folder / f"runs{rank}")}
        processes.append(subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-m", "forgeml.cli", *common, "--node-rank", str(rank)],
                                          cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True))
    outputs, stuck = [], []
    for process in processes:
        try:
            outputs.append(process.communicate(timeout=max(0.1, timeout - (time.monotonic() - started))))
        except subprocess.TimeoutExpired:
            stuck.append(process)
    seconds = time.monotonic() - started
    detail = ""
    if stuck:
        detail = "\n".join(dump_stacks(p) for p in stuck)
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.communicate()
        return False, seconds, detail
    codes = [p.returncode for p in processes]
    if codes != [0, 0]:
        detail = f"exit codes {codes}: " + " | ".join(err.strip().splitlines()[-1] if err.strip() else "" for _, err in outputs)
    return codes == [0, 0], seconds, detail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--kind", choices=("lm", "tabular"), default="lm")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="5 runs")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("skip: needs root and the `ip` tool (iproute2) to make network namespaces")
        return
    runs = 5 if args.quick else args.runs
    print(machine_line())
    names, links = make_hosts()
    work = Path(tempfile.mkdtemp(prefix="forgeml-two-host-"))
    hangs, failures, times = 0, 0, []
    try:
        inputs = make_inputs(work / "inputs")
        for index in range(runs):
            ok, seconds, detail = one_run(index, args.kind, names, links, inputs, work, args.timeout)
            times.append(seconds)
            hung = not ok and not detail.startswith("exit codes")
            hangs += hung
            failures += not ok and not hung
            print(f"run {index + 1}/{runs}: {'ok' if ok else 'HANG' if hung else 'FAILED'} in {seconds:.1f} s{'' if ok else chr(10) + detail}", flush=True)
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20, check=False)
        shutil.rmtree(work, ignore_errors=True)
    slowest = max(times) if times else 0.0
    verdict = "PASS" if hangs == 0 and failures == 0 and slowest < args.timeout else "FAIL"
    print(f"{args.kind}: {runs} two-host runs, {hangs} hangs, {failures} failures; median {sorted(times)[len(times) // 2]:.1f} s, "
          f"slowest {slowest:.1f} s (target: 0 hangs, each < {args.timeout:.0f} s) {verdict}")


if __name__ == "__main__":
    main()
