"""What a search optimises: ``--objectives accuracy,params`` picks from this table.

``accuracy`` is the space's metric (validation accuracy unless the space says validation loss);
``params`` the model's parameter count; ``latency`` the mean training seconds per epoch, a proxy for
compute cost measured on the machine that ran the trial.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aaf_search.errors import UserError
from aaf_search.spaces import SpaceDefaults
from aaf_search.trials.report import TrialResult


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str
    value: Callable[[TrialResult], float]


def _metric(defaults: SpaceDefaults) -> Objective:
    metric = defaults.metric
    return Objective("accuracy", defaults.direction, lambda result: float(getattr(result, metric)))


def _params(defaults: SpaceDefaults) -> Objective:
    return Objective("params", "minimize", lambda result: float(result.param_count))


def _latency(defaults: SpaceDefaults) -> Objective:
    return Objective("latency", "minimize", lambda result: mean_epoch_seconds(result))


OBJECTIVES: dict[str, Callable[[SpaceDefaults], Objective]] = {
    "accuracy": _metric,
    "params": _params,
    "latency": _latency,
}


def mean_epoch_seconds(result: TrialResult) -> float:
    return sum(r.epoch_seconds for r in result.history) / max(len(result.history), 1)


def resolve_objectives(names: Sequence[str], defaults: SpaceDefaults) -> tuple[Objective, ...]:
    """The objectives named, in order; the first must be ``accuracy`` (pruning and ranking use it)."""
    names = [n.strip() for n in names if n.strip()]
    for name in names:
        if name not in OBJECTIVES:
            raise UserError(f"unknown objective '{name}'; choose from: {', '.join(OBJECTIVES)}")
    if not names or names[0] != "accuracy":
        raise UserError(f"--objectives must start with accuracy (then any of params, latency); got '{','.join(names)}'")
    if len(set(names)) != len(names):
        raise UserError(f"--objectives names an objective twice: '{','.join(names)}'")
    return tuple(OBJECTIVES[name](defaults) for name in names)
