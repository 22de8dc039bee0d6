"""The run registry: one folder per run, and a small SQLite index to list and find them fast.

Layout under the root (``$FORGEML_RUNS_DIR`` or ``./runs``)::

    index.sqlite              the index (WAL mode, so a training process and `forgeml runs list`
                              can use it at the same time)
    <run_id>/config.yaml      the resolved config, written atomically at creation
    <run_id>/run.json         the run's record; the folders are the truth and the index can be
                              rebuilt from these files if it is lost
    <run_id>/metrics.jsonl    one JSON object per line, appended during training
    <run_id>/train.log        the training log
    <run_id>/bundle/          the trained model bundle
    <run_id>/checkpoint/      checkpoints; ``last.pt`` makes a run resumable

Run ids are ``YYYYmmdd-HHMMSS-<slug>-<4 hex>``: they sort by time, say what the run was, and
a few characters are enough to name one (``get`` accepts any unique prefix).
This module imports neither torch nor pandas: ``forgeml runs list`` must start instantly.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import sqlite3
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Literal

from forgeml.errors import RunError
from forgeml.fileio import _json_default, atomic_write_json, atomic_write_text
from forgeml.runs.history import epoch_rows, epochs_all_members_trained, step_name  # noqa: F401  (imported from here by callers)

FinalStatus = Literal["completed", "failed", "interrupted"]
FINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "interrupted"})
RESUMABLE_STATUSES: tuple[str, ...] = ("running", "interrupted")
INDEX_NAME = "index.sqlite"
# Seconds a writer waits for another process's lock before giving up.
BUSY_TIMEOUT_S = 30.0
SET_UP_RETRY_S = 0.05  # between attempts to set up a new index another process is setting up

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    task TEXT,
    model TEXT,
    data_source TEXT,
    headline_metric TEXT,
    headline_value REAL,
    metrics TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at);
"""
_COLUMNS = (
    "id", "name", "status", "created_at", "finished_at", "task", "model", "data_source",
    "headline_metric", "headline_value", "metrics",
)


def default_runs_root() -> Path:
    """Where runs live unless told otherwise: ``$FORGEML_RUNS_DIR``, else ``./runs``."""
    return Path(os.environ.get("FORGEML_RUNS_DIR", "runs"))


def _in_run(*parts: str) -> property:
    """A read-only path inside the run's folder (``record.log_path``: ``<dir>/train.log``)."""
    def path(record: "RunRecord") -> Path:
        return record.dir.joinpath(*parts)

    return property(path)


@dataclass
class RunRecord:
    """One run as the index knows it. ``created_at``/``finished_at`` are ISO 8601 in UTC."""

    id: str
    dir: Path
    name: str
    status: str
    created_at: str
    finished_at: str | None = None
    task: str | None = None
    model: str | None = None
    data_source: str | None = None
    headline_metric: str | None = None
    headline_value: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    # what a run folder holds, by name
    config_path = _in_run("config.yaml")
    metrics_path = _in_run("metrics.jsonl")
    log_path = _in_run("train.log")
    bundle_dir = _in_run("bundle")
    checkpoint_path = _in_run("checkpoint", "last.pt")

    @property
    def has_checkpoint(self) -> bool:
        """A last checkpoint here, or in a bagged run's ``checkpoint/fold<k>/`` (or its finished folds)."""
        folder = self.dir / "checkpoint"
        return self.checkpoint_path.is_file() or any(folder.glob("fold*/last.pt")) or any(folder.glob("fold*/finished/summary.json"))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["dir"] = str(self.dir)
        return data


