"""Create or continue the study behind a search, and tidy what an interrupted run left in it.

The study is the single source of truth for a search, whichever backend ran it: its user attrs say
which space created it and with which settings, and resuming means counting its finished trials.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from aaf_search import __version__
from aaf_search.errors import UserError
from aaf_search.search import study_attrs
from aaf_search.search.liveness import is_stale
from aaf_search.search.recording import (
    ATTR_FAIL_CATEGORY,
    ATTR_FAIL_REASON,
    ATTR_SEED,
    INTERRUPTED,
    INTERRUPTED_REASON,
    SURPLUS,
    SURPLUS_PREFIX,
    WORKER,
    stored_category,
)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
"""The states that count towards ``--trials``; a FAIL trial is retried by a new trial, not counted."""

ATTR_RETRY_OF = "retry_of"
FIXED_PARAMS = "fixed_params"  # the system attr in which Optuna's enqueue_trial keeps the enqueued parameters

SESSION_PREFIX = "session/"  # + start time in ns (20 digits: sorts as it happened) + host + pid
LEGACY_SESSIONS = "sessions"

ROBUST_SUFFIX = ":robust"
"""``<study>:robust`` is the companion study where ``aaf-search robust`` re-trains ``<study>``'s best over seeds."""


def study_names(storage: BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


def robust_name(name: str) -> str:
    """The name of study ``name``'s seed-robustness companion."""
    return name + ROBUST_SUFFIX


def objective_names(study: optuna.Study) -> list[str]:
    """The study's objectives as ``--objectives`` named them (``accuracy``, ``params``, ``latency``)."""
    names = [str(name) for name in study.user_attrs.get(study_attrs.OBJECTIVES, ["accuracy"])]
    if len(names) != len(study.directions):  # a study this tool did not make
        names = [f"objective {i}" for i in range(len(study.directions))]
    return names


def search_study_names(storage: BaseStorage) -> list[str]:
    """The studies of searches: every study but the robustness companions."""
    return [name for name in study_names(storage) if not name.endswith(ROBUST_SUFFIX)]


def existing_attrs(storage: BaseStorage, name: str) -> dict[str, Any] | None:
    """The user attrs of study ``name``, or ``None`` when there is no such study."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id)


CREATION_WAIT_SECONDS = 5.0
"""How long a study without attrs is given to get them: another process may have just created it."""


def _settled_attrs(storage: BaseStorage, name: str) -> dict[str, Any] | None:
    """:func:`existing_attrs`, waiting briefly while the study exists but its creator has not written them yet.

    Optuna creates a study and its attrs in separate writes, so a search started beside another one
    on a shared storage can find the study between the two.
    """
    attrs = existing_attrs(storage, name)
    deadline = time.monotonic() + CREATION_WAIT_SECONDS
    while attrs is not None and study_attrs.SPACE not in attrs and time.monotonic() < deadline:
        time.sleep(0.05)
        attrs = existing_attrs(storage, name)
    return attrs


TASK_ATTRS = {
    study_attrs.MODEL: "--model",
    study_attrs.DATASET: "--dataset",
    study_attrs.EPOCHS: "--epochs",
    study_attrs.METRIC: "metric",
}
"""The study attrs that say what its scores measure, with how a search sets each.

A study compares the scores of its trials (the sampler's history, the pruner's rungs, the ranking and
best.yaml), so a search continues it only on the same task. Everything else may change between sessions:
``--trials``, the sampler, the pruner, the backend and its resources, the precision, ``--data-root``.
"""


def check_compatible(
    storage: BaseStorage,
    name: str,
    space: str,
    objectives: Sequence[str],
    *,
    task: Mapping[str, Any] | None = None,
    directions: Sequence[str] | None = None,
) -> bool:
    """``True`` if study ``name`` exists and may be continued by this search, ``False`` if it is new.

    Raises :class:`UserError`, before anything is written, when the study belongs to another space,
    optimises other objectives, or was searched on another ``task`` (:data:`TASK_ATTRS`) or in other
    ``directions``: mixing them would make one study mean two searches.
    """
    attrs = _settled_attrs(storage, name)
    if attrs is None:
        return False
    owner = attrs.get(study_attrs.SPACE)
    if owner is None:
        raise UserError(f"study '{name}' was not made by aaf-search (it names no space); use --study NEW_NAME")
    if owner != space:
        raise UserError(
            f"study '{name}' was created by space '{owner}', not '{space}'; use --study NEW_NAME or --space {owner}"
        )
    stored = list(attrs.get(study_attrs.OBJECTIVES, ["accuracy"]))
    if stored != list(objectives):
        raise UserError(
            f"study '{name}' optimises {','.join(stored)}, not {','.join(objectives)}; "
            f"use --objectives {','.join(stored)} or --study NEW_NAME"
        )
    study_directions = [d.name.lower() for d in storage.get_study_directions(storage.get_study_id_from_name(name))]
    _check_task(name, attrs, study_directions, task or {}, list(directions or study_directions))
    return True


def _check_task(
    name: str, attrs: Mapping[str, Any], stored_directions: list[str], task: Mapping[str, Any], directions: list[str]
) -> None:
    # Studies made before the task was recorded lack its keys and are continued unchecked; their
    # directions are Optuna's own and always there.
    keys = [key for key in TASK_ATTRS if key in task and key in attrs and attrs[key] != task[key]]
    if stored_directions != directions and study_attrs.METRIC not in keys:
        keys.append(study_attrs.METRIC)
    if not keys:
        return

    def describe(values: Mapping[str, Any], direction: str) -> str:
        return ", ".join(
            f"{TASK_ATTRS[key]} {values.get(key, '?')}" + (f" ({direction})" if key == study_attrs.METRIC else "")
            for key in keys
        )

    raise UserError(
        f"study '{name}' was searched with {describe(attrs, stored_directions[0])}, not "
        f"{describe(task, directions[0])}: their scores do not compare; use --study NEW_NAME for this search "
        "(or the study's own settings to continue it)"
    )


def check_same_distributions(storage: BaseStorage, name: str, distributions: Mapping[str, BaseDistribution]) -> None:
    """Refuse to continue study ``name`` with a space whose parameters Optuna cannot put beside its trials'.

    Optuna fixes a categorical parameter's choices within a study (a space file given a third choice
    would fail in the first trial that asks for it, with a traceback, and leave that trial FAIL); a
    number's range may change. ``distributions`` are the space's, as the pre-flight probes met them.
    """
    stored: dict[str, BaseDistribution] = {}
    for trial in storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False):
        stored.update(trial.distributions)
    for param, new in distributions.items():
        old = stored.get(param)
        if old is None:
            continue
        try:
            optuna.distributions.check_distribution_compatibility(old, new)
        except ValueError:
            raise UserError(
                f"study '{name}' sampled '{param}' from {_describe(old)}, and the space now samples it from "
                f"{_describe(new)}; Optuna keeps a study's categorical choices fixed: use --study NEW_NAME"
            ) from None


def _describe(distribution: BaseDistribution) -> str:
    if isinstance(distribution, CategoricalDistribution):
        return f"choices [{', '.join(map(str, distribution.choices))}]"
    return repr(distribution)


def create_once(storage: BaseStorage, name: str, directions: Sequence[str], attrs: Mapping[str, Any]) -> bool:
    """Create study ``name`` with ``attrs`` (and a new uid); ``False`` if it exists already.

    The storage creates a study by name atomically, so of several processes starting together exactly
    one creates it and writes its attrs; a check for the study followed by a create would let each
    of them write its own (another process's seed, task or uid would win).
    """
    try:
        study_id = storage.create_new_study([optuna.study.StudyDirection[d.upper()] for d in directions], name)
    except optuna.exceptions.DuplicatedStudyError:
        return False
    storage.set_study_user_attr(study_id, study_attrs.VERSION, __version__)
    storage.set_study_user_attr(study_id, study_attrs.UID, uuid.uuid4().hex)
    # The space last: a search starting beside this one reads the attrs as complete once it is there.
    for key, value in sorted(attrs.items(), key=lambda item: item[0] == study_attrs.SPACE):
        storage.set_study_user_attr(study_id, key, value)
    return True


def load_session(
    storage: BaseStorage, name: str, *, sampler: BaseSampler, pruner: BasePruner, settings: Mapping[str, Any]
) -> optuna.Study:
    """Load existing study ``name`` for a search session; record the session's ``settings`` (:func:`sessions`)."""
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    # A key per session, not one list read, extended and written back: two searches starting on the
    # same study at once would each write the list back without the other's entry.
    key = f"{SESSION_PREFIX}{time.time_ns():020d}-{socket.gethostname()}-{os.getpid()}"
    study.set_user_attr(key, dict(settings))
    return study


def open_study(
    storage: BaseStorage,
    name: str,
    *,
    directions: Sequence[str],
    sampler: BaseSampler,
    pruner: BasePruner,
    attrs: Mapping[str, Any],
) -> optuna.Study:
    """Create study ``name`` with ``attrs`` (space, objectives, settings, version), or load it.

    Call :func:`check_compatible` first; an existing study keeps the attrs it was created with. Every
    session adds its settings under a key of its own (see :func:`sessions`).
    """
    create_once(storage, name, directions, attrs)
    return load_session(storage, name, sampler=sampler, pruner=pruner, settings=attrs.get(study_attrs.SETTINGS, {}))


def sessions(study: optuna.Study) -> list[dict[str, Any]]:
    """The settings of every search session of ``study``, oldest first."""
    attrs = study.user_attrs
    listed = list(attrs.get(LEGACY_SESSIONS, []))  # studies written before sessions had keys of their own
    return listed + [attrs[key] for key in sorted(attrs) if key.startswith(SESSION_PREFIX)]


def running_trials(storage: BaseStorage, name: str) -> list[FrozenTrial]:
    """The RUNNING trials of study ``name`` (none when there is no such study), read without writing."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return []
    return storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))


def live_trials(storage: BaseStorage, name: str) -> list[FrozenTrial]:
    """The RUNNING trials of study ``name`` that a live process still runs (see :mod:`.liveness`)."""
    return [t for t in running_trials(storage, name) if not is_stale(t.user_attrs, t.datetime_start)]


def fail_interrupted(study: optuna.Study, storage: BaseStorage) -> list[FrozenTrial]:
    """Mark FAIL every RUNNING trial whose run is dead, and return them as they were.

    Several processes may share a study (journal or RDB storages), so a RUNNING trial is failed only when
    :func:`~aaf_search.search.liveness.is_stale` says its owner is gone, never because it is RUNNING.
    """
    stale = [t for t in running_trials(storage, study.study_name) if is_stale(t.user_attrs, t.datetime_start)]
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in stale:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, ATTR_FAIL_REASON, INTERRUPTED_REASON)
        storage.set_trial_user_attr(trial_id, ATTR_FAIL_CATEGORY, INTERRUPTED)
        study.tell(trial.number, state=TrialState.FAIL)
    return stale


RETRIED_CATEGORIES = (INTERRUPTED, WORKER)
"""Failures that came from outside the trial (Ctrl-C, a killed search, a Ray worker that died, say with its
node): ``--retry-failed`` runs such a trial's parameters again. A trial that failed for a reason of its own
(a diverged loss, an error) would fail the same way, and is not retried."""


def was_cut_off(trial: FrozenTrial) -> bool:
    """A FAIL trial that something outside it stopped, and that may run again.

    A retry whose worker died as well is not: a config that kills its worker (a segfault, the OOM killer)
    is run twice, not forever.
    """
    category = stored_category(trial) if trial.state == TrialState.FAIL else None
    if category not in RETRIED_CATEGORIES:
        return False
    return category == INTERRUPTED or ATTR_RETRY_OF not in trial.user_attrs


def enqueue_retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue ``trial``'s parameters again, as its retry: the new trial records ``retry_of`` (so that it
    is retried once) and takes ``trial``'s training seed, so that with the same config it carries on from
    the checkpoint ``trial`` left (see ``SearchSession.out_dir``)."""
    seed = {ATTR_SEED: trial.user_attrs[ATTR_SEED]} if ATTR_SEED in trial.user_attrs else {}
    study.enqueue_trial(trial.params, user_attrs={ATTR_RETRY_OF: trial.number, **seed})


def retry_cut_off(study: optuna.Study) -> list[int]:
    """Enqueue again (:func:`enqueue_retry`) every trial :func:`was_cut_off` not yet retried; their numbers.

    Then drops the retries a search started at the same time enqueued too (:func:`drop_enqueued_twice`).
    """
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(ATTR_RETRY_OF) for t in trials}
    numbers = []
    for trial in trials:
        if was_cut_off(trial) and trial.number not in retried:
            enqueue_retry(study, trial)
            numbers.append(trial.number)
    if numbers:
        drop_enqueued_twice(study)
    return numbers


