"""Batched user-attribute writes land exactly as one ``set_user_attr`` per item would, on every storage."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import sqlalchemy

from aaf_search.search.attrs import set_user_attrs
from aaf_search.search.storage import open_storage

ATTRS = {"config": {"model": "dnn2", "plan": [1, 2]}, "seed": 7, "history": [0.5, 0.75], "device": "cpu"}


@pytest.mark.parametrize("kind", ["sqlite", "journal", "memory"])
def test_batched_attrs_are_stored_and_visible_on_the_trial(tmp_path: Path, kind: str) -> None:
    storage: optuna.storages.BaseStorage | None = {
        "sqlite": open_storage(f"sqlite:///{tmp_path / 'a.db'}"),
        "journal": open_storage(f"journal:{tmp_path / 'a.log'}"),
        "memory": None,
    }[kind]
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    set_user_attrs(trial, {"seed": 1, "device": "cuda"})
    set_user_attrs(trial, ATTRS)  # a second write replaces the values of keys written before
    assert trial.user_attrs == ATTRS
    study.tell(trial, 1.0)
    assert study.trials[0].user_attrs == ATTRS
    if storage is not None:  # a fresh reader sees them too
        assert optuna.load_study(study_name="s", storage=storage).trials[0].user_attrs == ATTRS


def test_a_finished_trial_refuses_batched_attrs_on_sqlite(tmp_path: Path) -> None:
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'a.db'}"), study_name="s")
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_user_attrs(trial, ATTRS)


def test_one_journal_append_per_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = open_storage(f"journal:{tmp_path / 'a.log'}")
    assert isinstance(storage, optuna.storages.JournalStorage)
    trial = optuna.create_study(storage=storage).ask()
    appends: list[int] = []
    append_logs = storage._backend.append_logs
    monkeypatch.setattr(storage._backend, "append_logs", lambda logs: (appends.append(len(logs)), append_logs(logs)))
    set_user_attrs(trial, ATTRS)
    assert appends == [len(ATTRS)]  # one append (one fsync) of one record per attribute, as replay expects


def test_one_statement_per_batch_on_sqlite(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'a.db'}")
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    writes: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "trial_user_attributes" in statement and not statement.lstrip().upper().startswith("SELECT"):
            writes.append(statement)

    assert isinstance(storage, optuna.storages.RDBStorage)
    sqlalchemy.event.listen(storage.engine, "before_cursor_execute", count)
    set_user_attrs(trial, ATTRS)
    assert len(writes) == 1, writes
