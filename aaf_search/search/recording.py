"""The trial-recording layer every backend shares, so that a study reads the same whichever ran it.

A backend asks the study for a trial, then calls, in order:

1. :meth:`TrialRecorder.start` -> the trial config to train (the space's suggestion, with the per-trial
   seed), stored in the trial's user attrs before any training happens;
2. :meth:`TrialRecorder.epoch` after every epoch -> ``True`` when the pruner says stop;
3. one of :meth:`complete` (returns the objective values to tell the study), :meth:`pruned` or
   :meth:`failed`, which store what the trial got to.

The local backend calls these inside Optuna's objective; a Ray backend calls them on the driver with the
trials it asked for and the reports its workers send, and tells the study the final state itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from aaf_search.config import TrialConfig
from aaf_search.search.attrs import set_user_attrs
from aaf_search.search.liveness import ATTR_HEARTBEAT, ATTR_OWNER, HEARTBEAT_SECONDS, owner_record
from aaf_search.search.objectives import Objective, mean_epoch_seconds
from aaf_search.search.seeds import trial_seed
from aaf_search.spaces import SearchSpace, SpaceDefaults
from aaf_search.trials.report import EpochReport, TrialResult

# User attr names, in one place for the backends, the export and the analysis.
ATTR_SPACE = "space"
ATTR_SEED = "seed"
ATTR_CONFIG = "config"
ATTR_EPOCHS_RUN = "epochs_run"
ATTR_EPOCH_SECONDS = "epoch_seconds"
ATTR_HISTORY = "history"
ATTR_ACTIVATION_PARAMS = "activation_params"
ATTR_ACTIVATION_HISTORY = "activation_history"
ATTR_CPU_THREADS = "cpu_threads"
ATTR_FAIL_REASON = "fail_reason"
ATTR_FAIL_CATEGORY = "fail_category"

INTERRUPTED = "interrupted"
"""The reason (and category) of a trial stopped by Ctrl-C; rerunning the command resumes the search."""
SURPLUS = "surplus"
"""The category of a trial failed before it ran because other processes had claimed every slot."""
SURPLUS_PREFIX = "not run:"
WORKER_DIED = ("actordiederror", "workercrashederror", "nodediederror", "rayactorerror")
"""How Ray words the death of the process that ran a trial."""


def failure_category(reason: str) -> str:
    """A short class of a failure reason, for counting: diverged, oom, interrupted, worker, surplus or error.

    Read from the reason text rather than the exception, because the Ray backend hands over only the
    text of what happened on a worker; both backends word reasons as ``TypeName: message``.
    """
    text = reason.lower()
    if text.startswith("trial diverged"):
        return "diverged"
    if text.startswith(("outofmemoryerror", "memoryerror")) or "out of memory" in text:
        return "oom"
    if text == INTERRUPTED or "interrupted" in text:
        return INTERRUPTED
    if text.startswith(WORKER_DIED):
        return "worker"  # a Ray worker process died under the trial (killed, segfault, node lost)
    if text.startswith(SURPLUS_PREFIX):
        return SURPLUS
    return "error"


def stored_category(trial: FrozenTrial) -> str:
    """The failure category a trial stored; trials failed before categories were stored carry only the reason."""
    category = trial.user_attrs.get(ATTR_FAIL_CATEGORY)
    return str(category) if category else failure_category(str(trial.user_attrs.get(ATTR_FAIL_REASON) or ""))


@dataclass(frozen=True)
class TrialRecorder:
    """Turns a space into trial configs and trial outcomes into user attrs and objective values."""

    space: SearchSpace
    defaults: SpaceDefaults
    objectives: tuple[Objective, ...]
    study_seed: int
    _heartbeats: dict[int, float] = field(default_factory=dict, init=False, repr=False)  # trial -> last written

    @property
    def metric(self) -> str:
        return self.defaults.metric

    def start(self, trial: optuna.Trial) -> TrialConfig:
        """Sample the trial's config, give it the per-trial seed and store both on the trial."""
        seed = trial_seed(self.study_seed, trial.number)
        config = self.space.sample(trial, self.defaults).replace(seed=seed)
        # The owner in the same write: until then (milliseconds of sampling), other searches take the trial
        # for a live one by its age (see liveness.OWNERLESS_GRACE_SECONDS).
        now = time.time()
        self._heartbeats[trial.number] = now
        attrs = {ATTR_SPACE: self.space.name, ATTR_SEED: seed, ATTR_CONFIG: config.to_dict()}
        set_user_attrs(trial, {**attrs, ATTR_OWNER: owner_record(), ATTR_HEARTBEAT: now})
        return config

    def epoch(self, trial: optuna.Trial, report: EpochReport) -> bool:
        """Report the epoch's metric as an intermediate value; ``True`` when the trial should stop.

        Optuna keeps no intermediate values for multi-objective studies (nor prunes them); the
        per-epoch history in the user attrs holds them instead.
        """
        self._beat(trial)
        if len(self.objectives) > 1:
            return False
        trial.report(float(getattr(report, self.metric)), step=report.epoch)
        return trial.should_prune()

    def _beat(self, trial: optuna.Trial) -> None:
        """A sign of life for searches on other machines, written at most every HEARTBEAT_SECONDS."""
        now = time.time()
        if now - self._heartbeats.get(trial.number, 0.0) >= HEARTBEAT_SECONDS:
            self._heartbeats[trial.number] = now
            trial.set_user_attr(ATTR_HEARTBEAT, now)

    def complete(self, trial: optuna.Trial, result: TrialResult) -> list[float]:
        """Store the result and return the objective values, in the study's order."""
        set_user_attrs(trial, result_attrs(result, self.metric))
        return [objective.value(result) for objective in self.objectives]

    def pruned(self, trial: optuna.Trial, history: Sequence[EpochReport]) -> None:
        """Store what a stopped trial got to (its intermediate values are already reported)."""
        set_user_attrs(trial, history_attrs(history, self.metric))

    def failed(self, trial: optuna.Trial, reason: str, history: Sequence[EpochReport]) -> None:
        """Store what a failed trial got to, why it failed, and the failure's category (for counting)."""
        attrs = {ATTR_FAIL_REASON: reason, ATTR_FAIL_CATEGORY: failure_category(reason)}
        set_user_attrs(trial, {**history_attrs(history, self.metric), **attrs})


