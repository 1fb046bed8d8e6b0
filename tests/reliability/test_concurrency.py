"""Searches side by side on one study: safe on a journal file, refused in one line on SQLite; a study found
half-created (its attrs not yet written by the process that created it) is waited for."""

from __future__ import annotations

import signal
import sqlite3
import threading
from pathlib import Path

import optuna
import pytest
from faults import SPACE, Search, running_mid_trial, search_command, trials, wait_until
from side_by_side import search_side_by_side

from aaf_search.cli import main
from aaf_search.errors import UserError
from aaf_search.search import study as study_module
from aaf_search.search.storage import explain_locked, open_storage
from aaf_search.search.study import check_compatible

STORAGE = "sqlite:///runs/aaf.db"


@pytest.mark.slow
def test_three_processes_share_a_journal_study_without_losing_or_repeating_trials(tmp_path: Path) -> None:
    search_side_by_side("journal:runs/journal.log", processes=3, target=6, tmp_path=tmp_path)


@pytest.mark.slow
def test_a_second_search_on_a_live_sqlite_study_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("space.yaml").write_text(SPACE)
    command = search_command(STORAGE, trials=3)
    first = Search.start(command, tmp_path / "first.log")
    try:
        wait_until(running_mid_trial(STORAGE, 0), [first], "trial 0 is training")
        before = [(t.number, t.state) for t in trials(STORAGE)]
        assert main(command[1:]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1, err
        assert err.startswith(
            f"aaf-search: error: study 'space' is being searched right now by pid {first.process.pid}"
        )
        assert err.rstrip().endswith("use --storage journal:PATH or a postgresql:// (or mysql://) URL")
        assert [(t.number, t.state) for t in trials(STORAGE)][: len(before)] == before  # nothing of it touched
    finally:
        first.signal(signal.SIGKILL)
        first.wait()


def test_a_locked_sqlite_file_is_one_line_with_the_advice(capsys: pytest.CaptureFixture[str]) -> None:
    Path("runs").mkdir()
    holder = sqlite3.connect("runs/aaf.db")
    holder.execute("CREATE TABLE other_writer (x)")
    holder.execute("BEGIN EXCLUSIVE")  # another program holds the write lock for longer than SQLite waits
    try:
        # ?timeout=0.2: SQLite's busy wait, 5 s by default, shortened for the test.
        code = main(["--space", "trainable_zoo", "--storage", "sqlite:///runs/aaf.db?timeout=0.2"])
    finally:
        holder.rollback()
        holder.close()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err == (
        "aaf-search: error: the SQLite storage stayed locked by another process (database is locked); "
        "SQLite does not take several writers: use --storage journal:PATH or a postgresql:// (or mysql://) URL\n"
    )


def test_database_is_locked_is_found_behind_optunas_own_exception() -> None:
    import sqlalchemy.exc
    from optuna.exceptions import StorageInternalError

    try:
        try:
            raise sqlalchemy.exc.OperationalError("UPDATE trials", {}, sqlite3.OperationalError("database is locked"))
        except sqlalchemy.exc.OperationalError as cause:
            raise StorageInternalError("An exception is raised during the commit.") from cause
    except StorageInternalError as exc:
        assert explain_locked(exc) is not None
    assert explain_locked(RuntimeError("disk I/O error")) is None


def test_a_study_found_mid_creation_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    # Another process has created the study but not yet written its attrs (two separate writes).
    storage = open_storage("sqlite:///runs/aaf.db")
    study = optuna.create_study(storage=storage, study_name="trainable_zoo")
    writer = threading.Timer(0.3, lambda: study.set_user_attr("space", "trainable_zoo"))
    writer.start()
    try:
        assert check_compatible(storage, "trainable_zoo", "trainable_zoo", ["accuracy"]) is True
    finally:
        writer.join()

    monkeypatch.setattr(study_module, "CREATION_WAIT_SECONDS", 0.2)
    optuna.create_study(storage=storage, study_name="made_elsewhere")  # by plain Optuna: never gets a space
    with pytest.raises(UserError, match="study 'made_elsewhere' was not made by aaf-search"):
        check_compatible(storage, "made_elsewhere", "trainable_zoo", ["accuracy"])
