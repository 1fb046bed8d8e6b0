"""Write a file so that it is either complete or absent: into a temporary file beside it, then renamed."""

from __future__ import annotations

import glob
import time
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.

    A crash or a full disk leaves ``path`` as it was (absent, or its previous content) and removes the
    temporary file; the rename is atomic on POSIX file systems, so a reader never sees half a file.
    """
    tmp = path.with_name(f"{path.name}.{time.time_ns()}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def leftover_temporaries(path: Path) -> list[Path]:
    """The temporary files :func:`write_atomically` left beside ``path``: a process killed while writing
    (SIGKILL, the OOM killer) never reaches its clean-up."""
    prefix, suffix = f"{path.name}.", ".tmp"
    return [
        candidate
        for candidate in path.parent.glob(f"{glob.escape(prefix)}*{suffix}")
        if candidate.name[len(prefix) : -len(suffix)].isdigit()
    ]


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` with :func:`write_atomically`."""
    write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def save_torch_atomically(path: Path, obj: object) -> None:
    """``torch.save(obj)`` to ``path`` with :func:`write_atomically`, through a file Python opened.

    Why not the path: given one, torch writes in C++, and a full disk comes out as a ``RuntimeError``
    ("unexpected pos ...") that tells nothing; through a Python file it is the ``OSError`` (``ENOSPC``)
    that the command line turns into its one-line advice. The error is given the file's name.
    """
    import torch  # here: this module is also used where torch is not imported

    def write(tmp: Path) -> None:
        try:
            with tmp.open("wb") as file:
                torch.save(obj, file)
        except OSError as exc:
            if exc.filename is not None:
                raise
            raise OSError(exc.errno, exc.strerror, str(tmp)) from exc

    write_atomically(path, write)