def enqueued_for(trial: FrozenTrial) -> tuple[str, Any] | None:
    """What ``trial`` was enqueued to run: ``("retry", N)``, ``("point", its parameters as JSON)``, or None."""
    source = trial.user_attrs.get(ATTR_RETRY_OF)
    if source is not None:
        return ("retry", source)
    fixed = trial.system_attrs.get(FIXED_PARAMS)
    if isinstance(fixed, dict):
        return ("point", json.dumps(fixed, sort_keys=True))
    return None


def enqueued_twice(trials: Sequence[FrozenTrial]) -> dict[int, FrozenTrial]:
    """The WAITING trials enqueued for what an earlier trial was enqueued for, each with that earlier one.

    Two searches started together can each find a trial not yet retried (``--retry-failed``), or a point
    not yet in the study (the same ``--enqueue``), and each enqueue it; the lower number is the one to run.
    """
    first: dict[tuple[str, Any], FrozenTrial] = {}
    twice = {}
    for trial in sorted(trials, key=lambda t: t.number):
        purpose = enqueued_for(trial)
        if purpose is None:
            continue
        if purpose not in first:
            first[purpose] = trial
        elif trial.state == TrialState.WAITING:
            twice[trial.number] = first[purpose]
    return twice


def drop_enqueued_twice(study: optuna.Study) -> list[int]:
    """Fail, unrun, every trial :func:`enqueued_twice` finds that no search has started yet; their numbers.

    Each is claimed first as Optuna claims a waiting trial (WAITING to RUNNING, which only one process
    wins), so a search that just took it as its next trial keeps it. It is then failed as a surplus
    trial ("not run: ..."), like one that found every slot taken.
    """
    storage = study._storage
    dropped = []
    for number, earlier in enqueued_twice(study.get_trials(deepcopy=False)).items():
        trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        if not storage.set_trial_state_values(trial_id, TrialState.RUNNING):
            continue  # a search took it first: it runs
        source = earlier.user_attrs.get(ATTR_RETRY_OF)
        runs = "runs these parameters" if source is None else f"retries trial {source}"
        reason = f"{SURPLUS_PREFIX} trial {earlier.number} already {runs} (two searches enqueued it)"
        storage.set_trial_user_attr(trial_id, ATTR_FAIL_REASON, reason)
        storage.set_trial_user_attr(trial_id, ATTR_FAIL_CATEGORY, SURPLUS)
        study.tell(number, state=TrialState.FAIL)
        dropped.append(number)
    return dropped


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))