def history_attrs(history: Sequence[EpochReport], metric: str) -> dict[str, Any]:
    """Attrs any trial has once it ran epochs: count, per-epoch metric and time, last activation params,
    and the per-epoch means of the activation params (see :func:`activation_history`)."""
    if not history:
        return {ATTR_EPOCHS_RUN: 0}
    attrs = {
        ATTR_EPOCHS_RUN: len(history),
        ATTR_HISTORY: [float(getattr(r, metric)) for r in history],
        ATTR_EPOCH_SECONDS: sum(r.epoch_seconds for r in history) / len(history),
        ATTR_ACTIVATION_PARAMS: history[-1].activation_params,
    }
    if history[-1].activation_params:
        attrs[ATTR_ACTIVATION_HISTORY] = activation_history(history)
    return attrs


HISTORY_DIGITS = 6  # significant digits kept per epoch: plenty for a plot, and it keeps the attr small


def activation_history(history: Sequence[EpochReport]) -> list[dict[str, dict[str, float]]]:
    """One ``{slot: {param: mean}}`` per epoch, so parameter trajectories can be drawn from the study alone.

    Means only: min/max/values of every epoch would multiply the attr's size (a MySQL TEXT holds 64 KiB),
    and the last epoch's full summary is stored under ``activation_params`` anyway.
    """
    return [
        {
            slot: {name: float(f"{stats['mean']:.{HISTORY_DIGITS}g}") for name, stats in params.items()}
            for slot, params in report.activation_params.items()
        }
        for report in history
    ]


def result_attrs(result: TrialResult, metric: str) -> dict[str, Any]:
    """Everything a finished trial stores beyond its objective values."""
    return {
        **history_attrs(result.history, metric),
        ATTR_EPOCHS_RUN: result.epochs_run,
        ATTR_EPOCH_SECONDS: mean_epoch_seconds(result),
        "val_accuracy": result.val_accuracy,
        "val_loss": result.val_loss,
        "test_accuracy": result.test_accuracy,
        "best_epoch": result.best_epoch,
        "param_count": result.param_count,
        "activation_param_count": result.activation_param_count,
        "device": result.device,
        "seconds": result.seconds,
        "stopped_early": result.stopped_early,
        **{f"extra/{key}": value for key, value in result.extra.items()},
        **({ATTR_CPU_THREADS: result.cpu_threads} if result.cpu_threads is not None else {}),
    }
