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

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from aaf_search.config import TrialConfig
from aaf_search.search.attrs import set_user_attrs
from aaf_search.search.liveness import ATTR_HEARTBEAT, ATTR_OWNER, HEARTBEAT_SECONDS, owner_record
from aaf_search.search.objectives import Objective
from aaf_search.search.seeds import trial_seed
from aaf_search.spaces import SearchSpace, SpaceDefaults
from aaf_search.spaces.resolve import sample_once
from aaf_search.trials.report import EpochReport, TrialDiverged, TrialResult

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

# Failure categories, stored with each FAIL trial (``fail_category``) for counting and for --retry-failed.
DIVERGED = "diverged"
OOM = "oom"
INTERRUPTED = "interrupted"
"""The reason (and category) of a trial stopped by Ctrl-C; rerunning the command resumes the search."""
WORKER = "worker"
"""A Ray worker process died under the trial (killed, segfault, node lost)."""
SURPLUS = "surplus"
"""The category of a trial failed before it ran because other processes had claimed every slot."""
ERROR = "error"

INTERRUPTED_REASON = "left RUNNING by an interrupted run"
"""The reason of a trial a dead or stopped run left RUNNING (category ``interrupted``)."""
INTERRUPT_REASONS = (INTERRUPTED, INTERRUPTED_REASON)
"""Every reason an interrupted trial was ever given: an interrupt is known by these exact texts alone."""
SURPLUS_PREFIX = "not run:"
DIVERGED_PREFIX = "trial diverged at epoch "  # how TrialDiverged words itself
OOM_TYPES = frozenset({"MemoryError", "OutOfMemoryError"})  # Python's, torch's and ray.exceptions'
OOM_MESSAGES = ("CUDA out of memory", "CUDA error: out of memory")
"""How CUDA's allocation failures begin when raised as another type (a RuntimeError before torch 1.13,
torch.AcceleratorError from a CUDA library): an OOM only at the start of the message."""
WORKER_DIED = frozenset(
    {"ActorDiedError", "ActorUnavailableError", "WorkerCrashedError", "NodeDiedError", "RayActorError"}
)
"""How Ray names the death of the process that ran a trial."""

# "TypeName: message" or "TypeName", with " (traceback: PATH)" from a Ray worker: storage.first_line's form,
# to which ray_scheduler.describe_error adds the traceback. Only a whole first word followed by these counts.
_LEADING_TYPE = re.compile(r"([A-Za-z_]\w*)(?:: |(?= \(traceback: )|$)")


def exception_category(exc: BaseException) -> str:
    """The category of a failure caught in this process, from the exception's type.

    Types are matched by name along the class hierarchy, so torch's and Ray's out-of-memory errors count
    without importing either.
    """
    if isinstance(exc, TrialDiverged):
        return DIVERGED
    return _category({cls.__name__ for cls in type(exc).__mro__}, str(exc).strip())


def failure_category(reason: str) -> str:
    """The category of a failure known only by its reason text: a Ray worker's crash, or a trial of a study
    written before categories were stored.

    Only exact, anchored forms count: a reason that merely mentions "interrupted" or "out of memory"
    (``InterruptedError: [Errno 4] Interrupted system call``) is an ``error``.
    """
    if reason in INTERRUPT_REASONS:
        return INTERRUPTED
    if reason.startswith(DIVERGED_PREFIX):
        return DIVERGED
    if reason.startswith(SURPLUS_PREFIX):
        return SURPLUS
    match = _LEADING_TYPE.match(reason)
    return _category({match.group(1)}, reason[match.end() :]) if match else ERROR


def _category(type_names: set[str], message: str) -> str:
    if type_names & OOM_TYPES or message.startswith(OOM_MESSAGES):
        return OOM
    if type_names & WORKER_DIED:
        return WORKER
    return ERROR


def stored_category(trial: FrozenTrial) -> str:
    """The failure category a trial stored.

    Trials failed before categories were stored carry only the reason. Earlier versions stored
    ``interrupted`` for any reason with the word in it, and ``--retry-failed`` would rerun such a genuine
    error: that category stands only with one of :data:`INTERRUPT_REASONS`.
    """
    reason = str(trial.user_attrs.get(ATTR_FAIL_REASON) or "")
    category = trial.user_attrs.get(ATTR_FAIL_CATEGORY)
    if not category or (category == INTERRUPTED and reason not in INTERRUPT_REASONS):
        return failure_category(reason)
    return str(category)


class NotFinite(ValueError):
    """A trial's objective values are NaN or infinite: the trial fails (and is replaced) instead of completing."""


