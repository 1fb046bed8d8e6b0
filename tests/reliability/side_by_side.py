"""Several ``aaf-search`` processes on one study at once: the check the journal and PostgreSQL tests share."""

from __future__ import annotations

from pathlib import Path

from faults import SPACE, STUDY, Search, finished, search_command, trials
from optuna.trial import TrialState


def search_side_by_side(storage: str, processes: int, target: int, tmp_path: Path, study: str = STUDY) -> None:
    """Start ``processes`` copies of one search command together; check the study they leave.

    No finished trial is lost or made twice: the study holds exactly ``target`` finished trials with
    distinct numbers and distinct parameters, more than one process ran them, and the only failures are
    trials a process gave up before sampling because the others had claimed every slot ("surplus").
    """
    Path("space.yaml").write_text(SPACE)
    # One torch thread each: three processes of two threads on two cores would mostly wait for each other.
    # Trials of 40 epochs (a second or two each) outlast the spread of the processes' start-ups, so that
    # all of them join before the first has run every trial.
    command = search_command(storage, "--cpus-per-trial", "1", "--study", study, trials=target, epochs=40)
    searches = [Search.start(command, tmp_path / f"search{i}.log") for i in range(processes)]
    for search in searches:
        assert search.wait() == 0, search.output()

    found = trials(storage, study)
    done = finished(found)
    assert len(done) == target
    assert sorted(t.number for t in found) == list(range(len(found)))
    assert len({t.params["opt/lr"] for t in done}) == target
    assert {t.user_attrs.get("fail_category") for t in found if t.state == TrialState.FAIL} <= {"surplus"}
    assert not [t for t in found if t.state == TrialState.RUNNING]
    owners = {t.user_attrs["owner"]["pid"] for t in done}
    assert len(owners) >= 2, f"one process ran every trial; the test did not run them side by side: {owners}"
