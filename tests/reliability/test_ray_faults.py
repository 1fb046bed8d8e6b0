"""The Ray backend under faults: its driver killed with SIGKILL, and one of its trial workers killed.

Both run the real command line with ``--backend ray`` in a subprocess (each start of a local Ray costs
15-20 s here, so there are only these two tests) and one trial at a time (``--max-concurrent 1``), so
that which trial the fault hits is known.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from faults import SPACE, Search, finished, saved_mid_trial, search_command, trials, wait_until
from optuna.trial import TrialState

from aaf_search.search.study import INTERRUPTED_REASON

pytestmark = [pytest.mark.ray, pytest.mark.slow]

STORAGE = "sqlite:///runs/aaf.db"
RAY = ("--backend", "ray", "--max-concurrent", "1")
RAY_START_SECONDS = 180.0  # a cold Ray start-up plus the first worker's import torch, on a busy machine


def ray_trial_workers(session: int) -> list[int]:
    """Pids of the processes running a Ray Tune trainable in session ``session`` (the search's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            title = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue  # exited while listed
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == session and title.startswith(b"ray::ImplicitFunc"):
            pids.append(int(entry.name))
    return pids


def test_sigkill_of_the_ray_driver_then_the_same_command_resumes(tmp_path: Path) -> None:
    Path("space.yaml").write_text(SPACE)
    # 120 epochs, as in the test below: with 40, a machine that trains dnn2 fast enough (an AVX-512 one)
    # finished trial 1 between the poll that saw it training and the kill.
    command = search_command(STORAGE, *RAY, "--retry-failed", trials=2, epochs=120)
    first = Search.start(command, tmp_path / "first.log")
    try:
        wait_until(saved_mid_trial(STORAGE, 1), [first], "trial 1 saved a checkpoint", timeout=RAY_START_SECONDS)
        first.signal(signal.SIGKILL)
        assert first.wait() == -signal.SIGKILL
    finally:
        first.kill_group()  # Ray's own processes, orphaned by the kill
    before = {t.number: t for t in trials(STORAGE)}
    assert before[0].state == TrialState.COMPLETE and before[1].state == TrialState.RUNNING

    second = Search.start(command, tmp_path / "second.log")
    try:
        assert second.wait(timeout=RAY_START_SECONDS) == 0, second.output()
    finally:
        second.kill_group()
    assert "marked 1 trial(s) left RUNNING by an interrupted run as FAIL" in second.output()
    after = trials(STORAGE)
    assert [t.state for t in after] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert (after[0].value, after[0].params) == (before[0].value, before[0].params)  # kept once, as it was
    assert after[1].user_attrs["fail_reason"] == INTERRUPTED_REASON
    assert after[2].user_attrs["retry_of"] == 1 and after[2].params == after[1].params
    assert len(finished(after)) == 2
    # The retry took the killed trial's seed and checkpoint, on a Ray worker as with the local backend.
    assert after[2].user_attrs["seed"] == after[1].user_attrs["seed"]
    assert re.search(r"trial 2 carries on from epoch \d+ of interrupted trial 1", second.output()), second.output()
    assert sorted(after[2].intermediate_values) == list(range(1, 121))


def test_a_killed_ray_worker_fails_its_trial_which_carries_on_with_retry_failed(tmp_path: Path) -> None:
    Path("space.yaml").write_text(SPACE)
    # 120 epochs (about 6 s of dnn2 on digits): with the default 40, a trial seen at its second epoch by
    # a poll on a loaded machine sometimes finished before the kill landed.
    command = search_command(STORAGE, *RAY, "--retry-failed", trials=2, epochs=120)
    search = Search.start(command, tmp_path / "search.log")
    try:
        wait_until(saved_mid_trial(STORAGE, 0), [search], "trial 0 saved a checkpoint", timeout=RAY_START_SECONDS)
        (worker,) = ray_trial_workers(session=search.process.pid)
        os.kill(worker, signal.SIGKILL)
        assert search.wait(timeout=RAY_START_SECONDS) == 0, search.output()
    finally:
        search.kill_group()
    found = trials(STORAGE)
    assert [t.state for t in found] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    killed = found[0].user_attrs
    assert killed["fail_reason"].startswith("ActorDiedError: The actor died unexpectedly"), killed["fail_reason"]
    assert killed["fail_category"] == "worker" and killed["epochs_run"] >= 2
    output = search.output()
    assert "trial 0 failed: ActorDiedError" in output
    assert "2 complete, 0 pruned, 1 failed (1 worker)" in output
    # With --retry-failed the dead worker's trial ran again at once, from the checkpoint it left.
    retry = found[1]
    assert retry.user_attrs["retry_of"] == 0 and retry.user_attrs["seed"] == killed["seed"]
    assert "trial 0 runs again (--retry-failed)" in output
    assert re.search(r"trial 1 carries on from epoch \d+ of interrupted trial 0", output), output
    assert sorted(retry.intermediate_values) == list(range(1, 121))
    assert "Traceback" not in output  # Ray's traceback is in error.txt; the terminal gets one line
