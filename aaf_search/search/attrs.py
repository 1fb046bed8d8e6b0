"""Write several user attributes of a trial in one storage operation.

Optuna writes each ``trial.set_user_attr`` as its own transaction (RDB) or log record (journal). A
finished trial stores about fifteen attributes, which on SQLite is one fsync'd commit each, tens of
milliseconds per trial of pure bookkeeping. RDB storages can write them all in one commit (on SQLite
and PostgreSQL one upsert statement), journal files in one append (one fsync); this module does that and
falls back to one call per attribute for any other storage (or if a future Optuna moves the internals
it relies on).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Store every item of ``attrs`` as a user attribute of ``trial``, in one write where possible."""
    if not attrs:
        return
    backend = _backend(trial.storage)
    trial_id = trial._trial_id
    try:
        if isinstance(backend, RDBStorage):
            _rdb_write(backend, trial_id, attrs)
        elif isinstance(backend, JournalStorage):
            _journal_write(backend, trial_id, attrs)
        else:
            raise AttributeError("no batched write for this storage")
    except AttributeError:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    # Keep the trial's own view in step, as trial.set_user_attr does.
    trial._cached_frozen_trial.user_attrs.update(attrs)


def _backend(storage: BaseStorage) -> BaseStorage:
    # Optuna wraps RDB storages in a cache that forwards attribute writes to its backend unchanged. (A
    # JournalStorage has a ``_backend`` too, its log file: that one is not unwrapped.)
    inner = getattr(storage, "_backend", None)
    return inner if isinstance(inner, RDBStorage) else storage


UPSERTS: dict[str, Callable[..., Any]] = {"postgresql": postgresql_insert}
"""SQLAlchemy dialects whose INSERT ... ON CONFLICT DO UPDATE writes every attribute in one statement."""
if sqlite3.sqlite_version_info >= (3, 24, 0):  # the first SQLite with ON CONFLICT DO UPDATE
    UPSERTS["sqlite"] = sqlite_insert


def _rdb_write(storage: RDBStorage, trial_id: int, attrs: Mapping[str, Any]) -> None:
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    insert = UPSERTS.get(storage.engine.name)
    with _create_scoped_session(storage.scoped_session, True) as session:
        if insert is None:  # no upsert: one write per attribute
            for key, value in attrs.items():
                storage._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)
            return
        # Optuna's per-attribute path loads the trial with all its relations once per attribute (a few ms
        # each on SQLite); here one query reads its state and one statement writes every attribute.
        state = session.query(models.TrialModel.state).filter(models.TrialModel.trial_id == trial_id).scalar()
        if state is None:
            raise KeyError(f"No trial with trial id {trial_id} exists.")
        storage.check_trial_is_updatable(trial_id, state)
        model = models.TrialUserAttributeModel
        rows = [{"trial_id": trial_id, "key": key, "value_json": json.dumps(value)} for key, value in attrs.items()]
        statement = insert(model).values(rows)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[model.trial_id, model.key], set_={"value_json": statement.excluded.value_json}
            )
        )


def _journal_write(storage: JournalStorage, trial_id: int, attrs: Mapping[str, Any]) -> None:
    from optuna.storages.journal._storage import JournalOperation

    # Optuna's replay takes one attribute per SET_TRIAL_USER_ATTR record, but its backends append a list
    # of records at once: one lock, one write and one fsync for all of them.
    records = [
        {
            "op_code": JournalOperation.SET_TRIAL_USER_ATTR,
            "worker_id": storage._replay_result.worker_id,
            "trial_id": trial_id,
            "user_attr": {key: value},
        }
        for key, value in attrs.items()
    ]
    with storage._thread_lock:
        storage._backend.append_logs(records)
        storage._sync_with_backend()
