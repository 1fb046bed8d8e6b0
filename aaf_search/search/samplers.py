"""The sampler table: one factory per ``--sampler`` name.

Every factory takes the session's sampler seed and a :class:`SamplerContext` (the space, its defaults,
the number of objectives) and returns a :class:`Sampling` (the Optuna sampler, plus how many distinct
trials it can propose where that is finite) or raises a one-line :class:`UserError`.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import optuna
from optuna.samplers import BaseSampler

from aaf_search.errors import UserError
from aaf_search.search.tables import lookup
from aaf_search.spaces import SearchSpace, SpaceDefaults
from aaf_search.spaces.probe import grid


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
    # the "grid" is every path through the space: Optuna's BruteForceSampler walks exactly those.
    # The probe rejects a continuous parameter now, with its name, instead of in trial 1.
    _, paths = grid(context.space, context.defaults)
    return _quiet(lambda: optuna.samplers.BruteForceSampler(seed=seed))._replace(capacity=paths)


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
