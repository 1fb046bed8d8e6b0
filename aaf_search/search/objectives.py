"""What a search optimises: ``--objectives accuracy,params`` picks from this table.

``accuracy`` is the space's metric (validation accuracy unless the space says validation loss);
``params`` the model's parameter count; ``latency`` the training seconds of a typical epoch (see
:func:`steady_epoch_seconds`), a proxy for compute cost measured on the machine that ran the trial.
"""

from __future__ import annotations

import statistics
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
    return Objective("latency", "minimize", steady_epoch_seconds)


OBJECTIVES: dict[str, Callable[[SpaceDefaults], Objective]] = {
    "accuracy": _metric,
    "params": _params,
    "latency": _latency,
}


VALUE_FORMATS: dict[str, Callable[[float], str]] = {
    "accuracy": lambda value: f"{value:.4f}",
    "params": lambda value: f"{value:,.0f}",  # whole: two counts that differ by one must not print alike
    "latency": lambda value: f"{value:.3g} s/epoch",
}


def format_value(name: str, value: float) -> str:
    """Objective ``name``'s ``value`` as a person reads it (``params 104,478``, not ``1.045e+05``)."""
    return VALUE_FORMATS.get(name, lambda v: f"{v:.4g}")(value)


def steady_epoch_seconds(result: TrialResult) -> float:
    """The median training seconds of the trial's epochs after the first (of its only epoch, if one).

    Why not the mean of all: the first epoch also pays one-off costs, above all compiling a fused kernel
    new to the process (seconds, against epochs of a tenth of a second on digits), so a family would be
    ranked by whether its kernel had been compiled before rather than by what it costs; and the median
    keeps one epoch slowed by another process from deciding.
    """
    seconds = [r.epoch_seconds for r in result.history]
    return statistics.median(seconds[1:] or seconds) if seconds else 0.0


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
