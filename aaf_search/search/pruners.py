"""The pruner table: one factory per ``--pruner`` name, given the epoch budget of a trial.

A pruner reads the per-epoch validation metric that every trial reports (its step is the epoch, from 1).
Optuna prunes single-objective studies only; a multi-objective search runs with ``none``.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna
from optuna.pruners import BasePruner

from aaf_search.errors import UserError
from aaf_search.search.tables import lookup

PrunerFactory = Callable[[int], BasePruner]

# Keep the best third at each rung: Hyperband's default (Optuna's and Ray Tune's); their ASHA defaults keep
# a quarter. On 32-trial digits searches a third trained 33-43 % of the unpruned epochs and matched the
# unpruned best (benchmarks/pruning.py).
REDUCTION = 3


def _asha(epochs: int) -> BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION)


def _hyperband(epochs: int) -> BasePruner:
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=REDUCTION)


def _median(epochs: int) -> BasePruner:
    # Two finished trials before judging anyone, and never at the first epoch (too noisy on its own).
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def _none(epochs: int) -> BasePruner:
    return optuna.pruners.NopPruner()


PRUNERS: dict[str, PrunerFactory] = {"asha": _asha, "hyperband": _hyperband, "median": _median, "none": _none}

DEFAULT_PRUNER = "asha"


def choose_pruner(name: str | None, n_objectives: int) -> str:
    """The pruner to use: ``name``, or asha (single objective) / none (several) when not given."""
    if name is None:
        return DEFAULT_PRUNER if n_objectives == 1 else "none"
    lookup(PRUNERS, name, "pruner")
    if n_objectives > 1 and name != "none":
        raise UserError(
            f"pruner '{name}' needs a single objective (Optuna prunes no multi-objective study); "
            "use --pruner none with --objectives"
        )
    return name


def make_pruner(name: str, epochs: int) -> BasePruner:
    return lookup(PRUNERS, name, "pruner")(epochs)
