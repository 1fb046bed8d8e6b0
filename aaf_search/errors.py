"""The base of every error caused by user input.

The CLI prints a :class:`UserError` as one line and exits with code 2; so it does for the failures of
the machine it can explain (a full disk, a locked SQLite file). Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator


class UserError(ValueError):
    """A mistake in what the user asked for; the message names the problem and the valid choices."""


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it (``raise ... from``), or else what it was raised while handling."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
SQLITE_FULL = "database or disk is full"


def explain_disk_full(exc: BaseException) -> str | None:
    """One line for a full disk (or quota) anywhere in ``exc``'s cause chain, else ``None``.

    Not the user's mistake, but not a bug either: the message says what to do, and the files written
    before it (finished trials, an earlier export) are intact, since aaf-search writes them atomically.
    """
    for seen in exception_chain(exc):
        if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
            where = f" writing '{seen.filename}'" if seen.filename else ""
            return f"no space left on the device{where}; free some space and run the same command again"
        if SQLITE_FULL in str(seen):
            return (
                f"the SQLite storage could not grow ({SQLITE_FULL}); free some space and run the same command "
                "again: the trials it finished are kept"
            )
    return None
