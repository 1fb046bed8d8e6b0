"""Pieces shared by the catalog spaces: the optimiser block and a one-rule plan."""

from __future__ import annotations

from typing import Any, Literal, cast

import optuna

from aaf_search.config import ActivationSpec, OptimConfig, PlanEntry

Shape = Literal["network", "layer", "channel", "neuron"]

LR_RANGE = (1e-4, 1e-2)  # Adam-family learning rates, log-uniform; the seeds use 1e-3 (adam) and 1e-4 (rmsprop)


def suggest_adam(trial: optuna.Trial, **fields: Any) -> OptimConfig:
    """``opt/lr`` on a log scale for Adam, the optimiser every seed project defaults to."""
    lr = trial.suggest_float("opt/lr", *LR_RANGE, log=True)
    return OptimConfig(name="adam", lr=lr, **fields)


def suggest_shape(trial: optuna.Trial, name: str, choices: tuple[Shape, ...]) -> Shape:
    """A categorical parameter shape (typed, so that it fits ``ActivationSpec.shape``)."""
    return cast(Shape, trial.suggest_categorical(name, choices))


def everywhere(
    family: str,
    *,
    select: str = "all",
    init: str | dict[str, Any] | None = None,
    shape: Shape = "layer",
    options: dict[str, Any] | None = None,
    trainable: bool = True,
) -> tuple[PlanEntry, ...]:
    """A plan with one rule: ``family`` in the slots matched by ``select``."""
    spec = ActivationSpec(family=family, init=init, shape=shape, options=options or {}, trainable=trainable)
    return (PlanEntry(select=select, activation=spec),)
