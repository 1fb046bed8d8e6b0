"""The backend table: ``--backend NAME`` -> a factory of a :class:`Backend`.

A backend runs the trials of a :class:`~aaf_search.search.session.SearchSession` and nothing else: the
driver has already resolved the space, opened the study, failed the trials a killed run left RUNNING and
chosen the target count; the :class:`~aaf_search.search.recording.TrialRecorder` turns each trial into a
config and each outcome into the study's record. Factories import their backend lazily, so the Ray
backend costs nothing (no ``import ray``) unless it is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aaf_search.search.session import SearchSession
from aaf_search.search.settings import SearchSettings
from aaf_search.search.tables import lookup


class Backend(Protocol):
    """Runs a session's trials until the study holds ``session.target`` finished ones."""

    def check(self, settings: SearchSettings) -> None:
        """Reject settings this backend cannot honour (a :class:`UserError`), before any storage is opened."""
        ...

    def run(self, session: SearchSession) -> None:
        """Run trials; report each epoch through ``session.recorder`` and each end to ``session.progress``."""
        ...


BackendFactory = Callable[[], Backend]


def _local() -> Backend:
    from aaf_search.search.local import LocalBackend

    return LocalBackend()


def _ray() -> Backend:
    from aaf_search.search.ray_backend import RayBackend

    return RayBackend()


BACKENDS: dict[str, BackendFactory] = {"local": _local, "ray": _ray}


def default_backend() -> str:
    """``ray`` when a Ray backend is registered (the product's default), else ``local``."""
    return "ray" if "ray" in BACKENDS else "local"


def make_backend(name: str) -> Backend:
    return lookup(BACKENDS, name, "backend")()
