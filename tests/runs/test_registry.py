"""Run registry (folders + SQLite index) and the rich views of runs."""
from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from forgeml.errors import RunError
from forgeml.runs.registry import RunRecord, RunRegistry, default_runs_root
from forgeml.runs.views import render_compare, render_list, render_show

CONFIG_A = "target: species\nmodel:\n  type: mlp\n  hidden_size: 64\ntrain:\n  epochs: 5\n"
CONFIG_B = "target: species\nmodel:\n  type: mlp\n  hidden_size: 128\ntrain:\n  epochs: 5\n"


@pytest.fixture
def registry(tmp_path: Path) -> RunRegistry:
    return RunRegistry(tmp_path / "runs")


def _text(renderable: object) -> str:
    console = Console(record=True, width=120)
    console.print(renderable)
    return console.export_text()


# ----------------------------------------------------------------------------- registry
def test_run_ids_keep_names_in_any_script(registry: RunRegistry) -> None:
    """A Chinese file name stays readable in the id (it used to become a bare "run"); the id is
    still one path segment, and a prefix in that script finds the run."""
    chinese = registry.create("订单数据 2024/Q1", CONFIG_A, "订单数据.csv")
    assert re.fullmatch(r"\d{8}-\d{6}-订单数据-2024-q1-[0-9a-f]{4}", chinese.id), chinese.id
    assert registry.get(chinese.id[:20]).id == chinese.id
    assert re.fullmatch(r"\d{8}-\d{6}-cafe-[0-9a-f]{4}", registry.create("Ｃａｆé!", CONFIG_A, "x.csv").id.replace("café", "cafe"))
    assert registry.create("___", CONFIG_A, "x.csv").id.split("-")[2] == "run"


