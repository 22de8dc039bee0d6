"""Where a study lives: one file under the runs folder by default, PostgreSQL across hosts.

- by default, for one process or several worker processes on one machine: Optuna's journal
  storage on a file (``runs/tuning/<study>.journal``): appends under a file lock, no database
  server, no "database is locked" errors that SQLite gives concurrent writers, and a pruner's
  report at 3 ms where SQLite takes 17 ms; ``--storage FILE.db`` gives SQLite (with heartbeats);
- workers on several machines: ``postgresql://user:password@host:5432/db`` (the ``postgres``
  extra brings the driver), with heartbeats so a dead host's trial is failed by the others.

A worker killed mid-trial leaves its trial RUNNING. With heartbeats (SQLite, PostgreSQL) Optuna
fails it once the grace period has passed; on any storage, trials of dead processes of this
host are failed at once (``fail_dead_workers``): each trial records ``host:pid`` of its worker.
"""
from __future__ import annotations

import os
import re
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from forgeml.errors import StudyError

HEARTBEAT_SECONDS = 10  # a live worker's trial is touched this often
GRACE_SECONDS = 60  # … and counted dead after this long untouched (a long epoch must not look dead)
SCHEMES = "sqlite:///FILE, a FILE.db or FILE.journal path, journal:///FILE, or postgresql://user:password@host:port/database"


def default_storage(tuning_dir: Path, study: str, workers: int) -> str:
    """The file a study lives in when no ``--storage`` is given: the one it already has (a
    ``<study>.db`` made with ``--storage``), else a journal file, for one process as for several.

    Why a journal for one process too: a pruner's report costs 3 ms on a journal file and 17 ms
    on SQLite here (Hyperband reads every trial at each report), and a study started alone can be
    joined by ``--workers`` later without changing its format."""
    journal, sqlite = tuning_dir / f"{study}.journal", tuning_dir / f"{study}.db"
    if sqlite.exists() and not journal.exists():
        return f"sqlite:///{sqlite.resolve()}"
    return f"journal:///{journal.resolve()}"


def shown(url: str) -> str:
    """The URL with its password hidden, for messages and the report."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def normalise(url: str) -> str:
    """A storage spec as a URL: bare file paths become sqlite:/// or journal:/// URLs; another
    scheme (http://, mysql://, a typo) is refused in one line naming the ones that work."""
    lowered = url.lower()
    if lowered.startswith(("sqlite:///", "journal:///")) or re.match(r"postgres(ql)?(\+\w+)?://", lowered):
        return "postgresql" + url[url.index(":"):] if lowered.startswith("postgres:") else url
    if "://" not in url:
        suffix = Path(url).suffix.lower()
        if suffix in (".db", ".sqlite", ".sqlite3"):
            return f"sqlite:///{Path(url).resolve()}"
        if suffix in (".journal", ".log"):
            return f"journal:///{Path(url).resolve()}"
    raise StudyError(f"{shown(url)!r} is not a storage forgeml can use", where="--storage", hint=f"give {SCHEMES}")


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url`` (as ``normalise`` returns it), or one line saying why not."""
    import optuna

    if url.startswith("journal:///"):
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        path = Path(url[len("journal:///"):])  # journal:////abs/file, journal:///relative/file, as sqlite
        _parent_folder(path)
        # the open(O_EXCL) lock also works where symlinks do not (some network and Windows drives)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
    engine: dict[str, Any] = {}
    driver_url = url
    if url.startswith("sqlite:///"):
        _parent_folder(Path(url[len("sqlite:///"):]))
        engine = {"connect_args": {"timeout": 30}}  # wait for another writer's lock instead of failing
    else:
        driver_url = _with_driver(url)
        engine = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    for attempt in range(3):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9: not the user's concern
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(driver_url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS)
        except Exception as exc:  # sqlalchemy's errors (and the driver's) have no common base outside sqlalchemy
            # two hosts creating the tables of an empty database at once: one loses PostgreSQL's
            # race ("duplicate key … pg_type"), and finds them there a moment later
            if attempt == 2 or not _creation_race(exc):
                raise unreachable(url, exc) from None
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


def _creation_race(exc: BaseException) -> bool:
    text = _first_line(exc).lower()
    return "duplicate key" in text or "already exists" in text


def unreachable(url: str, exc: BaseException) -> StudyError:
    """One line for a storage that did not answer: the URL (password hidden) and the first line
    of the database's own reason."""
    reason = _first_line(exc)
    return StudyError(f"cannot use the study storage {shown(url)} ({reason})", where="--storage",
                      hint="check that the server runs and the host, port, user and password are right; trials already finished there are kept")


def storage_cause(exc: BaseException | None) -> BaseException | None:
    """The storage's own error in ``exc``'s chain of causes, or None: Optuna wraps sqlalchemy's
    errors (or not), and when a trial's end cannot be written Optuna 5 raises an
    UnboundLocalError of its own while handling that, so the whole chain is looked at."""
    from optuna.exceptions import StorageInternalError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, StorageInternalError) or type(exc).__module__.startswith(("sqlalchemy", "psycopg")):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def lost(url: str, exc: BaseException) -> StudyError:
    """The storage went away mid-study (a PostgreSQL server stopped): what is in it stays."""
    exc = storage_cause(exc) or exc
    return StudyError(f"lost the study storage {shown(url)} mid-study ({_first_line(exc)})", where="--storage",
                      hint="the finished trials are kept there; bring it back and run the same command to go on with the study")


def _first_line(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    orig = getattr(cause, "orig", None) or cause  # sqlalchemy wraps the driver's error
    text = str(orig).strip().splitlines()
    return (text[0] if text else type(orig).__name__)[:200]


def _with_driver(url: str) -> str:
    """postgresql:// with the driver that is installed: SQLAlchemy assumes psycopg2, the extra
    installs psycopg 3 (binary wheels, maintained); either is fine."""
    from forgeml.extras import _installed, require_extra

    scheme, rest = url.split("://", 1)
    if "+" in scheme:
        return url
    require_extra("postgres", needed_by="--storage postgresql://")
    return f"postgresql+psycopg://{rest}" if _installed("psycopg") else url


def _parent_folder(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(f"cannot create the folder for the study file ({exc.strerror})", where=str(path.parent),
                         hint="choose a writable --storage path or --runs-dir") from None


def worker_id() -> str:
    """``host:pid`` of this process, recorded on each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_workers(study: Any) -> list[int]:
    """Mark failed the RUNNING trials whose worker was a process of this host that no longer
    exists (killed, crashed, its machine's OOM killer). Returns their trial numbers."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            study._storage.set_trial_user_attr(trial._trial_id, "failure", "its worker process died mid-trial")
            if study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                failed.append(trial.number)
        except UpdateFinishedTrialError:  # another worker got there first
            pass
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