def not_finite_reason(values: Sequence[float]) -> str | None:
    """Why a trial with these objective values must fail, or ``None`` when they are all finite.

    Optuna fails such a trial itself, with only a warning: no reason stored, and a backend that counted
    the trial as finished would end short of its target.
    """
    if all(math.isfinite(value) for value in values):
        return None
    return f"objective values {values} are not all finite"


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
        """Choose the trial's config (:meth:`configure`) and store it with the trial's owner and heartbeat.

        The owner goes in the same write: until then (milliseconds of sampling), other searches take the
        trial for a live one by its age alone (see liveness.OWNERLESS_GRACE_SECONDS).
        """
        config, attrs = self.configure(trial)
        now = time.time()
        self._heartbeats[trial.number] = now
        set_user_attrs(trial, {**attrs, ATTR_OWNER: owner_record(), ATTR_HEARTBEAT: now})
        return config

    def configure(self, trial: optuna.Trial) -> tuple[TrialConfig, dict[str, Any]]:
        """Sample the trial's config and give it the per-trial seed; the config and the attrs that describe it.

        A trial enqueued with a seed (the retry of an interrupted trial) keeps it.
        """
        enqueued_seed = trial.user_attrs.get(ATTR_SEED)
        seed = trial_seed(self.study_seed, trial.number) if enqueued_seed is None else int(enqueued_seed)
        # A user's space that raises is the user's one-line error (SpaceError), as in the pre-flight.
        config = sample_once(self.space, trial, self.defaults).replace(seed=seed)
        return config, {ATTR_SPACE: self.space.name, ATTR_SEED: seed, ATTR_CONFIG: config.to_dict()}

    def epoch(self, trial: optuna.Trial, report: EpochReport) -> bool:
        """Report the epoch's metric as an intermediate value; ``True`` when the trial should stop.

        Never ``True`` at the last epoch of the trial's budget (its config's ``epochs``, as stored by
        :meth:`start`): pruning stops a trial *early*, and one that trained all it was given completes
        with its score, test accuracy and run directory. The value is still reported (the dashboard's
        curve) and the pruner still asked, so that its rungs hold this trial's score for trials judged
        later; only its answer is ignored.

        Optuna keeps no intermediate values for multi-objective studies (nor prunes them); the
        per-epoch history in the user attrs holds them instead.
        """
        self._beat(trial)
        if len(self.objectives) > 1:
            return False
        trial.report(float(getattr(report, self.metric)), step=report.epoch)
        prune = trial.should_prune()
        # The trial's own budget (a Python space may set its epochs), cached on the trial since start().
        budget = int(trial.user_attrs.get(ATTR_CONFIG, {}).get("epochs", self.defaults.epochs))
        return prune and report.epoch < budget

    def _beat(self, trial: optuna.Trial) -> None:
        """A sign of life for searches on other machines, written at most every HEARTBEAT_SECONDS."""
        now = time.time()
        if now - self._heartbeats.get(trial.number, 0.0) >= HEARTBEAT_SECONDS:
            self._heartbeats[trial.number] = now
            trial.set_user_attr(ATTR_HEARTBEAT, now)

    def complete(self, trial: optuna.Trial, result: TrialResult) -> list[float]:
        """Store the result and return the objective values, in the study's order.

        Raises :class:`NotFinite` when a value is NaN or infinite (see :func:`not_finite_reason`); the result
        is stored all the same, and the backend fails the trial with :meth:`failed` so that it is replaced.
        """
        set_user_attrs(trial, result_attrs(result, self.metric))
        values = [objective.value(result) for objective in self.objectives]
        reason = not_finite_reason(values)
        if reason is not None:
            raise NotFinite(reason)
        return values

    def pruned(self, trial: optuna.Trial, history: Sequence[EpochReport]) -> None:
        """Store what a stopped trial got to (its intermediate values are already reported)."""
        set_user_attrs(trial, history_attrs(history, self.metric))

    def failed(self, trial: optuna.Trial, reason: str, history: Sequence[EpochReport], *, category: str) -> None:
        """Store what a failed trial got to, why it failed, and the failure's category (for counting).

        ``category`` comes from where the failure is known (Ctrl-C, :func:`exception_category`), or for
        text from a Ray worker from :func:`failure_category`.
        """
        attrs = {ATTR_FAIL_REASON: reason, ATTR_FAIL_CATEGORY: category}
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
        "val_accuracy": result.val_accuracy,
        "val_loss": result.val_loss,
        "test_accuracy": result.test_accuracy,
        "best_epoch": result.best_epoch,
        "param_count": result.param_count,
        "activation_param_count": result.activation_param_count,
        "device": result.device,
        "seconds": result.seconds,
        "stopped_early": result.stopped_early,
        "fused_activations": list(result.fused_activations),
        **{f"extra/{key}": value for key, value in result.extra.items()},
        **({ATTR_CPU_THREADS: result.cpu_threads} if result.cpu_threads is not None else {}),
    }
