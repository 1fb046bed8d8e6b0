"""The settings of one search, as the command line (or a Python caller) gives them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aaf_search.search.storage import DEFAULT_STORAGE


@dataclass(frozen=True)
class Resources:
    """Where and how wide trials run; the Ray backend's knobs (the local backend runs one at a time)."""

    address: str | None = None  # a running Ray cluster; None starts a local one
    gpus_per_trial: float | None = None  # None: 1 when there are GPUs, else 0
    cpus_per_trial: float | None = None
    max_concurrent: int | None = None


@dataclass(frozen=True)
class SearchSettings:
    """Everything ``aaf-search search`` needs; ``None`` means "the space's default" for the overrides.

    ``trials`` counts finished (COMPLETE + PRUNED) trials of the study, so rerunning the same search
    only runs the missing ones. ``pruner=None`` is asha for one objective and none for several.
    """

    space: str
    trials: int = 20
    sampler: str = "tpe"
    pruner: str | None = None
    backend: str = "local"
    storage: str = DEFAULT_STORAGE
    study: str | None = None
    seed: int = 0
    out: Path | None = None  # default: the study's recorded run directory, else aaf-runs/<study>
    objectives: tuple[str, ...] = ("accuracy",)
    retry_failed: bool = False
    timeout: float | None = None  # seconds after which no trial starts (the running ones finish)
    enqueue: tuple[Mapping[str, Any], ...] = ()  # parameter values of trials to run first (--enqueue)
    model: str | None = None
    dataset: str | None = None
    data_root: str | None = None
    download: bool | None = None
    epochs: int | None = None
    precision: str | None = None
    resources: Resources = field(default_factory=Resources)

    def record(self) -> dict[str, Any]:
        """The settings as stored in the study (plain data; the storage URL stays out, it may hold a password)."""
        return {
            "space": self.space,
            "trials": self.trials,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "backend": self.backend,
            "seed": self.seed,
            "objectives": list(self.objectives),
            "model": self.model,
            "dataset": self.dataset,
            "epochs": self.epochs,
            "precision": self.precision,
            "timeout": self.timeout,
            "enqueue": [dict(point) for point in self.enqueue],
        }
