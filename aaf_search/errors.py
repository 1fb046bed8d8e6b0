"""The base of every error caused by user input.

The CLI prints a :class:`UserError` as one line and exits with code 2; so it does for the failures of
the machine it can explain (a full disk, a locked SQLite file). Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import errno


class UserError(ValueError):
    """A mistake in what the user asked for; the message names the problem and the valid choices."""


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
SQLITE_FULL = "database or disk is full"


def explain_disk_full(exc: BaseException) -> str | None:
    """One line for a full disk (or quota) anywhere in ``exc``'s cause chain, else ``None``.

    Not the user's mistake, but not a bug either: the message says what to do, and the files written
    before it (finished trials, an earlier export) are intact, since aaf-search writes them atomically.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
            where = f" writing '{seen.filename}'" if seen.filename else ""
            return f"no space left on the device{where}; free some space and run the same command again"
        if SQLITE_FULL in str(seen):
            return (
                f"the SQLite storage could not grow ({SQLITE_FULL}); free some space and run the same command "
                "again: the trials it finished are kept"
            )
        seen = seen.__cause__ or seen.__context__
    return None
