"""Open an Optuna storage from a ``--storage`` argument, with one-line errors instead of tracebacks.

Accepted forms: any Optuna RDB URL (``sqlite:///aaf-runs/aaf.db``, ``postgresql://...``,
``mysql://...``) and ``journal:PATH`` for a journal file (Optuna's ``JournalFileBackend``: no database
needed, and safe for several processes on one file system). SQLite and journal files get their
directory created. A finished SQLite study in a directory the user cannot write (an archive, a
colleague's results) opens read-only as ``sqlite:///file:PATH?mode=ro&immutable=1&uri=true``.
"""

from __future__ import annotations

import gc
import json
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import optuna
import sqlalchemy
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend

from aaf_search.errors import UserError, exception_chain

DEFAULT_STORAGE = "sqlite:///aaf-runs/aaf.db"
JOURNAL_PREFIX = "journal:"
SQLITE_PREFIX = "sqlite:///"
JOURNAL_HEAD_BYTES = 1 << 20  # a journal's first record (a study's creation) is far shorter than this


class StorageError(UserError):
    """The storage URL is malformed, its driver is missing or its database does not answer."""


def open_storage(url: str) -> BaseStorage:
    """The storage at ``url``; creates nothing but a missing SQLite/journal directory and its tables."""
    if url.startswith(JOURNAL_PREFIX):
        path = _file_path(url, url[len(JOURNAL_PREFIX) :])
        try:
            _check_journal(path)
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise StorageError(f"cannot open journal storage '{path}': {exc.strerror or exc}") from exc
    database = sqlite_database(url)
    if database is not None and not database.read_only:
        _file_path(url, str(database.path))
    try:
        storage = optuna.storages.RDBStorage(url)
        if database is not None and not database.read_only:
            use_write_ahead_log(storage)
        return storage
    except Exception as exc:  # SQLAlchemy raises many kinds (ArgumentError, OperationalError, ImportError, ...)
        reason = missing_driver(url, exc) or unknown_url(url, exc) or first_line(exc)
        advice = explain_locked(exc) or explain_readonly(exc)
        raise StorageError(advice or f"cannot open storage '{redact(url)}': {reason}") from exc


def open_existing_storage(url: str) -> BaseStorage:
    """The storage at ``url`` if it exists; never creates a database.

    For the commands that start from a search's results (export, report, robust, dashboard): a missing
    SQLite or journal file there is a typo to report, where :func:`open_storage` would quietly create an
    empty database.
    """
    path = storage_file(url)
    if path is not None and not path.is_file():
        raise StorageError(f"no storage at '{path}' (from '{url}'); run a search first or check --storage")
    return open_storage(url)


def storage_file(url: str) -> Path | None:
    """The SQLite or journal file ``url`` names; ``None`` for database servers and ``:memory:``."""
    if url.startswith(JOURNAL_PREFIX):
        return Path(url[len(JOURNAL_PREFIX) :])
    database = sqlite_database(url)
    return None if database is None else database.path


@dataclass(frozen=True)
class SQLiteDatabase:
    """The file a ``sqlite:///`` URL names, and whether the URL opens it read-only."""

    path: Path
    read_only: bool


def sqlite_database(url: str) -> SQLiteDatabase | None:
    """The database file of a ``sqlite:///`` URL; ``None`` for other URLs and ``:memory:``.

    SQLAlchemy's URI form ``sqlite:///file:PATH?...&uri=true`` names PATH; with ``mode=ro`` or
    ``immutable=1`` among its parameters SQLite opens it read-only. Such a URL gets no write-ahead log
    (switching the file to it is a write, and its ``-shm`` file needs write access to the directory).
    """
    if not url.startswith(SQLITE_PREFIX):
        return None
    name, _, query = url[len(SQLITE_PREFIX) :].partition("?")
    params = parse_qs(query)
    if params.get("uri") == ["true"] and name.startswith("file:"):
        name = name[len("file:") :]
    if name in ("", ":memory:"):
        return None
    read_only = params.get("mode") == ["ro"] or params.get("immutable") == ["1"]
    return SQLiteDatabase(Path(name), read_only)


_WRITE_AHEAD_LOGGED: weakref.WeakSet[optuna.storages.RDBStorage] = weakref.WeakSet()
"""The SQLite storages this process opened, for :func:`close_sqlite_storages`."""


def use_write_ahead_log(storage: optuna.storages.RDBStorage) -> None:
    """Open every later connection of a SQLite storage in WAL mode with ``synchronous=NORMAL``.

    Why: in SQLite's default rollback journal every commit waits for the disk (10-25 ms each on the
    development machine, several per trial); in WAL mode a commit appends to the log and only
    checkpoints wait. Nothing committed is lost when a process dies (SIGKILL included); a power cut may
    lose the last commits but cannot corrupt the file. Readers (optuna-dashboard) also stop blocking
    the search's writes. WAL mode is stored in the database file, and like SQLite's locking it needs a
    local file system; the connections Optuna opened while creating its tables are closed here.
    """
    storage.engine.dispose()
    sqlalchemy.event.listen(storage.engine, "connect", _write_ahead_log_pragmas)
    _WRITE_AHEAD_LOGGED.add(storage)