def test_create_makes_folder_config_and_running_row(registry: RunRegistry) -> None:
    record = registry.create("Penguins!", CONFIG_A, "penguins.csv")
    assert re.fullmatch(r"\d{8}-\d{6}-penguins-[0-9a-f]{4}", record.id)
    assert record.dir == registry.root / record.id and record.dir.is_dir()
    assert record.config_path.read_text(encoding="utf-8") == CONFIG_A
    assert (registry.root / "index.sqlite").is_file()
    stored = registry.get(record.id)
    assert stored.status == "running" and stored.name == "Penguins!" and stored.data_source == "penguins.csv"
    with sqlite3.connect(registry.root / "index.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_finish_stores_results(registry: RunRegistry) -> None:
    record = registry.create("iris", CONFIG_A, "iris.csv")
    registry.finish(record.id, "completed", "multiclass", "mlp", "accuracy", 0.93, {"test": {"accuracy": 0.93}})
    stored = registry.get(record.id)
    assert stored.status == "completed" and stored.finished_at is not None
    assert (stored.task, stored.model) == ("multiclass", "mlp")
    assert (stored.headline_metric, stored.headline_value) == ("accuracy", 0.93)
    assert stored.metrics == {"test": {"accuracy": 0.93}}
    assert json.loads((record.dir / "run.json").read_text())["status"] == "completed"
    with pytest.raises(ValueError):
        registry.finish(record.id, "done")  # type: ignore[arg-type]


def test_list_is_newest_first_and_limited(registry: RunRegistry) -> None:
    ids = [registry.create(f"run{i}", CONFIG_A, "d.csv").id for i in range(4)]
    assert [r.id for r in registry.list()] == ids[::-1]
    assert [r.id for r in registry.list(limit=2)] == ids[:1:-1]
    assert RunRegistry(registry.root / "elsewhere").list() == []


def test_get_by_prefix_unknown_and_ambiguous(registry: RunRegistry) -> None:
    first = registry.create("alpha", CONFIG_A, "d.csv")
    second = registry.create("beta", CONFIG_A, "d.csv")
    stamp_len = len("20261123-101512-")
    assert registry.get(second.id[: stamp_len + 2]).id == second.id  # "...-be"
    assert registry.get("latest").id == second.id
    with pytest.raises(RunError, match="no run matches") as info:
        registry.get("nope")
    assert first.id in info.value.hint and second.id in info.value.hint
    if first.id[:stamp_len] == second.id[:stamp_len]:
        ambiguous = first.id[:stamp_len]
    else:
        ambiguous = first.id[:8]  # same date
    with pytest.raises(RunError, match="matches several runs"):
        registry.get(ambiguous)


def test_like_wildcards_are_literal(registry: RunRegistry) -> None:
    registry.create("alpha", CONFIG_A, "d.csv")
    with pytest.raises(RunError, match="no run matches"):
        registry.get("%")
    with pytest.raises(RunError, match="no run matches"):
        registry.get("________")


def test_metrics_history_round_trip(registry: RunRegistry) -> None:
    record = registry.create("h", CONFIG_A, "d.csv")
    registry.append_metrics(record.id, {"epoch": 0, "val_loss": 0.9})
    registry.append_metrics(record.id, {"epoch": 1, "val_loss": 0.5})
    with open(record.metrics_path, "a", encoding="utf-8") as handle:
        handle.write('{"epoch": 2, "val_lo')  # a crash mid-line
    assert registry.history(record.id) == [{"epoch": 0, "val_loss": 0.9}, {"epoch": 1, "val_loss": 0.5}]
    with pytest.raises(RunError):
        registry.append_metrics("20000101-000000-ghost-0000", {"epoch": 0})
    registry.append_metrics(record.id, {"epoch": 2, "val_loss": 0.4})  # the next row after the cut line survives
    assert registry.history(record.id)[-1] == {"epoch": 2, "val_loss": 0.4}


def test_history_keeps_the_latest_row_of_a_re_run_epoch_and_averages_bagged_members(registry: RunRegistry) -> None:
    record = registry.create("h", CONFIG_A, "d.csv")
    for row in ({"epoch": 1, "val_loss": 0.9}, {"epoch": 2, "val_loss": 0.7}, {"epoch": 2, "val_loss": 0.6}):  # resumed after epoch 1
        registry.append_metrics(record.id, row)
    assert registry.history(record.id) == [{"epoch": 1, "val_loss": 0.9}, {"epoch": 2, "val_loss": 0.6}]
    bagged = registry.create("b", CONFIG_A, "d.csv")
    for row in ({"fold": 0, "epoch": 1, "val_loss": 1.0, "best": True}, {"fold": 0, "epoch": 2, "val_loss": 0.5},
                {"fold": 1, "epoch": 1, "val_loss": 3.0}):
        registry.append_metrics(bagged.id, row)
    assert registry.history(bagged.id) == [{"epoch": 1, "folds": 2, "val_loss": 2.0}, {"epoch": 2, "folds": 1, "val_loss": 0.5}]


def test_latest_resumable_needs_a_checkpoint(registry: RunRegistry) -> None:
    done = registry.create("a", CONFIG_A, "d.csv")
    interrupted = registry.create("a", CONFIG_A, "d.csv")
    other = registry.create("b", CONFIG_A, "d.csv")
    no_checkpoint = registry.create("a", CONFIG_A, "d.csv")
    for record in (done, interrupted, other):
        record.checkpoint_path.parent.mkdir()
        record.checkpoint_path.write_bytes(b"x")
    registry.finish(done.id, "completed")
    registry.finish(interrupted.id, "interrupted")
    assert registry.latest_resumable("a").id == interrupted.id
    assert registry.latest_resumable().id == other.id  # still "running"
    assert registry.latest_resumable("zzz") is None
    assert no_checkpoint.id not in {registry.latest_resumable("a").id}


def test_corrupted_index_is_a_run_error_and_kept(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    index = root / "index.sqlite"
    garbage = b"this is not a database" * 100
    index.write_bytes(garbage)
    with pytest.raises(RunError, match="damaged") as info:
        RunRegistry(root).list()
    assert "index.sqlite" in info.value.hint
    assert index.read_bytes() == garbage  # user files are never deleted


def test_lost_index_is_rebuilt_from_run_folders(registry: RunRegistry) -> None:
    record = registry.create("keep", CONFIG_A, "d.csv")
    registry.finish(record.id, "completed", "binary", "gbm", "roc_auc", 0.8, {"roc_auc": 0.8})
    for suffix in ("", "-wal", "-shm"):
        Path(f"{registry.index_path}{suffix}").unlink(missing_ok=True)
    fresh = RunRegistry(registry.root).get(record.id[:-2])
    assert (fresh.status, fresh.model, fresh.headline_value) == ("completed", "gbm", 0.8)


def test_default_root_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORGEML_RUNS_DIR", str(tmp_path / "mine"))
    assert default_runs_root() == tmp_path / "mine"
    monkeypatch.delenv("FORGEML_RUNS_DIR")
    assert default_runs_root() == Path("runs")


def test_two_processes_can_write(registry: RunRegistry) -> None:
    registry.list()  # create the index
    code = (
        "import sys; from forgeml.runs.registry import RunRegistry\n"
        "r = RunRegistry(sys.argv[1])\n"
        "for i in range(15): r.create('p', 'x: 1', 'd')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(registry.root)]) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert len(registry.list(limit=100)) == 30


def test_runs_modules_stay_light() -> None:
    code = (
        "import sys, forgeml.runs.registry, forgeml.runs.views\n"
        "heavy = [m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- views
def _finished(registry: RunRegistry, name: str, config: str, accuracy: float, losses: list[float]) -> RunRecord:
    record = registry.create(name, config, "penguins.csv")
    for epoch, loss in enumerate(losses):
        registry.append_metrics(record.id, {"epoch": epoch, "train_loss": loss + 0.1, "val_loss": loss})
    return registry.finish(
        record.id, "completed", "multiclass", "mlp", "accuracy", accuracy, {"test": {"accuracy": accuracy, "f1_macro": 0.5}}
    )


def test_render_list(registry: RunRegistry) -> None:
    done = _finished(registry, "penguins", CONFIG_A, 0.9123, [0.5])
    running = registry.create("second", CONFIG_A, "d.csv")
    text = _text(render_list(registry.list()))
    assert done.id in text and running.id in text
    assert "accuracy=0.9123" in text and "completed" in text and "running" in text
    assert text.index(running.id) < text.index(done.id)
    assert "no runs yet" in _text(render_list([]))


def test_render_show(registry: RunRegistry) -> None:
    record = _finished(registry, "penguins", CONFIG_A, 0.9, [0.8, 0.3, 0.4])
    text = _text(render_show(record, registry.history(record.id)))
    assert record.id in text and "completed" in text
    assert "test.accuracy" in text and "0.9000" in text and "test.f1_macro" in text
    assert re.search(r"epochs run\s+3", text)
    assert re.search(r"best epoch\s+1 \(val_loss = 0.3000\)", text)
    assert str(record.config_path) in text


def test_render_compare(registry: RunRegistry) -> None:
    a = _finished(registry, "a", CONFIG_A, 0.80, [0.5, 0.4])
    b = _finished(registry, "b", CONFIG_B, 0.85, [0.5, 0.4, 0.3, 0.35])
    text = _text(render_compare(a, b, registry.history(a.id), registry.history(b.id)))
    assert _has_row(text, "test.accuracy", "0.8000", "0.8500", "+0.0500")
    assert _has_row(text, "test.f1_macro", "0.5000", "0.5000", "+0.0000")
    assert _has_row(text, "config: model.hidden_size", "64", "128")
    assert "train.epochs" not in text  # equal keys are not listed
    assert _has_row(text, "epochs run", "2", "4")
    assert _has_row(text, "best epoch", "1", "2")


def _has_row(text: str, *cells: str) -> bool:
    """A table row holding exactly these cells in order, whatever the borders and padding."""
    pattern = r"[│\s]+".join(re.escape(cell) for cell in cells)
    return any(re.search(rf"^[│\s]*{pattern}[│\s]*$", line) for line in text.splitlines())


def test_reopen_marks_a_resumed_run_running_again(registry: RunRegistry) -> None:
    record = registry.create("r", CONFIG_A, "d.csv")
    registry.finish(record.id, "interrupted")
    reopened = registry.reopen(record.id)
    assert reopened.status == "running" and reopened.finished_at is None
    assert registry.get(record.id).status == "running"
    assert json.loads((record.dir / "run.json").read_text())["status"] == "running"


def test_compare_colours_follow_each_metrics_direction(registry: RunRegistry) -> None:
    """b − a is green when b is better: a smaller rmse/mae/loss, a larger r2/accuracy; counts stay plain."""
    a = registry.finish(registry.create("a", CONFIG_A, "d.csv").id, "completed", "regression", "mlp", "r2", 0.5,
                        {"rmse": 2.0, "mae": 1.0, "r2": 0.5, "n": 100, "per_target": {"y": {"mape": 0.3, "r2": 0.5}}})
    b = registry.finish(registry.create("b", CONFIG_A, "d.csv").id, "completed", "regression", "mlp", "r2", 0.4,
                        {"rmse": 1.0, "mae": 1.5, "r2": 0.4, "n": 120, "per_target": {"y": {"mape": 0.2, "r2": 0.6}}})
    table = render_compare(a, b, [], [])
    names = [str(cell) for cell in table.columns[0]._cells]
    deltas = dict(zip(names, table.columns[3]._cells))
    styles = {name: getattr(deltas[name], "style", "") for name in ("rmse", "mae", "r2", "n", "per_target.y.mape", "per_target.y.r2")}
    assert styles == {"rmse": "green", "mae": "red", "r2": "red", "n": "", "per_target.y.mape": "green", "per_target.y.r2": "green"}


def test_runs_list_piped_keeps_whole_names(tmp_path: Path) -> None:
    """Piped (not a terminal, no COLUMNS), rich would cut the table to 80 columns: names lost to '…'."""
    registry = RunRegistry(tmp_path / "runs")
    long_name = "quarterly-sales-forecast-by-region-and-channel"
    registry.finish(registry.create(long_name, CONFIG_A, "d.csv").id, "completed", "regression", "gbm", "r2", 0.91, {"r2": 0.91})
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("COLUMNS", "LINES")}
    done = subprocess.run([sys.executable, "-m", "forgeml.cli", "runs", "list", "--runs-dir", str(registry.root)],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert long_name in done.stdout and "r2=0.9100" in done.stdout and "…" not in done.stdout
    (first, second) = [r.id for r in registry.list()] + [registry.create("b", CONFIG_A, "d.csv").id]
    compared = subprocess.run([sys.executable, "-m", "forgeml.cli", "runs", "compare", first, second, "--runs-dir", str(registry.root)],
                              capture_output=True, text=True, env=env, check=False)
    assert compared.returncode == 0 and f"a: {first}" in compared.stdout and f"b: {second}" in compared.stdout, compared
