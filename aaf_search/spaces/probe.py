"""Read a define-by-run space's parameters by running it on throw-away in-memory trials.

Nothing is trained: ``suggest`` only asks for parameters and builds plain data, so a probe costs well
under a millisecond per trial. :func:`sampled_params` feeds listings; :func:`grid_paths` enumerates every
path through the space's finite choices for the grid sampler; :func:`every_choice` samples the space
until every value of every categorical parameter was drawn, for the pre-flight check.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from aaf_search.config import TrialConfig
from aaf_search.spaces.space import SearchSpace, SpaceDefaults, SpaceError

GRID_LIMIT = 10_000  # suggest() calls the grid enumeration may make before it gives up
COVER_LIMIT = 1_000  # suggest() calls every_choice makes at most: beyond it a space is checked in part

T = TypeVar("T")


def _probe_study(seed: int = 0) -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))


def sampled_params(space: SearchSpace, defaults: SpaceDefaults, *, trials: int = 64) -> dict[str, BaseDistribution]:
    """Every parameter seen in ``trials`` random draws, in the order first seen, with its distribution."""
    study = _probe_study()
    seen: dict[str, BaseDistribution] = {}
    for _ in range(trials):
        trial = study.ask()
        space.sample(trial, defaults)
        for name, distribution in trial.distributions.items():
            seen.setdefault(name, distribution)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # keeps the probe study from growing RUNNING trials
    return seen


def random_samples(
    space: SearchSpace, defaults: SpaceDefaults, count: int, *, seed: int = 0
) -> list[tuple[dict[str, Any], TrialConfig]]:
    """``count`` draws of the space with the random sampler: each one's parameters and trial config."""
    study = _probe_study(seed)
    samples = []
    for _ in range(count):
        trial = study.ask()
        config = space.sample(trial, defaults)
        samples.append((dict(trial.params), config))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return samples


def describe(distribution: BaseDistribution) -> str:
    """A short human form: ``{a, b, c}``, ``int 1..4``, ``float 0.0001..0.01 (log)``."""
    if isinstance(distribution, CategoricalDistribution):
        return "{" + ", ".join(str(c) for c in distribution.choices) + "}"
    if isinstance(distribution, IntDistribution | FloatDistribution):
        kind = "int" if isinstance(distribution, IntDistribution) else "float"
        log = " (log)" if distribution.log else ""
        return f"{kind} {distribution.low:g}..{distribution.high:g}{log}"
    return repr(distribution)


def finite_values(distribution: BaseDistribution) -> list[Any] | None:
    """Every value a finite distribution can take, or ``None`` for a continuous one."""
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    if isinstance(distribution, IntDistribution):
        return list(range(distribution.low, distribution.high + 1, distribution.step))
    if isinstance(distribution, FloatDistribution) and distribution.step is not None:
        count = round((distribution.high - distribution.low) / distribution.step) + 1
        return [float(v) for v in np.linspace(distribution.low, distribution.high, count)]
    return None


def grid_paths(space: SearchSpace, defaults: SpaceDefaults, *, limit: int = GRID_LIMIT) -> list[dict[str, Any]]:
    """Every path through the space: the parameters one trial suggests on it, with their values, in order.

    Depth-first over the space's branches: each probe fixes the parameters decided so far (through
    ``enqueue_trial``) and branches on the first parameter it has not fixed, so a parameter that only
    exists under some choice (an LSLU length under ``lslu``) is found on the path that has it.
    Raises :class:`SpaceError` on a continuous parameter or a space with more than ``limit`` branches.
    """
    study = _probe_study()
    values: dict[str, list[Any]] = {}
    paths: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = [{}]
    probes = 0
    while stack:
        fixed = stack.pop()
        probes += 1
        if probes > limit:
            raise SpaceError(f"space '{space.name}' has more than {limit} grid points; use another sampler")
        study.enqueue_trial(fixed)
        trial = study.ask()
        space.sample(trial, defaults)
        distributions = dict(trial.distributions)
        params = dict(trial.params)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        for name, distribution in distributions.items():
            if name not in values:
                finite = finite_values(distribution)
                if finite is None:
                    raise SpaceError(
                        f"sampler 'grid' needs finite choices, but space '{space.name}' has the continuous "
                        f"parameter '{name}' ({describe(distribution)}); use tpe, random, qmc or gp"
                    )
                values[name] = finite
        free = [name for name in distributions if name not in fixed]
        if not free:
            paths.append(params)
            continue
        stack.extend({**fixed, free[0]: value} for value in reversed(values[free[0]]))
    return paths


def every_choice(sample: Callable[[optuna.Trial], T], *, limit: int = COVER_LIMIT) -> list[T]:
    """``sample``'s results on probe trials that between them take every value of every categorical parameter.

    The first probe is a random draw. For each categorical value no probe has drawn yet, one more probe
    fixes the parameters asked before it on the probe that found the parameter (so that it is asked
    again: a conditional one only exists under its branch) and that value; the rest is random. That is
    one probe per choice, not one per path, so a space of many parameters is covered in a few dozen.
    At most ``limit`` probes: the rest of a space with more choices than that goes unchecked.
    """
    study = _probe_study()
    seen: set[tuple[str, Any]] = set()  # (parameter, value) drawn or queued
    queue: deque[dict[str, Any]] = deque([{}])
    results: list[T] = []
    while queue and len(results) < limit:
        study.enqueue_trial(queue.popleft())
        trial = study.ask()
        try:
            results.append(sample(trial))
            params, distributions = dict(trial.params), dict(trial.distributions)
        finally:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        asked_before: dict[str, Any] = {}
        for name, value in params.items():  # in the order suggest asked them
            distribution = distributions[name]
            if isinstance(distribution, CategoricalDistribution):
                seen.add((name, value))
                for choice in distribution.choices:
                    if (name, choice) not in seen:
                        seen.add((name, choice))
                        queue.append({**asked_before, name: choice})
            asked_before[name] = value
    return results
