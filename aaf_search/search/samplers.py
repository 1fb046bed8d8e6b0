"""The sampler table: one factory per ``--sampler`` name.

Every factory takes the session's sampler seed and a :class:`SamplerContext` (the space, its defaults,
the number of objectives) and returns a :class:`Sampling` (the Optuna sampler, plus how many distinct
trials it can propose where that is finite) or raises a one-line :class:`UserError`.
"""

from __future__ import annotations

import importlib.util
import random
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from aaf_search.errors import UserError
from aaf_search.search.tables import lookup
from aaf_search.spaces import SearchSpace, SpaceDefaults, SpaceError
from aaf_search.spaces.probe import finite_values, grid_paths


@dataclass(frozen=True)
class SamplerContext:
    space: SearchSpace
    defaults: SpaceDefaults
    n_objectives: int = 1


class Sampling(NamedTuple):
    sampler: BaseSampler
    capacity: int | None = None  # distinct trials it can propose (grid: the space's paths); None: unbounded


SamplerFactory = Callable[[int, SamplerContext], Sampling]


def _quiet(build: Callable[[], BaseSampler]) -> Sampling:
    # Several samplers (and TPE's multivariate mode) are "experimental" in Optuna: that warning is
    # noise on every run and says nothing about the user's search.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return Sampling(build())


def _tpe(seed: int, context: SamplerContext) -> Sampling:
    # multivariate + group model the conditional parameters of define-by-run spaces jointly;
    # constant_liar keeps concurrent workers (Ray) from proposing the same point.
    return _quiet(lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True))


def _random(seed: int, context: SamplerContext) -> Sampling:
    return Sampling(optuna.samplers.RandomSampler(seed=seed))


def _cmaes(seed: int, context: SamplerContext) -> Sampling:
    if importlib.util.find_spec("cmaes") is None:
        raise UserError("sampler 'cmaes' needs the 'cmaes' package (pip install cmaes); or use tpe, gp, random")
    if context.n_objectives > 1:
        raise UserError("sampler 'cmaes' is single-objective; use nsga2 or tpe with --objectives")
    return _quiet(lambda: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False))


def _gp(seed: int, context: SamplerContext) -> Sampling:
    return _quiet(lambda: optuna.samplers.GPSampler(seed=seed))


def _nsga2(seed: int, context: SamplerContext) -> Sampling:
    return _quiet(lambda: optuna.samplers.NSGAIISampler(seed=seed))


def _qmc(seed: int, context: SamplerContext) -> Sampling:
    return _quiet(lambda: optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False))


def _grid(seed: int, context: SamplerContext) -> Sampling:
    # A define-by-run space is not one product of choices (an LSLU length exists only under LSLU), so
    # the "grid" is every path through the space, enumerated once here. The probe rejects a continuous
    # parameter now, with its name, instead of in trial 1.
    paths = grid_paths(context.space, context.defaults)
    return Sampling(PathGridSampler(paths, seed=seed), capacity=len(paths))


GridPath = Mapping[str, Any]  # one path's parameters and values
TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


class PathGridSampler(BaseSampler):
    """Each of ``paths`` (see :func:`~aaf_search.spaces.probe.grid_paths`) once, in a seeded random order.

    Optuna's ``BruteForceSampler`` does not fit a search that tells trials outside ``study.optimize``
    (the Ray backend, the cleanup of interrupted trials): its ``after_trial`` stops the study once the
    grid looks exhausted, which Optuna refuses outside ``optimize``. It also takes a FAIL trial for an
    explored point, so a failed point is never run again and ``--trials`` can never be reached, and it
    breaks on a FAIL trial that has no parameters. This sampler never stops the study: the backends stop
    at their target (at most the number of paths). Each trial takes the first path in its order that
    no COMPLETE, PRUNED or RUNNING trial holds and that agrees with the parameters the trial already has;
    among those it prefers a path no trial has failed on, so a failed point runs again only after every
    point was tried. With every path taken (only by a race of several processes) it repeats the least
    taken one. Trials without parameters, or with parameters off the grid, do not count.
    """

    def __init__(self, paths: Sequence[GridPath], *, seed: int | None = None) -> None:
        self._paths = list(paths)
        random.Random(seed).shuffle(self._paths)
        self._rng = random.Random(seed)
        self._chosen: dict[int, GridPath] = {}  # trial number -> the path it walks, while it samples

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        path = self._chosen.get(trial.number)
        if path is None or param_name not in path or not _agrees(path, trial.params):
            path = self._choose(study, trial, param_name)
            if path is None:
                return self._off_grid(param_name, param_distribution)
            self._chosen[trial.number] = path
        return path[param_name]

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._chosen.pop(trial.number, None)  # and never study.stop(): see the class docstring

    def _off_grid(self, param_name: str, distribution: BaseDistribution) -> Any:
        # No path with the trial's values has this parameter: the space's suggest depends on more than
        # its parameters (or changed since the grid was enumerated). Any of the parameter's values will do.
        values = finite_values(distribution)
        if not values:
            raise SpaceError(
                f"sampler 'grid': parameter '{param_name}' is continuous or was not seen when the space's paths "
                "were enumerated; a grid needs a space whose parameters depend only on earlier parameters"
            )
        return values[self._rng.randrange(len(values))]

    def _choose(self, study: optuna.Study, trial: FrozenTrial, param_name: str) -> GridPath | None:
        # The storage, not study.get_trials: with the Hyperband pruner the study a sampler is given
        # holds only the trial's bracket (Optuna's BruteForceSampler reads the storage for the same reason).
        trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
        taken = Counter(_key(t.params) for t in trials if t.state in TAKEN and t.number != trial.number)
        failed = Counter(_key(t.params) for t in trials if t.state == TrialState.FAIL)
        known = {**trial.system_attrs.get("fixed_params", {}), **trial.params}  # enqueued values count too
        fitting = [p for p in self._paths if param_name in p and _agrees(p, known)]
        return min(fitting, key=lambda p: (taken[_key(p)], failed[_key(p)]), default=None)


def _key(params: GridPath) -> tuple[tuple[str, Any], ...]:
    """A hashable form of a path, for counting the trials that hold it."""
    return tuple(sorted((name, _same(value)) for name, value in params.items()))


def _agrees(path: GridPath, known: GridPath) -> bool:
    """Whether ``path`` has every value in ``known`` (the parameters a trial already has)."""
    return all(name in path and _same(path[name]) == _same(value) for name, value in known.items())


def _same(value: Any) -> Any:
    # Floats rounded: a stepped float stored as 0.30000000000000004 is the grid's 0.3.
    return float(f"{value:.12g}") if isinstance(value, float) else value


SAMPLERS: dict[str, SamplerFactory] = {
    "tpe": _tpe,
    "random": _random,
    "cmaes": _cmaes,
    "gp": _gp,
    "nsga2": _nsga2,
    "qmc": _qmc,
    "grid": _grid,
}


def make_sampler(name: str, seed: int, context: SamplerContext) -> Sampling:
    return lookup(SAMPLERS, name, "sampler")(seed, context)
