"""A study as tidy DataFrames: one row per trial, per (trial, epoch), per (trial, epoch, slot, param).

Everything here reads what the shared trial recorder stored (:mod:`aaf_search.search.recording`), so a
study written by either backend gives the same frames. The frames have the column names the figures in
:mod:`aaf_search.analysis.figures` expect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from aaf_search.analysis.stats import Direction
from aaf_search.search.recording import (
    ATTR_ACTIVATION_HISTORY,
    ATTR_CONFIG,
    ATTR_EPOCHS_RUN,
    ATTR_HISTORY,
    ATTR_SEED,
)
from aaf_search.search.study import objective_names

BASE_FAMILY = "base"
"""The family of a trial whose plan is empty: the model keeps its base activation everywhere."""

TRIAL_COLUMNS = (
    "number",
    "state",
    "value",
    "last_reported",
    "family",
    "epochs_run",
    "test_accuracy",
    "seconds",
    "seed",
)
"""The first columns of :func:`trials_frame`; in a study of several objectives the other objectives and
``pareto`` follow (see there), then the trial's sampled parameters, by name."""

PARETO_COLUMN = "pareto"

CURVE_COLUMNS = ("number", "epoch", "value", "state")
TRAJECTORY_COLUMNS = ("number", "epoch", "slot", "param", "mean")


def family_of(config: Mapping[str, Any] | None) -> str:
    """The activation family of a trial config (a ``TrialConfig.to_dict()``), as a leaderboard groups it.

    The families of the plan's entries in order, each once, joined by ``+`` (``lincomb``, ``apa+leaf``);
    ``base`` when the plan is empty (or the config is missing).
    """
    plan = (config or {}).get("plan") or []
    families = list(dict.fromkeys(str(entry["activation"]["family"]) for entry in plan))
    return "+".join(families) if families else BASE_FAMILY


def directions_of(study: optuna.Study) -> list[Direction]:
    """``"maximize"`` or ``"minimize"`` per objective of the study, in order."""
    return ["maximize" if d == optuna.study.StudyDirection.MAXIMIZE else "minimize" for d in study.directions]


def direction_of(study: optuna.Study) -> Direction:
    """``"maximize"`` or ``"minimize"``: the direction of the study's first objective."""
    return directions_of(study)[0]


def state_name(trial: FrozenTrial) -> str:
    return trial.state.name


def first_value(trial: FrozenTrial) -> float:
    """The first objective's value of a COMPLETE trial, else NaN."""
    if trial.state != TrialState.COMPLETE or not trial.values:
        return math.nan
    return float(trial.values[0])


def epoch_values(trial: FrozenTrial) -> dict[int, float]:
    """Epoch -> metric: the intermediate values, or the ``history`` attr (multi-objective studies keep none)."""
    if trial.intermediate_values:
        return {int(step): float(value) for step, value in sorted(trial.intermediate_values.items())}
    history = trial.user_attrs.get(ATTR_HISTORY) or []
    return {epoch: float(value) for epoch, value in enumerate(history, start=1)}


def last_reported(trial: FrozenTrial) -> float:
    """The metric of the last epoch a trial reported (what a pruned trial got to), else NaN."""
    values = epoch_values(trial)
    return values[max(values)] if values else math.nan


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: :data:`TRIAL_COLUMNS` then one column per sampled parameter.

    ``value`` is the first objective of COMPLETE trials only; ``last_reported`` is the last epoch's metric of
    any trial that ran (for a pruned trial, where the pruner stopped it); ``seconds`` is the wall time.
    A study of several objectives adds a column per further objective, named as in :func:`objective_names`
    (COMPLETE trials only), and ``pareto``: whether the trial is on the Pareto front.
    """
    trials = study.get_trials(deepcopy=False)
    params = list(dict.fromkeys(name for trial in trials for name in trial.params))
    others = objective_names(study)[1:]
    front = {trial.number for trial in study.best_trials} if others else set()
    rows = []
    for trial in trials:
        attrs = trial.user_attrs
        duration = trial.duration.total_seconds() if trial.duration is not None else math.nan
        row: dict[str, Any] = {
            "number": trial.number,
            "state": state_name(trial),
            "value": first_value(trial),
            "last_reported": last_reported(trial),
            "family": family_of(attrs.get(ATTR_CONFIG)),
            "epochs_run": attrs.get(ATTR_EPOCHS_RUN, 0),
            "test_accuracy": attrs.get("test_accuracy", math.nan),
            "seconds": duration,
            "seed": attrs.get(ATTR_SEED),
        }
        if others:
            complete = trial.state == TrialState.COMPLETE and bool(trial.values)
            row.update({name: float(trial.values[i]) if complete else math.nan for i, name in enumerate(others, 1)})
            row[PARETO_COLUMN] = trial.number in front
        row.update({name: trial.params.get(name) for name in params})
        rows.append(row)
    extra = [*others, PARETO_COLUMN] if others else []
    frame = pd.DataFrame(rows, columns=[*TRIAL_COLUMNS, *extra, *params])
    return frame.astype({"number": int, "value": float, "last_reported": float, "test_accuracy": float})


def history_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """``number, value, state`` for the optimisation history: a pruned trial's value is its last reported."""
    pruned = trials["state"] == TrialState.PRUNED.name
    value = trials["value"].where(~pruned, trials["last_reported"])
    return pd.DataFrame({"number": trials["number"], "value": value, "state": trials["state"]})


def curves_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per (trial, epoch): :data:`CURVE_COLUMNS`, for the learning curves."""
    rows = [
        {"number": trial.number, "epoch": epoch, "value": value, "state": state_name(trial)}
        for trial in study.get_trials(deepcopy=False)
        for epoch, value in epoch_values(trial).items()
    ]
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS))


def trajectories_frame(trial: FrozenTrial, slots: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (epoch, slot, param) of one trial's ``activation_history``: :data:`TRAJECTORY_COLUMNS`.

    ``slots`` keeps only those slots (in the history's order); ``None`` keeps all.
    """
    history = trial.user_attrs.get(ATTR_ACTIVATION_HISTORY) or []
    keep = None if slots is None else set(slots)
    rows = [
        {"number": trial.number, "epoch": epoch, "slot": slot, "param": param, "mean": float(mean)}
        for epoch, per_slot in enumerate(history, start=1)
        for slot, params in per_slot.items()
        if keep is None or slot in keep
        for param, mean in params.items()
    ]
    return pd.DataFrame(rows, columns=list(TRAJECTORY_COLUMNS))
