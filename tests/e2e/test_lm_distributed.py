"""Every trainer under torchrun through ``--nproc-per-node / --nnodes / --node-rank /
--rdzv-endpoint``: two processes on one host, a crashed rank and ``--resume``, a rendezvous
nobody answers, hosts that disagree about ``--nnodes``, and two "hosts" made of network
namespaces joined by a veth pair."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .test_lm_cli import TINY, env, forgeml, make_corpus, one_line_error

TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def _rank_of(pid: int) -> int | None:
    try:
        entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    values = dict(e.split(b"=", 1) for e in entries if b"=" in e)
    return int(values[b"RANK"]) if b"RANK" in values and b"TORCHELASTIC_RUN_ID" in values else None


def _start(workdir: Path, *args, extra_env: dict | None = None, prefix: tuple = ()) -> subprocess.Popen:
    return subprocess.Popen([*prefix, sys.executable, "-m", "forgeml.cli", *map(str, args)], cwd=workdir,
                            env={**env(workdir), **(extra_env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _finish(process: subprocess.Popen, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the launcher and its ranks
        out, err = process.communicate()
        pytest.fail(f"did not finish in {timeout} s\n{out}\n{err}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_two_processes_a_crashed_rank_and_resume(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    common = ("lm", "train", corpus, *TINY, "--set", "train.checkpoint_every=2", "--nproc-per-node", "2")
    launcher = _start(tmp_path, *common, "--steps", "100000")
    deadline = time.monotonic() + TIMEOUT_S
    while not list((tmp_path / "runs").glob("*/checkpoint/last.pt")) and time.monotonic() < deadline and launcher.poll() is None:
        time.sleep(0.2)
    victims = [pid for pid in _descendants(launcher.pid) if _rank_of(pid) == 1]
    assert victims, "no rank 1 process found"
    os.kill(victims[0], signal.SIGKILL)
    message = one_line_error(_finish(launcher))
    assert "rank 1 was killed by signal 9" in message and "--resume" in message
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    # "interrupted" when rank 0 got to record it before torchrun stopped it, else still "running":
    # both are resumable, which the resume below proves
    assert json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["status"] in ("interrupted", "running")

    import torch

    target = torch.load(run_dir / "checkpoint" / "last.pt", weights_only=True)["step"] + 4  # past wherever the crash left it
    resumed = _finish(_start(tmp_path, *common, "--steps", str(target), "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("run: ") == 1 and f"run: {run_dir.name}" in resumed.stdout  # rank 0 alone reports
    assert "world size 2" in (run_dir / "train.log").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[-1]["step"] == target and json.loads((run_dir / "bundle" / "metrics.json").read_text())["world_size"] == 2


def test_a_rendezvous_nobody_answers_times_out_with_a_clear_message(tmp_path: Path) -> None:
    started = time.monotonic()
    done = forgeml(tmp_path, "lm", "train", make_corpus(tmp_path / "c"), *TINY, "--nnodes", "2", "--node-rank", "1",
                   "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "--rdzv-timeout", "3", timeout=120)
    message = one_line_error(done)
    assert "rendezvous timed out after 3 s: host 0 did not answer" in message and "--rdzv-endpoint" in message
    assert time.monotonic() - started < 60


def test_hosts_started_with_different_nnodes_are_told_so(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    endpoint = f"127.0.0.1:{_free_port()}"
    common = ("lm", "train", corpus, *TINY, "--steps", "2", "--rdzv-endpoint", endpoint, "--rdzv-timeout", "60")
    host0 = _start(tmp_path, *common, "--nnodes", "2", "--node-rank", "0")
    host1 = _start(tmp_path, *common, "--nnodes", "3", "--node-rank", "1")
    for done in (_finish(host0), _finish(host1)):
        assert done.returncode == 2, done.stderr
        assert "the hosts were started with different --nnodes (2, 3)" in done.stderr


def test_tabular_train_runs_under_torchrun_with_nproc_per_node(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).round(4)
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["y"] = (x @ [1.0, -2.0, 3.0]).round(4)
    frame.to_csv(tmp_path / "data.csv", index=False)
    done = forgeml(tmp_path, "train", "data.csv", "--target", "y", "--set", "train.epochs=2", "--set", "train.progress=false",
                   "--nproc-per-node", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("run: ") == 1
    (log,) = (tmp_path / "runs").glob("*/train.log")
    assert "(world size 2)" in log.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- two hosts
def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@pytest.fixture
def two_hosts():
    """Two network namespaces joined by a veth pair, 10.213.7.1 and .2: nothing else is reachable."""
    if shutil.which("ip") is None:
        pytest.skip("needs the `ip` tool (iproute2) to make network namespaces")
    if os.geteuid() != 0:
        pytest.skip("needs root (or CAP_NET_ADMIN) to make network namespaces")
    tag = uuid.uuid4().hex[:6]
    names, links = (f"fml{tag}a", f"fml{tag}b"), (f"vf{tag}a", f"vf{tag}b")
    try:
        _ip("netns", "add", names[0])
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"cannot create a network namespace here ({exc})")
    try:
        _ip("netns", "add", names[1])
        _ip("link", "add", links[0], "type", "veth", "peer", "name", links[1])
        for name, link, address in zip(names, links, ("10.213.7.1/30", "10.213.7.2/30")):
            _ip("link", "set", link, "netns", name)
            _ip("-n", name, "addr", "add", address, "dev", link)
            _ip("-n", name, "link", "set", link, "up")
            _ip("-n", name, "link", "set", "lo", "up")
        yield names, links
    finally:
        for name in names:  # deleting a namespace deletes its end of the veth pair, and so the pair
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20, check=False)


def test_two_hosts_joined_by_a_veth_pair_train_one_model(two_hosts, tmp_path: Path) -> None:
    names, links = two_hosts
    corpus = make_corpus(tmp_path / "corpus")
    common = ("lm", "train", corpus, *TINY, "--steps", "3", "--nnodes", "2", "--rdzv-endpoint", "10.213.7.1:29500", "--rdzv-timeout", "90")
    hosts = []
    for rank, (name, link) in enumerate(zip(names, links)):
        # each host has its own token cache and runs folder, as separate machines would; gloo is
        # told which interface is the host's (the hostname resolves to an address outside the namespace)
        extra = {"GLOO_SOCKET_IFNAME": link, "FORGEML_CACHE_DIR": str(tmp_path / f"cache{rank}"),
                 "FORGEML_RUNS_DIR": str(tmp_path / f"runs{rank}")}
        hosts.append(_start(tmp_path, *common, "--node-rank", str(rank), extra_env=extra, prefix=("ip", "netns", "exec", name)))
    host0, host1 = _finish(hosts[0], timeout=180), _finish(hosts[1], timeout=180)
    assert host0.returncode == 0 and host1.returncode == 0, f"{host0.stderr}\n{host1.stderr}"
    assert host0.stdout.count("run: ") == 1 and "run: " not in host1.stdout  # node 0 holds global rank 0
    (run_dir,) = [p for p in (tmp_path / "runs0").iterdir() if p.is_dir()]
    assert "world size 2" in (run_dir / "train.log").read_text(encoding="utf-8")
    assert (run_dir / "bundle" / "manifest.json").is_file()
    assert not (tmp_path / "runs1").exists()  # host 1 writes nothing, and needs nothing from host 0's disk
    assert (tmp_path / "cache0").is_dir() and (tmp_path / "cache1").is_dir()
