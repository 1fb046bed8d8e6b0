"""``--enqueue act/family=coslu,opt/lr=0.001``: configurations a search runs first (Optuna's ``enqueue_trial``).

A researcher who already knows good points (a paper's published setting, last month's winner) puts them
in the study before the sampler proposes anything, as Ray Tune's ``points_to_evaluate`` does. Each point
names some or all of the space's parameters; the sampler fills in the rest. Values are checked against
the space's distributions before the study is created, so a typo is refused in one line and not found
as a failed trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from aaf_search.errors import UserError
from aaf_search.search.study import count_finished, drop_enqueued_twice

Point = Mapping[str, Any]
FORMAT_HINT = "NAME=VALUE pairs separated by commas (act/family=coslu,opt/lr=0.001)"


def parse_point(text: str) -> dict[str, str]:
    """``"act/family=coslu,opt/lr=0.001"`` as ``{"act/family": "coslu", "opt/lr": "0.001"}``."""
    point: dict[str, str] = {}
    for pair in text.split(","):
        name, equals, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not name or not value:
            raise ValueError(f"expected {FORMAT_HINT}, got '{text}'")
        if name in point:
            raise ValueError(f"parameter '{name}' is given twice in '{text}'")
        point[name] = value
    return point


def resolve_points(points: Sequence[Point], distributions: Mapping[str, BaseDistribution]) -> list[dict[str, Any]]:
    """Each point's values as the space's distributions take them (a choice's own type, a number in range)."""
    return [{name: _value(name, value, distributions) for name, value in point.items()} for point in points]


def enqueue_points(study: optuna.Study, points: Sequence[dict[str, Any]]) -> int:
    """Enqueue each point not already in the study (as any trial's parameters); return how many were new.

    A rerun of the same command therefore adds nothing twice, and of two searches started together with
    the same points, each point runs in one (:func:`~aaf_search.search.study.drop_enqueued_twice`).
    """
    before = {t.number for t in study.get_trials(deepcopy=False)}
    for params in points:
        study.enqueue_trial(params, skip_if_exists=True)
    added = {t.number for t in study.get_trials(deepcopy=False)} - before
    if not added:
        return 0
    return len(added - set(drop_enqueued_twice(study)))


def waiting_beyond(study: optuna.Study, trials: int) -> int:
    """How many enqueued (WAITING) trials a search to ``trials`` finished trials will not reach."""
    waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    return max(waiting - max(trials - count_finished(study), 0), 0)


def _value(name: str, value: Any, distributions: Mapping[str, BaseDistribution]) -> Any:
    distribution = distributions.get(name)
    if distribution is None:
        raise UserError(f"--enqueue: the space has no parameter '{name}'; its parameters: {', '.join(distributions)}")
    if isinstance(distribution, CategoricalDistribution):
        return _choice(name, value, distribution.choices)
    if isinstance(distribution, IntDistribution | FloatDistribution):
        return _number(name, value, distribution)
    raise UserError(f"--enqueue: parameter '{name}' has a distribution this option cannot fill: {distribution}")


def _choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    for choice in choices:
        if value == choice and type(value) is type(choice):
            return choice
    if isinstance(value, str):  # from the command line: the choice written as text (2, 0.5, true, none)
        for choice in choices:
            if value == str(choice) or (not isinstance(choice, str) and value.lower() == str(choice).lower()):
                return choice
    listed = ", ".join(str(choice) for choice in choices)
    raise UserError(f"--enqueue: parameter '{name}' has no choice '{value}'; its choices: {listed}")


def _number(name: str, value: Any, distribution: IntDistribution | FloatDistribution) -> int | float:
    integer = isinstance(distribution, IntDistribution)
    low, high, step = distribution.low, distribution.high, distribution.step
    steps = f" in steps of {step:g}" if step is not None and not (integer and step == 1) else ""
    number = _as_number(value, integer)
    if not low <= number <= high or (step is not None and not _on_grid(number, low, step)):
        kind = "an integer" if integer else "a number"
        raise UserError(f"--enqueue: parameter '{name}' must be {kind} in {low:g}..{high:g}{steps}, got '{value}'")
    return number


def _as_number(value: Any, integer: bool) -> float:
    """``value`` (text, or a Python number) as an int or float; NaN for anything else (a bool, 2.5 for an int)."""
    if isinstance(value, bool):
        return math.nan
    try:
        number = float(value)
        if integer:
            return int(value) if isinstance(value, str) else int(number) if number.is_integer() else math.nan
    except (TypeError, ValueError):
        return math.nan
    return number


def _on_grid(number: float, low: float, step: float) -> bool:
    """Whether ``number`` is ``low`` plus a whole number of ``step``s (to rounding, for float steps)."""
    steps = (number - low) / step
    return abs(steps - round(steps)) <= 1e-9 * max(1.0, abs(steps))