class RunRegistry:
    """Create, finish, list and find runs under ``root``; the root and index appear on first use."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else default_runs_root()
        self._ready = False

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_NAME

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    # ------------------------------------------------------------------ writing
    def create(self, name: str, config_yaml: str, data_source: str) -> RunRecord:
        """Make the run folder, write its config, and index it with status "running"."""
        self.root.mkdir(parents=True, exist_ok=True)
        now = datetime.now(timezone.utc)
        stamp = now.astimezone().strftime("%Y%m%d-%H%M%S")
        for _ in range(20):  # a clash needs the same second, name and 16 random bits
            run_id = f"{stamp}-{_slug(name)}-{secrets.token_hex(2)}"
            try:
                (self.root / run_id).mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 20 collisions in a row means something else is wrong
            raise RunError("could not pick a free run id", where=str(self.root))
        record = RunRecord(
            id=run_id, dir=self.root / run_id, name=name, status="running",
            created_at=now.isoformat(timespec="microseconds"), data_source=data_source,
        )
        atomic_write_text(record.config_path, config_yaml)
        self._write_record_file(record)
        with self._connect() as db:
            _insert(db, record)
        return record

    def finish(
        self,
        run_id: str,
        status: FinalStatus,
        task: str | None = None,
        model: str | None = None,
        headline_metric: str | None = None,
        headline_value: float | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Mark a run completed, failed or interrupted, with its final numbers."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {sorted(FINAL_STATUSES)}, got {status!r}")
        record = self.get(run_id)
        record.status = status
        record.finished_at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        record.task = task if task is not None else record.task
        record.model = model if model is not None else record.model
        record.headline_metric = headline_metric
        record.headline_value = None if headline_value is None else float(headline_value)
        record.metrics = json.loads(json.dumps(metrics or {}, default=_json_default))
        with self._connect() as db:
            db.execute(
                "UPDATE runs SET status=?, finished_at=?, task=?, model=?, headline_metric=?,"
                " headline_value=?, metrics=? WHERE id=?",
                (record.status, record.finished_at, record.task, record.model, record.headline_metric,
                 record.headline_value, json.dumps(record.metrics), record.id),
            )
        self._write_record_file(record)
        return record

    def reopen(self, run_id: str) -> RunRecord:
        """Mark a resumed run as running again (``runs list`` and the dashboard show it live)."""
        record = self.get(run_id)
        record.status, record.finished_at = "running", None
        with self._connect() as db:
            db.execute("UPDATE runs SET status=?, finished_at=NULL WHERE id=?", (record.status, record.id))
        self._write_record_file(record)
        return record

    def delete(self, run_id: str) -> None:
        """Remove a finished run: its folder is moved into ``.trash/`` first (one rename, so the
        index never points at half a folder, and a rebuilt index does not see it), then its index
        row goes, then the moved folder. A running run is refused."""
        import shutil

        record = self.get(run_id)
        if record.status == "running":
            raise RunError(f"run {record.id} is still running", where=str(record.dir), hint="wait for it to finish, or stop it first")
        trash = self.root / ".trash" / record.id
        if record.dir.exists():
            trash.parent.mkdir(exist_ok=True)
            os.replace(record.dir, trash)
        with self._connect() as db:
            db.execute("DELETE FROM runs WHERE id=?", (record.id,))
        shutil.rmtree(trash, ignore_errors=True)

    def append_metrics(self, run_id: str, row: dict[str, Any]) -> None:
        """Append one JSON line to the run's metrics.jsonl, flushed so a crash loses at most it."""
        path = self.run_dir(run_id) / "metrics.jsonl"
        if not path.parent.is_dir():
            raise RunError(f"no run folder for {run_id!r}", where=str(self.root), hint="create the run first")
        line = json.dumps(row, default=_json_default, ensure_ascii=False)
        with open(path, "a+b") as handle:
            # a process killed mid-write leaves a line without its newline: start on a fresh line,
            # so the cut line is the only one lost (``history`` skips it)
            size = handle.seek(0, os.SEEK_END)
            cut = False
            if size:
                handle.seek(size - 1)
                cut = handle.read(1) != b"\n"
            handle.write((("\n" if cut else "") + line + "\n").encode("utf-8"))
            handle.flush()

    # ------------------------------------------------------------------ reading
    def list(self, limit: int = 50) -> list[RunRecord]:
        """The newest ``limit`` runs, newest first."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (int(limit),),
            ).fetchall()
        return [self._record(row) for row in rows]

    def get(self, run_id_or_prefix: str) -> RunRecord:
        """The run whose id is, or uniquely starts with, ``run_id_or_prefix`` ("latest": newest).

        Raises ``RunError`` for no match (listing recent ids) or several matches.
        """
        key = run_id_or_prefix.strip()
        if key == "latest":
            newest = self.list(limit=1)
            if not newest:
                raise RunError("no runs yet", where=str(self.root), hint="`forgeml train` creates one")
            return newest[0]
        select = f"SELECT {', '.join(_COLUMNS)} FROM runs"
        with self._connect() as db:
            row = db.execute(f"{select} WHERE id = ?", (key,)).fetchone()
            rows = [row] if row else db.execute(
                f"{select} WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at DESC LIMIT 6",
                (_like_prefix(key),),
            ).fetchall()
        if len(rows) == 1 and key:
            return self._record(rows[0])
        if not rows or not key:
            recent = [record.id for record in self.list(limit=5)]
            hint = f"recent runs: {', '.join(recent)}" if recent else "no runs yet: `forgeml train` creates one"
            raise RunError(f"no run matches {run_id_or_prefix!r}", where=str(self.root), hint=hint)
        shown = ", ".join(row[0] for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise RunError(
            f"{run_id_or_prefix!r} matches several runs: {shown}",
            where=str(self.root),
            hint="give more characters of the run id",
        )

    def history(self, run_id: str) -> list[dict[str, Any]]:
        """The rows of metrics.jsonl; a line cut short by a crash is skipped, not fatal."""
        record = self.get(run_id)
        try:
            text = record.metrics_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        rows = []
        for line in text.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                row = json.loads(line)
                if isinstance(row, dict):
                    rows.append(row)
        return epoch_rows(rows)

    def latest_resumable(self, name: str | None = None) -> RunRecord | None:
        """The newest running or interrupted run (of ``name``, if given) with a last checkpoint."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE status IN (?, ?)"
        params: list[Any] = list(RESUMABLE_STATUSES)
        if name is not None:
            query += " AND name = ?"
            params.append(name)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created_at DESC, rowid DESC", params).fetchall()
        for row in rows:
            record = self._record(row)
            if record.has_checkpoint:
                return record
        return None

    # ------------------------------------------------------------------ index
    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection; SQLite errors become ``RunError`` with what to do."""
        path = self.index_path
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            is_new = not path.exists()
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise RunError(f"cannot open the run index ({exc})", where=str(path), hint="check the folder's permissions") from None
        try:
            with contextlib.closing(db):
                # connect(timeout=...) is SQLite's busy timeout: writers wait for each other.
                if not self._ready:
                    self._set_up(db, is_new)
                    self._ready = True
                yield db
        except sqlite3.IntegrityError:
            raise  # a bug in this module, not a damaged file
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise RunError(
                    "the run index stayed locked by another process",
                    where=str(path), hint="try again when the other forgeml command has finished",
                ) from None
            raise _corrupted(path, exc) from None
        except sqlite3.DatabaseError as exc:
            raise _corrupted(path, exc) from None

    def _set_up(self, db: sqlite3.Connection, is_new: bool) -> None:
        """WAL mode and the schema, retried: switching a new index's journal mode fails at once (no
        busy wait) when several forgeml commands start together on an empty runs folder."""
        for attempt in range(int(BUSY_TIMEOUT_S / SET_UP_RETRY_S) + 1):
            try:
                db.execute("PRAGMA journal_mode = WAL")  # persistent; readers never block writers
                db.executescript(_SCHEMA)
                return self._rebuild_from_folders(db) if is_new else None
            except sqlite3.OperationalError as exc:
                if not ("locked" in str(exc) or "busy" in str(exc)) or attempt * SET_UP_RETRY_S >= BUSY_TIMEOUT_S:
                    raise
                time.sleep(SET_UP_RETRY_S)

    def _rebuild_from_folders(self, db: sqlite3.Connection) -> None:
        """A fresh index over existing run folders (index deleted or moved): re-index their run.json."""
        for record_file in sorted(self.root.glob("*/run.json")):
            try:
                data = json.loads(record_file.read_text(encoding="utf-8"))
                record = RunRecord(**{**data, "dir": record_file.parent})
            except (OSError, ValueError, TypeError):
                continue  # an unreadable record is left alone; the folder stays as it is
            db.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _row(record))

    def _record(self, row: tuple) -> RunRecord:
        data = dict(zip(_COLUMNS, row))
        data["metrics"] = json.loads(data["metrics"] or "{}")
        return RunRecord(dir=self.root / data["id"], **data)

    def _write_record_file(self, record: RunRecord) -> None:
        data = record.to_dict()
        data.pop("dir")  # the folder is wherever run.json is; roots can move
        atomic_write_json(record.dir / "run.json", data)


def _insert(db: sqlite3.Connection, record: RunRecord) -> None:
    # REPLACE: a fresh index may already hold this run, re-indexed from its run.json.
    db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _row(record))


def _row(record: RunRecord) -> tuple:
    data = asdict(record)
    data["metrics"] = json.dumps(record.metrics, default=_json_default)
    return tuple(data[column] for column in _COLUMNS)


def _corrupted(path: Path, exc: Exception) -> RunError:
    return RunError(
        f"the run index is damaged or not a database ({exc})",
        where=str(path),
        hint=f"rename or move {path.name} aside (the run folders are not affected); "
        "forgeml rebuilds the index from the run folders on next use",
    )


def _slug(name: str) -> str:
    """A short, file-name-safe form of the run name (falls back to "run"): letters and digits of
    any script, so a run of 订单数据.csv is ``…-订单数据-…`` rather than a bare "run"."""
    name = unicodedata.normalize("NFKC", name).lower()
    slug = re.sub(r"[\W_]+", "-", name).strip("-")[:20].strip("-")
    return slug or "run"


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