def close_sqlite_storages() -> None:
    """Close the pooled connections of every SQLite storage this process opened (they reopen on use).

    When its last connection closes, SQLite moves the write-ahead log into the database file and deletes
    the ``-wal`` and ``-shm`` files, so a command leaves the study as one self-contained file, and a
    command that only read it leaves every byte as it was.
    """
    # A storage nobody refers to any more keeps its connections until the collector frees its reference
    # cycles (SQLAlchemy's engine and pool); collect first, then close the ones still in use.
    gc.collect()
    for storage in list(_WRITE_AHEAD_LOGGED):
        storage.engine.dispose()


def _write_ahead_log_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


DRIVERS = {"postgresql": "pip install 'aaf-search[postgres]' (psycopg)", "mysql": "pip install pymysql"}
"""How to install the database driver SQLAlchemy loads for a URL scheme it was given without one."""


def missing_driver(url: str, exc: BaseException) -> str | None:
    """Advice for a ``postgresql://`` or ``mysql://`` URL whose driver is not installed, else ``None``."""
    if not isinstance(exc, ImportError) and not isinstance(exc.__cause__, ImportError):
        return None
    scheme = url.partition("://")[0].partition("+")[0]
    advice = DRIVERS.get(scheme)
    return f"its database driver is not installed: {advice}" if advice else None


def unknown_url(url: str, exc: BaseException) -> str | None:
    """Advice for a ``--storage`` value SQLAlchemy cannot parse (a bare file name) or whose scheme it lacks."""
    if not any(_unparsed_url(seen) for seen in exception_chain(exc)):
        return None
    servers = "a postgresql:// or mysql:// URL"
    if "://" not in url:
        files = f"for a SQLite file write sqlite:///{url}, for a journal file journal:{url}"
        return f"not a storage URL; {files}, or give {servers}"
    scheme = url.partition("://")[0]
    return f"no database type '{scheme}'; use sqlite:///FILE, journal:FILE or {servers}"


def _unparsed_url(exc: BaseException) -> bool:
    # NoSuchModuleError: an unknown scheme; ArgumentError "Could not parse ...": no scheme at all
    if isinstance(exc, sqlalchemy.exc.NoSuchModuleError):
        return True
    return isinstance(exc, sqlalchemy.exc.ArgumentError) and str(exc).startswith("Could not parse")


def several_writers(url: str) -> bool:
    """Whether the storage at ``url`` lets several processes search one study: a journal file or an RDB server."""
    return url.startswith(JOURNAL_PREFIX) or not url.startswith("sqlite:")


def _check_journal(path: Path) -> None:
    """Refuse an existing file whose first line is not a journal record.

    Optuna's reader takes an undecodable last line for a write still in progress and skips it, so a
    one-line text file would read as an empty journal, and the search would append to it.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as handle:
        head = handle.readline(JOURNAL_HEAD_BYTES)
    try:
        record = json.loads(head)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both
        record = None
    if not isinstance(record, dict) or "op_code" not in record:
        raise StorageError(f"'{path}' is not an Optuna journal file; name a new file or an existing journal")


def _file_path(url: str, path_text: str) -> Path:
    if not path_text:
        raise StorageError(f"storage '{url}' names no file")
    path = Path(path_text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the directory of storage '{url}': {exc.strerror or exc}") from exc
    return path


SQLITE_LOCKED = "database is locked"


def explain_locked(exc: BaseException) -> str | None:
    """The advice for a SQLite "database is locked" failure anywhere in ``exc``'s chain, else ``None``.

    Optuna re-raises SQLAlchemy's ``OperationalError`` as its own ``StorageInternalError``, so the
    cause chain is walked rather than the exception type matched.
    """
    if any(SQLITE_LOCKED in str(seen) for seen in exception_chain(exc)):
        return (
            "the SQLite storage stayed locked by another process (database is locked); SQLite does not take "
            "several writers: use --storage journal:PATH or a postgresql:// (or mysql://) URL"
        )
    return None


SQLITE_READONLY = "attempt to write a readonly database"


def explain_readonly(exc: BaseException) -> str | None:
    """The advice for a SQLite study this user may not write (its file or its directory), else ``None``."""
    if any(SQLITE_READONLY in str(seen) for seen in exception_chain(exc)):
        return (
            f"the SQLite storage cannot be written here ({SQLITE_READONLY}): SQLite needs write access to the "
            "study's file and directory; to read a finished study from a directory you cannot write, use "
            "--storage 'sqlite:///file:PATH?mode=ro&immutable=1&uri=true'"
        )
    return None


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for error messages and study attributes."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
