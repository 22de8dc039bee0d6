"""A "running" run whose process is gone (kill -9, out of memory) is marked failed, or
interrupted when its checkpoint can be resumed — not left running forever."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from forgeml.runs.liveness import RunLock, is_dead, mark_dead_runs
from forgeml.runs.registry import RunRegistry


def test_a_held_lock_is_alive_and_a_released_one_is_dead(tmp_path):
    registry = RunRegistry(tmp_path / "runs")
    record = registry.create("alive", "target: y\n", "d.csv")
    lock = RunLock(record.dir)
    assert not is_dead(record.dir) and mark_dead_runs(registry) == []
    assert registry.get(record.id).status == "running"
    lock.release()
    assert is_dead(record.dir)
    (changed,) = mark_dead_runs(registry)
    assert changed.id == record.id and changed.status == "failed" and changed.finished_at
    assert "ERROR failed: the training process stopped without a word" in record.log_path.read_text(encoding="utf-8")
    assert mark_dead_runs(registry) == []  # once


def test_a_run_without_a_lock_file_is_left_alone(tmp_path):
    registry = RunRegistry(tmp_path / "runs")
    record = registry.create("old", "target: y\n", "d.csv")  # from before locks, or another host's
    assert mark_dead_runs(registry) == [] and registry.get(record.id).status == "running"


def test_a_killed_training_process_with_a_checkpoint_becomes_interrupted(tmp_path):
    registry = RunRegistry(tmp_path / "runs")
    record = registry.create("killed", "target: y\n", "d.csv")
    (record.dir / "checkpoint").mkdir()
    (record.dir / "checkpoint" / "last.pt").write_bytes(b"weights")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from forgeml.runs.liveness import RunLock
        lock = RunLock(Path({str(record.dir)!r}))
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert mark_dead_runs(registry) == []  # the other process still trains
    finally:
        holder.kill()  # SIGKILL: no cleanup code runs
        holder.wait(10)
    (changed,) = mark_dead_runs(registry)
    assert changed.status == "interrupted"
    assert registry.latest_resumable("killed").id == record.id  # --resume finds it
    assert "continue it with --resume" in Path(record.log_path).read_text(encoding="utf-8")


def test_a_lock_written_on_another_host_is_never_judged(tmp_path):
    registry = RunRegistry(tmp_path / "runs")
    record = registry.create("elsewhere", "target: y\n", "d.csv")
    (record.dir / ".lock").write_text("4242 some-other-host\n", encoding="utf-8")  # not held here, but not ours to judge
    assert not is_dead(record.dir) and mark_dead_runs(registry) == []
