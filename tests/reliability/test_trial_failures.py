"""A trial that raises, runs out of memory or diverges fails alone: its reason is stored, the search goes on.

In-process, with the search tests' fake runner made to fail on chosen calls: what matters here is what
the local backend does with the exception, not how training produced it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pytest
import torch
from faults import search_fakes
from optuna.trial import FrozenTrial, TrialState

from aaf_search.cli import main
from aaf_search.config import TrialConfig
from aaf_search.errors import UserError
from aaf_search.search import SearchSettings, run_search
from aaf_search.search import study as study_module
from aaf_search.search.recording import INTERRUPTED_REASON, failure_category, stored_category
from aaf_search.search.storage import open_storage
from aaf_search.search.study import drop_enqueued_twice, enqueue_retry, retry_cut_off
from aaf_search.search.summary import summarize
from aaf_search.trials.report import EpochReport, TrialDiverged, TrialResult

STORAGE = "sqlite:///runs/study.db"
FakeRunner = search_fakes().FakeRunner


@dataclass
class FailingRunner:
    """The fake runner, raising ``faults[call]`` in the first epoch of the calls it lists."""

    faults: dict[int, BaseException]
    inner: object = field(default_factory=FakeRunner)
    calls: int = 0

    def __call__(
        self,
        config: TrialConfig,
        *,
        on_epoch: Callable[[EpochReport], None] | None = None,
        out_dir: Path | None = None,
    ) -> TrialResult:
        call, self.calls = self.calls, self.calls + 1
        if call in self.faults:
            raise self.faults[call]
        return self.inner(config, on_epoch=on_epoch, out_dir=out_dir)  # type: ignore[operator]


def settings(trials: int) -> SearchSettings:
    return SearchSettings(
        space="trainable_zoo", trials=trials, sampler="random", pruner="none", storage=STORAGE, epochs=2, seed=3
    )


def test_failing_trials_keep_their_reason_and_the_search_reaches_its_target() -> None:
    runner = FailingRunner(
        {
            1: RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x10 and 12x10)"),
            2: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
            4: MemoryError(),
            5: TrialDiverged(3, "training loss is nan"),
        }
    )
    stream = io.StringIO()
    # Never three failures in a row (the 3 trials this session set out to run), which would end the search.
    outcome = run_search(settings(trials=3), runner=runner, stream=stream)

    assert not outcome.gave_up
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "FAIL", "COMPLETE", "FAIL", "FAIL", "COMPLETE"]
    reasons = [
        (t.user_attrs["fail_reason"], t.user_attrs["fail_category"]) for t in study.trials if t.state.name == "FAIL"
    ]
    assert reasons == [
        ("RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x10 and 12x10)", "error"),
        ("OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "oom"),
        ("MemoryError", "oom"),
        ("trial diverged at epoch 3: training loss is nan", "diverged"),
    ]
    assert "trial 2 failed: OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB" in stream.getvalue()
    summary = summarize(outcome, STORAGE).splitlines()[0]
    assert (
        summary
        == "study 'trainable_zoo' (space trainable_zoo): 3 complete, 0 pruned, 4 failed (2 oom, 1 error, 1 diverged)"
    )


def test_a_round_of_failures_only_stops_the_search() -> None:
    crash = RuntimeError("CUDA error: an illegal memory access was encountered")
    stream = io.StringIO()
    outcome = run_search(settings(trials=2), runner=FailingRunner({0: crash, 1: crash}), stream=stream)
    assert outcome.gave_up
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
    assert "stopping: the last 2 trials all failed" in stream.getvalue()


def test_a_search_that_gives_up_exits_1_even_on_a_study_with_a_best_trial(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_search(settings(trials=1), runner=FakeRunner(), stream=io.StringIO())
    crash = RuntimeError("CUDA error: an illegal memory access was encountered")
    monkeypatch.setattr("aaf_search.search.driver._run_trial", lambda: FailingRunner({0: crash, 1: crash}))
    args = ["--space", "trainable_zoo", "--backend", "local", "--sampler", "random", "--pruner", "none"]
    # The study already held one complete trial: its best.yaml is exported, yet this run trained nothing.
    code = main([*args, "--storage", STORAGE, "--epochs", "2", "--seed", "3", "--trials", "3"])
    assert code == 1
    out, err = capsys.readouterr()
    assert "stopping: the last 2 trials all failed" in err
    assert "1 complete, 0 pruned, 2 failed (2 error)" in out
    assert "best config: aaf-runs/trainable_zoo/best.yaml" in out


def test_a_user_error_in_a_trial_stops_the_search_with_its_message() -> None:
    missing = UserError("data files not found: data/MNIST/raw/train-images-idx3-ubyte")
    with pytest.raises(UserError, match="data files not found"):
        run_search(settings(trials=3), runner=FailingRunner({1: missing}), stream=io.StringIO())
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert study.trials[1].user_attrs["fail_category"] == "error"


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        ("trial diverged at epoch 2: an activation parameter is not finite", "diverged"),
        ("OutOfMemoryError: CUDA out of memory (traceback: /runs/ray/error.txt)", "oom"),  # a Ray worker's
        ("OutOfMemoryError: Task was killed due to the node running low on memory. (traceback: e.txt)", "oom"),
        ("MemoryError (traceback: /runs/ray/error.txt)", "oom"),
        ("AcceleratorError: CUDA error: out of memory", "oom"),  # cuBLAS or cuDNN, not torch's allocator
        ("left RUNNING by an interrupted run", "interrupted"),
        ("interrupted", "interrupted"),
        ("ActorDiedError: The actor died unexpectedly before finishing this task. (traceback: error.txt)", "worker"),
        ("not run: the study already holds or runs its 8 trials", "surplus"),
        ("ZeroDivisionError: division by zero", "error"),
        # Only the anchored forms count, not the words anywhere in a message:
        ("InterruptedError: [Errno 4] Interrupted system call", "error"),
        ("RuntimeError: DataLoader worker (pid 4711) was interrupted (traceback: error.txt)", "error"),
        ("ValueError: the plan would run out of memory on 8x8 inputs", "error"),
        ("RayTaskError: worker ran out of memory", "error"),
    ],
)
def test_failure_categories(reason: str, category: str) -> None:
    assert failure_category(reason) == category


def test_an_interrupted_system_call_is_an_error_that_retry_failed_leaves_alone() -> None:
    # InterruptedError is an OS call giving up (EINTR), not the user's Ctrl-C: retried, it fails again.
    runner = FailingRunner({0: InterruptedError(4, "Interrupted system call")})
    run_search(settings(trials=2), runner=runner, stream=io.StringIO())
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    failed = study.trials[0]
    assert (failed.user_attrs["fail_reason"], failed.user_attrs["fail_category"]) == (
        "InterruptedError: [Errno 4] Interrupted system call",
        "error",
    )
    assert retry_cut_off(study) == []


def test_categories_stored_by_earlier_versions_are_read_by_the_exact_interrupt_reasons() -> None:
    study = optuna.create_study(storage=open_storage(STORAGE), study_name="old")
    written = [  # (fail_reason, fail_category) as earlier versions wrote them
        ("left RUNNING by an interrupted run", None),  # before categories were stored
        ("interrupted", "interrupted"),  # Ctrl-C with the local backend
        ("RuntimeError: DataLoader worker (pid 4711) was interrupted", "interrupted"),  # read by substring then
        ("OutOfMemoryError: CUDA out of memory", None),
    ]
    for reason, category in written:
        trial = study.ask()
        trial.set_user_attr("fail_reason", reason)
        if category is not None:
            trial.set_user_attr("fail_category", category)
        study.tell(trial, state=TrialState.FAIL)
    assert [stored_category(t) for t in study.trials] == ["interrupted", "interrupted", "error", "oom"]
    assert retry_cut_off(study) == [0, 1]


def test_retry_failed_runs_trials_cut_off_from_outside_again_and_a_dead_workers_only_once() -> None:
    study = optuna.create_study(storage=open_storage(STORAGE), study_name="cut")
    failures = [  # (fail_category, the trial it retries)
        ("interrupted", None),  # 0: Ctrl-C or a killed search
        ("worker", None),  # 1: its Ray worker died (a lost node, the OOM killer)
        ("diverged", None),  # 2: would diverge again
        ("error", None),  # 3: would fail again
        ("worker", 8),  # 4: a retry whose worker died too: its config may be what kills workers
        ("interrupted", 9),  # 5: a retry interrupted again: the user stopped it, not the config
    ]
    for category, retry_of in failures:
        trial = study.ask()
        trial.set_user_attr("fail_reason", category)
        trial.set_user_attr("fail_category", category)
        trial.set_user_attr("seed", 100 + trial.number)
        if retry_of is not None:
            trial.set_user_attr("retry_of", retry_of)
        study.tell(trial, state=TrialState.FAIL)
    assert retry_cut_off(study) == [0, 1, 5]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    # Each retry takes its trial's seed, to carry on from the checkpoint that trial left
    assert [(t.user_attrs["retry_of"], t.user_attrs["seed"]) for t in waiting] == [(0, 100), (1, 101), (5, 105)]
    assert retry_cut_off(study) == []  # retried once


def interrupted_study(name: str) -> optuna.Study:
    """A study whose trial 0 was cut off by an interrupt, with its seed."""
    study = optuna.create_study(storage=open_storage(STORAGE), study_name=name)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    for attr, value in (("fail_reason", INTERRUPTED_REASON), ("fail_category", "interrupted"), ("seed", 7)):
        trial.set_user_attr(attr, value)
    study.tell(trial, state=TrialState.FAIL)
    return study


def states(study: optuna.Study) -> list[tuple[int, str, object]]:
    return [(t.number, t.state.name, t.user_attrs.get("fail_category")) for t in study.trials]


def test_two_searches_retrying_at_once_run_one_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    study = interrupted_study("race")
    enqueue = study_module.enqueue_retry

    def another_search_enqueues_it_first(study: optuna.Study, trial: FrozenTrial) -> None:
        # The other search read the study before this one enqueued, as this one did: it saw no retry either.
        enqueue(optuna.load_study(study_name="race", storage=open_storage(STORAGE)), trial)
        enqueue(study, trial)

    monkeypatch.setattr(study_module, "enqueue_retry", another_search_enqueues_it_first)

    assert retry_cut_off(study) == [0]

    assert states(study) == [(0, "FAIL", "interrupted"), (1, "WAITING", None), (2, "FAIL", "surplus")]
    assert study.trials[2].user_attrs["fail_reason"] == (
        "not run: trial 1 already retries trial 0 (two searches enqueued it)"
    )
    assert study.trials[1].user_attrs["seed"] == 7  # the retry that runs carries trial 0 on


def test_a_duplicate_retry_a_search_already_started_runs() -> None:
    study = interrupted_study("taken")
    for _ in range(2):
        enqueue_retry(study, study.trials[0])
    storage = open_storage(STORAGE)
    second = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name("taken"), 2)
    assert storage.set_trial_state_values(second, TrialState.RUNNING)  # as a search's ask() claims it

    assert drop_enqueued_twice(study) == []
    assert states(study) == [(0, "FAIL", "interrupted"), (1, "WAITING", None), (2, "RUNNING", None)]
