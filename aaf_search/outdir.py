"""Refuse an output directory that cannot be created, before the work whose results would go there."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from aaf_search.errors import UserError


def check_out_dir(path: Path, label: str = "--out") -> None:
    """A :class:`UserError` naming ``label`` unless ``path`` is, or can be made, a writable directory.

    Why up front: a training run or a search saves its results at the end, and a directory that cannot
    be created (under a file, on a read-only mount, without permission) would otherwise fail there, with
    a traceback, after the work. The check creates what is missing and removes it again, so a failure
    later in the command leaves nothing behind.
    """
    created: list[Path] = []
    probe = path
    while not probe.exists() and probe.parent != probe:
        created.append(probe)
        probe = probe.parent
    try:
        if path.exists() and not path.is_dir():
            raise UserError(f"{label}: '{path}' is a file, not a directory")
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{label}: directory '{path}' is not writable")
    except OSError as exc:
        raise UserError(f"{label}: cannot create directory '{path}' ({exc.strerror or exc})") from None
    finally:
        for directory in created:  # innermost first, and only what this check made
            with contextlib.suppress(OSError):
                directory.rmdir()


def check_out_file(path: Path, label: str = "--out") -> None:
    """A :class:`UserError` naming ``label`` unless a file can be written at ``path``.

    ``path`` must not be a directory (the rename that writes it atomically would fail with a traceback),
    and its directory must be, or be able to become, a writable directory (see :func:`check_out_dir`).
    """
    if path.is_dir():
        raise UserError(f"{label}: '{path}' is a directory; name a file, e.g. {path / 'best.yaml'}")
    check_out_dir(path.parent, f"{label} '{path}'")
