"""A search killed with SIGKILL resumes where it was, the trial it cut off carrying on from its checkpoint;
one stopped with Ctrl-C says how to resume; a ``train`` killed mid-run carries on from its checkpoint.

Both run the real command line in a subprocess and signal it while a trial is training (a trial of 40
DNN2 epochs on digits lasts a few seconds; the signal goes out once it has reported two epochs).
"""

from __future__ import annotations

import io
import re
import signal
from pathlib import Path

import pytest
import torch
from faults import (
    SPACE,
    STUDY,
    Search,
    finished,
    running_mid_trial,
    saved_mid_trial,
    search_command,
    search_fakes,
    trials,
    wait_until,
)
from optuna.trial import TrialState

from aaf_search.config import TrialConfig, load_yaml, save_yaml
from aaf_search.search import SearchSettings, run_search
from aaf_search.search.study import INTERRUPTED_REASON
from aaf_search.trials.checkpoint import Checkpoint
from aaf_search.trials.runner import run_trial

pytestmark = pytest.mark.slow

STORAGE = "sqlite:///runs/aaf.db"  # the default kind of storage: one SQLite file


def test_sigkill_mid_trial_then_the_same_command_resumes(tmp_path: Path) -> None:
    Path("space.yaml").write_text(SPACE)
    command = search_command(STORAGE, "--retry-failed", trials=3)

    first = Search.start(command, tmp_path / "first.log")
    wait_until(saved_mid_trial(STORAGE, 1), [first], "trial 1 has saved a checkpoint")
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

    # The retry trained on from the killed trial's checkpoint, with its seed, to an uninterrupted run's
    # numbers; the pruner's record (the intermediate values) holds every epoch, the carried ones too.
    carried = re.search(r"trial 2 carries on from epoch (\d+) of interrupted trial 1", second.output())
    assert carried is not None, second.output()
    assert 1 <= int(carried.group(1)) < 40
    assert retry.user_attrs["seed"] == killed.user_attrs["seed"]
    threads = torch.get_num_threads()
    torch.set_num_threads(retry.user_attrs["cpu_threads"])  # the thread count changes the last digits
    try:
        whole = run_trial(TrialConfig.from_dict(retry.user_attrs["config"]))
    finally:
        torch.set_num_threads(threads)
    assert retry.value == whole.val_accuracy and retry.user_attrs["test_accuracy"] == whole.test_accuracy
    assert retry.intermediate_values == {r.epoch: r.val_accuracy for r in whole.history}
    # The killed trial's checkpoint moved to its retry, which removed it when it finished: no directory
    # but the finished trials' is left.
    trial_dirs = sorted(Path("aaf-runs", STUDY, "trials").iterdir())
    assert [d.name for d in trial_dirs] == ["0000", "0002", "0003"]
    assert all((d / "model.pt").is_file() and not (d / "checkpoint.pt").exists() for d in trial_dirs)

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
    assert (
        resume + " (add --retry-failed to carry the interrupted trials on from their checkpoints)"
        in output.splitlines()
    )

    (trial,) = trials(STORAGE)
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == trial.user_attrs["fail_category"] == "interrupted"
    assert trial.user_attrs["epochs_run"] >= 2  # what it got to is kept


def test_train_killed_mid_run_carries_on_to_the_uninterrupted_numbers(tmp_path: Path) -> None:
    # A DNN2 of 200 epochs on digits: a few seconds, killed once its checkpoint holds epoch 5 or later
    # (saved after epoch 1, then every dozen epochs or so: each save costs a fiftieth of the time between).
    config = TrialConfig(model="dnn2", epochs=200, seed=3)
    save_yaml("best.yaml", config)
    command = ["aaf-search", "train", "--config", "best.yaml", "--threads", "1", "--out"]
    checkpoint = Checkpoint.in_run_dir("cut", config.digest())

    first = Search.start([*command, "cut"], tmp_path / "first.log")
    wait_until(lambda: checkpoint.path.is_file() and checkpoint.epochs_done() >= 5, [first], "epoch 5 is saved")
    first.signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    done = checkpoint.epochs_done()
    assert 5 <= done < 200

    second = Search.start([*command, "cut"], tmp_path / "second.log")  # the very same command
    assert second.wait() == 0, second.output()
    assert f"carrying on from the checkpoint in cut: {done} of 200 epochs done" in second.output()
    whole = Search.start([*command, "whole"], tmp_path / "whole.log")
    assert whole.wait() == 0, whole.output()

    def metrics(run: str) -> list[list[str]]:  # every column but the epoch's wall time
        rows = [line.split(",") for line in Path(run, "metrics.csv").read_text().splitlines()]
        seconds = rows[0].index("epoch_seconds")
        return [row[:seconds] + row[seconds + 1 :] for row in rows]

    assert len(metrics("cut")) == 201 and metrics("cut") == metrics("whole")
    assert load_yaml("cut/config.yaml")[1] == load_yaml("whole/config.yaml")[1]  # val and test accuracy, best epoch
    assert not checkpoint.path.exists()
