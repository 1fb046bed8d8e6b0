"""The :class:`SearchSpace` type: a define-by-run function plus the defaults it runs with.

A space's ``suggest(trial, defaults)`` asks the Optuna trial for parameters (conditional ones allowed:
an LSLU length only when LSLU was chosen) and returns a :class:`~aaf_search.config.TrialConfig`.
Parameter names are grouped with ``/`` (``act/family``, ``act/lambda_init``, ``opt/lr``) so that the
dashboard and the analysis tables sort them into families.

The search layer, not the space, owns the trial's seed and device: it overwrites ``seed`` with the
per-trial seed after ``suggest`` returns, so a space never draws random numbers of its own.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from aaf_search.config import PRECISIONS, DataConfig, TrialConfig
from aaf_search.errors import UserError

METRICS: dict[str, str] = {"val_accuracy": "maximize", "val_loss": "minimize"}
"""Metric a space optimises -> its direction; both come from every epoch's report."""


class SpaceError(UserError):
    """A space name, file or module that does not exist or does not define a valid space."""


@dataclass(frozen=True)
class SpaceDefaults:
    """What a space trains on when the command line does not say otherwise.

    The epoch budget is small on purpose: every catalog space must run on ``digits`` on a CPU in
    seconds per trial; a real search raises it with ``--epochs``.
    """

    model: str = "dnn3"
    dataset: str = "digits"
    data_root: str = "data"
    download: bool = False
    epochs: int = 4
    batch_size: int = 64
    metric: str = "val_accuracy"
    precision: str = "fp32"  # fp32, bf16 (autocast, CPU or CUDA) or fp16 (CUDA, with loss scaling)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise SpaceError(f"unknown metric '{self.metric}'; choose one of: {', '.join(METRICS)}")
        if self.epochs < 1:
            raise SpaceError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise SpaceError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise SpaceError(f"unknown precision '{self.precision}'; choose one of: {', '.join(PRECISIONS)}")

    @property
    def direction(self) -> str:
        return METRICS[self.metric]

    def data(self) -> DataConfig:
        return DataConfig(name=self.dataset, root=self.data_root, download=self.download)

    def trial(self, **fields: Any) -> TrialConfig:
        """A trial config on these defaults' model, data, epochs, batch size and precision, plus ``fields``."""
        base: dict[str, Any] = {
            "model": self.model,
            "data": self.data(),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "precision": self.precision,
        }
        return TrialConfig(**{**base, **fields})

    def replace(self, **changes: Any) -> SpaceDefaults:
        """These defaults with the fields in ``changes`` that are not ``None`` replaced."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


SuggestFn = Callable[[optuna.Trial, SpaceDefaults], TrialConfig]


@dataclass(frozen=True)
class SearchSpace:
    """A named, documented define-by-run space.

    Attributes:
        name: the catalog key and the default study name.
        summary: one line for listings.
        suggest: ``(trial, defaults) -> TrialConfig``; its docstring is the space's documentation.
        defaults: model, data set, epochs, batch size and metric to use unless overridden.
        source: the seed project (or file / module) the space comes from.
    """

    name: str
    summary: str
    suggest: SuggestFn
    defaults: SpaceDefaults = SpaceDefaults()
    source: str = ""

    @property
    def direction(self) -> str:
        return self.defaults.direction

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.suggest.__doc__ or self.summary)

    def sample(self, trial: optuna.Trial, defaults: SpaceDefaults | None = None) -> TrialConfig:
        """Run ``suggest`` and check that it returned a trial config (user spaces may not)."""
        config = self.suggest(trial, defaults or self.defaults)
        if not isinstance(config, TrialConfig):
            raise SpaceError(f"space '{self.name}' returned {type(config).__name__}, not a TrialConfig")
        return config
