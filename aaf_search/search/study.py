"""Create or continue the study behind a search, and tidy what an interrupted run left in it.

The study is the single source of truth for a search, whichever backend ran it: its user attrs say
which space created it and with which settings, and resuming means counting its finished trials.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from aaf_search import __version__
from aaf_search.errors import UserError
from aaf_search.search.liveness import is_stale
from aaf_search.search.recording import ATTR_FAIL_CATEGORY, ATTR_FAIL_REASON, INTERRUPTED, stored_category

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
"""The states that count towards ``--trials``; a FAIL trial is retried by a new trial, not counted."""

INTERRUPTED_REASON = "left RUNNING by an interrupted run"
ATTR_RETRY_OF = "retry_of"

SESSION_PREFIX = "session/"  # + start time in ns (20 digits: sorts as it happened) + host + pid
LEGACY_SESSIONS = "sessions"

ROBUST_SUFFIX = ":robust"
"""``<study>:robust`` is the companion study where ``aaf-search robust`` re-trains ``<study>``'s best over seeds."""


def study_names(storage: BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


def robust_name(name: str) -> str:
    """The name of study ``name``'s seed-robustness companion."""
    return name + ROBUST_SUFFIX


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
    while attrs is not None and "space" not in attrs and time.monotonic() < deadline:
        time.sleep(0.05)
        attrs = existing_attrs(storage, name)
    return attrs


def check_compatible(storage: BaseStorage, name: str, space: str, objectives: Sequence[str]) -> bool:
    """``True`` if study ``name`` exists and may be continued by this search, ``False`` if it is new.

    Raises :class:`UserError`, before anything is written, when the study belongs to another space or
    optimises other objectives: mixing them would make one study mean two searches.
    """
    attrs = _settled_attrs(storage, name)
    if attrs is None:
        return False
    owner = attrs.get("space")
    if owner is None:
        raise UserError(f"study '{name}' was not made by aaf-search (it names no space); use --study NEW_NAME")
    if owner != space:
        raise UserError(
            f"study '{name}' was created by space '{owner}', not '{space}'; use --study NEW_NAME or --space {owner}"
        )
    stored = list(attrs.get("objectives", ["accuracy"]))
    if stored != list(objectives):
        raise UserError(
            f"study '{name}' optimises {','.join(stored)}, not {','.join(objectives)}; "
            f"use --objectives {','.join(stored)} or --study NEW_NAME"
        )
    return True


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
    created = existing_attrs(storage, name) is None
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=[optuna.study.StudyDirection[d.upper()] for d in directions],
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    if created:
        study.set_user_attr("aaf_search_version", __version__)
        # "space" last: a search starting beside this one reads the attrs as complete once it is there.
        for key, value in sorted(attrs.items(), key=lambda item: item[0] == "space"):
            study.set_user_attr(key, value)
    # A key per session, not one list read, extended and written back: two searches starting on the
    # same study at once would each write the list back without the other's entry.
    key = f"{SESSION_PREFIX}{time.time_ns():020d}-{socket.gethostname()}-{os.getpid()}"
    study.set_user_attr(key, dict(attrs.get("settings", {})))
    return study


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


def was_interrupted(trial: FrozenTrial) -> bool:
    """A FAIL trial that a kill or Ctrl-C stopped (not one that failed for a reason of its own)."""
    return trial.state == TrialState.FAIL and stored_category(trial) == INTERRUPTED


def retry_interrupted(study: optuna.Study) -> list[int]:
    """Enqueue again the parameters of every interrupted trial not yet retried; return their numbers.

    The new trial records ``retry_of``, which is how a later ``--retry-failed`` knows not to retry twice.
    Trials that failed for a reason of their own (a diverged loss) are not retried: they would fail again.
    """
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(ATTR_RETRY_OF) for t in trials}
    numbers = []
    for trial in trials:
        if was_interrupted(trial) and trial.number not in retried:
            study.enqueue_trial(trial.params, user_attrs={ATTR_RETRY_OF: trial.number})
            numbers.append(trial.number)
    return numbers


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))
