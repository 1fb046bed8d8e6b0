"""A search killed with SIGKILL resumes where it was; one stopped with Ctrl-C says how to resume.

Both run the real command line in a subprocess and signal it while a trial is training (a trial of 40
DNN2 epochs on digits lasts a few seconds; the signal goes out once it has reported two epochs).
"""

from __future__ import annotations

import io
import signal
from pathlib import Path

import pytest
from faults import SPACE, Search, finished, running_mid_trial, search_command, search_fakes, trials, wait_until
from optuna.trial import TrialState

from aaf_search.search import SearchSettings, run_search
from aaf_search.search.study import INTERRUPTED_REASON

pytestmark = pytest.mark.slow

STORAGE = "sqlite:///runs/aaf.db"  # the default kind of storage: one SQLite file


def test_sigkill_mid_trial_then_the_same_command_resumes(tmp_path: Path) -> None:
    Path("space.yaml").write_text(SPACE)
    command = search_command(STORAGE, "--retry-failed", trials=3)

    first = Search.start(command, tmp_path / "first.log")
    wait_until(running_mid_trial(STORAGE, 1), [first], "trial 1 is training")
    first.signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    before = {t.number: t for t in trials(STORAGE)}
    assert before[0].state == TrialState.COMPLETE and before[1].state == TrialState.RUNNING

    second = Search.start(command, tmp_path / "second.log")  # the very same command
    assert second.wait() == 0, second.output()
    after = trials(STORAGE)
    assert "marked 1 trial(s) left RUNNING by an interrupted run as FAIL" in second.output()

    # The trial finished before the kill is there once, as it was; the killed one is FAIL and was retried.
    assert [t.number for t in after] == [0, 1, 2, 3]
    assert (after[0].state, after[0].value, after[0].params) == (TrialState.COMPLETE, before[0].value, before[0].params)
    killed = after[1]
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs["fail_reason"] == INTERRUPTED_REASON
    assert killed.user_attrs["fail_category"] == "interrupted"
    retry = after[2]
    assert retry.user_attrs["retry_of"] == 1 and retry.params == killed.params
    assert [t.number for t in finished(after)] == [0, 2, 3]  # --trials 3 finished trials, no more

    # Once more (in this process, with a runner that records what it is asked to train): nothing is left.
    runner = search_fakes().FakeRunner()
    settings = SearchSettings(
        space="space.yaml",
        trials=3,
        sampler="random",
        pruner="none",
        storage=STORAGE,
        seed=5,
        retry_failed=True,
        epochs=40,
    )
    run_search(settings, runner=runner, stream=io.StringIO())
    assert runner.configs == [] and len(trials(STORAGE)) == 4


def test_ctrl_c_marks_the_running_trial_and_prints_the_resume_command(tmp_path: Path) -> None:
    Path("space.yaml").write_text(SPACE)
    command = search_command(STORAGE, trials=3)

    search = Search.start(command, tmp_path / "search.log")
    wait_until(running_mid_trial(STORAGE, 0), [search], "trial 0 is training")
    search.signal(signal.SIGINT)
    assert search.wait() == 130
    output = search.output()
    assert "Traceback" not in output
    assert "interrupted: the running trial was marked FAIL (interrupted)" in output
    resume = "aaf-search: to resume, run the same command again: " + " ".join(command)
    assert resume + " (add --retry-failed to rerun the interrupted trials)" in output.splitlines()

    (trial,) = trials(STORAGE)
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == trial.user_attrs["fail_category"] == "interrupted"
    assert trial.user_attrs["epochs_run"] >= 2  # what it got to is kept
