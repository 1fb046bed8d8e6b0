"""Open an Optuna storage from a ``--storage`` argument, with one-line errors instead of tracebacks.

Accepted forms: any Optuna RDB URL (``sqlite:///aaf-runs/aaf.db``, ``postgresql://...``,
``mysql://...``) and ``journal:PATH`` for a journal file (Optuna's ``JournalFileBackend``: no database
needed, and safe for several processes on one file system). SQLite and journal files get their
directory created.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend

from aaf_search.errors import UserError

DEFAULT_STORAGE = "sqlite:///aaf-runs/aaf.db"
JOURNAL_PREFIX = "journal:"
SQLITE_PREFIX = "sqlite:///"


class StorageError(UserError):
    """The storage URL is malformed, its driver is missing or its database does not answer."""


def open_storage(url: str) -> BaseStorage:
    """The storage at ``url``; creates nothing but a missing SQLite/journal directory and its tables."""
    if url.startswith(JOURNAL_PREFIX):
        path = _file_path(url, url[len(JOURNAL_PREFIX) :])
        try:
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise StorageError(f"cannot open journal storage '{path}': {exc.strerror or exc}") from exc
    if url.startswith(SQLITE_PREFIX) and url != SQLITE_PREFIX + ":memory:":
        _file_path(url, url[len(SQLITE_PREFIX) :].split("?", 1)[0])
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # SQLAlchemy raises many kinds (ArgumentError, OperationalError, ImportError, ...)
        raise StorageError(f"cannot open storage '{redact(url)}': {first_line(exc)}") from exc


def _file_path(url: str, path_text: str) -> Path:
    if not path_text:
        raise StorageError(f"storage '{url}' names no file")
    path = Path(path_text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the directory of storage '{url}': {exc.strerror or exc}") from exc
    return path


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
