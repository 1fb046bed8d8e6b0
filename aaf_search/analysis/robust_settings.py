"""What ``aaf-search robust`` is asked to do: its settings and their parsing, without the modules that run it.

Kept apart from :mod:`aaf_search.analysis.robust` (which imports torch through the activations and the
trials) so that the command line builds its parser and refuses a mistyped option in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aaf_search.errors import UserError
from aaf_search.search.backends import default_backend
from aaf_search.search.settings import Resources
from aaf_search.search.storage import DEFAULT_STORAGE

SEEDS = (42, 100, 128, 1999, 7823)  # the seed projects' five seeds
DEFAULT_TOP_K = 3


class RobustError(UserError):
    """The robustness stage cannot run as asked: no such study, nothing complete, a bad option."""


@dataclass(frozen=True)
class RobustSettings:
    """Everything ``aaf-search robust`` needs; ``epochs=None`` keeps each configuration's own budget."""

    storage: str = DEFAULT_STORAGE
    study: str | None = None
    top_k: int = DEFAULT_TOP_K
    seeds: tuple[int, ...] = SEEDS
    baseline: str = "relu"
    backend: str = field(default_factory=default_backend)
    epochs: int | None = None
    out: Path | None = None  # default: robust/ in the search's run directory
    resources: Resources = field(default_factory=Resources)

    def record(self) -> dict[str, Any]:
        """The settings as stored in the companion study (no storage URL: it may hold a password)."""
        return {
            "top_k": self.top_k,
            "seeds": list(self.seeds),
            "baseline": self.baseline,
            "backend": self.backend,
            "epochs": self.epochs,
        }


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"42,100,128"`` -> ``(42, 100, 128)``; a one-line error for anything else."""
    parts = [p.strip() for p in text.split(",")]
    try:
        seeds = tuple(int(p) for p in parts)
    except ValueError:
        raise RobustError(f"--seeds must be comma-separated integers like 42,100,128; got '{text}'") from None
    if any(s < 0 for s in seeds):
        raise RobustError(f"--seeds must be non-negative integers; got '{text}'")
    if len(set(seeds)) != len(seeds):
        raise RobustError(f"--seeds names a seed twice: '{text}'")
    return seeds
