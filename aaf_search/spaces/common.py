"""Pieces shared by the catalog spaces: the optimiser block, a one-rule plan, the model's tagged slots."""

from __future__ import annotations

from typing import Any, Literal, cast

import optuna

from aaf_search.config import ActivationSpec, OptimConfig, PlanEntry
from aaf_search.spaces.space import SpaceDefaults

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


def tagged_slots(defaults: SpaceDefaults, tag: str) -> list[str]:
    """The slots of ``defaults.model`` (for ``defaults.dataset``'s inputs) tagged ``tag``, in model order.

    For a space whose choices depend on where the model has slots: a trial of a choice the model has no
    slot for would fail, and its error would stop the search.
    """
    # Imported here: listing or resolving a space needs no torch. The model is built once per process.
    from aaf_search.trials.slots import dataset_slot_tags

    return [name for name, tags in dataset_slot_tags(defaults.model, defaults.dataset) if tag in tags]
